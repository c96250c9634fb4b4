"""Grouping a large collection of small records in parts, so that the local runner never re-encodes it whole.

Beam's local runner (`fn_api_runner/execution.py`, `GroupingBuffer`) keeps a grouped collection decoded in
its own process and, when the consuming stage starts, encodes all of it into one output stream and copies
that out (`GroupingBuffer.partition`): for a moment it holds the collection three times. Measured with
`benchmarks.scale` (160k pages, 1 worker) the MinHash band records made that moment the build's peak, 190 MiB
above the rest of the run. Grouped as `parts` separate `GroupByKey`s of the key's residues, each consumed by
its own stage, only one part is re-encoded at a time. On Dataflow the parts are `parts` smaller shuffles of
the same bytes. Each part costs the local runner a few stages' fixed overhead, so a small source is
grouped in one part (`parts_for`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apache_beam as beam

GROUP_PARTS = 8  # at most
GROUP_PART_INPUT_BYTES = 64 << 20  # one part per this much input


def parts_for(input_bytes: int) -> int:
    """How many parts a source's small records are grouped in: one per 64 MiB of input, 1 to 8."""
    return max(1, min(GROUP_PARTS, -(-input_bytes // GROUP_PART_INPUT_BYTES)))


Consume = Callable[[beam.PCollection], Any]  # a grouped part → a PCollection, or tagged outputs


class _GroupThen(beam.PTransform):
    def __init__(self, consume: Consume) -> None:
        super().__init__()
        self.consume = consume

    def expand(self, records: beam.PCollection) -> Any:
        return self.consume(records | "Group" >> beam.GroupByKey())


class GroupInParts(beam.PTransform):
    """`(int key, value)` records → `consume(GroupByKey of the keys ≡ i mod parts)` for each part, flattened:
    one PCollection, or with `tags` a dict of the consumer's tagged outputs."""

    def __init__(self, consume: Consume, tags: tuple[str, ...] = (), parts: int = GROUP_PARTS) -> None:
        super().__init__()
        self.consume = consume
        self.tags = tags
        self.parts = parts

    def expand(self, records: beam.PCollection) -> Any:
        if self.parts == 1:
            out = records | "Part0" >> _GroupThen(self.consume)
            return {tag: out[tag] for tag in self.tags} if self.tags else out
        split = records | "Split" >> beam.Partition(lambda kv, n: kv[0] % n, self.parts)
        outs = [split[i] | f"Part{i}" >> _GroupThen(self.consume) for i in range(self.parts)]
        if not self.tags:
            return tuple(outs) | "Merge" >> beam.Flatten()
        return {tag: tuple(o[tag] for o in outs) | f"Merge{tag}" >> beam.Flatten() for tag in self.tags}
