"""Line dedup across a source with memory bounded per worker: hash shards count, verdicts come back per file.

Pass 1 sends, per input file and per hash shard (`hash mod dedup_shards`, within the scope's file group),
the file's distinct line hashes with their document keys (`filters.dedup.LineRecords`, 17 bytes a hash:
a boilerplate line repeated across a file's pages travels once). One `GroupByKey` per shard brings a shard's records together; the shard merges them once to learn
which of its hashes are duplicated, then either

- **broadcasts** its duplicated hashes (every worker merges all broadcast shards into one sorted array), when
  they number at most `broadcast_max_hashes / dedup_shards` — the fast path for small and medium sources; or
- sends **verdicts per file**: for each file's record it holds, the duplicated hashes among that file's.
  No worker then holds more than one shard's duplicated set, and a file's pass 2 receives only the
  duplicated hashes it contains.

Shards decide independently from their own size, which is the total divided by the shard count up to
sampling noise (the shards are hash residues); the manifest records how many shards took each path.
Memory: a shard's records while it merges them (17 bytes × its distinct hashes per chunk; raise
`dedup_shards` for huge sources) — independent of the number of workers and of the other shards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from filters.dedup import DuplicatedLines, LineRecords, merge_line_records
from pipeline.grouping import GroupInParts

BROADCAST = "broadcast"
PER_FILE = "per_file"
NONE = "none"  # a shard without duplicated hashes sends nothing
LINE_DEDUP_PATH = "line_dedup_path."  # key prefix of the shards' choices in the build's global counts


def scope_key(file_index: int, shard: int, shards: int, scope: str | int) -> int:
    """The counting key of a shard within its scope: one key space per group of `scope` files."""
    group = 0 if scope == "source" else file_index // int(scope)
    return group * shards + shard


class ShardVerdictsFn(beam.DoFn):
    """One hash shard: merge its records, then broadcast its duplicated hashes or send them per file."""

    def __init__(self, source: str, per_shard_cap: int) -> None:
        self.source = source
        self.per_shard_cap = per_shard_cap

    def process(self, item: tuple[int, Iterable[tuple[int, LineRecords]]]) -> Iterator[Any]:
        _, records = item
        merged = merge_line_records([r for _, r in records])
        dup = DuplicatedLines.from_records(merged)
        del merged
        if not len(dup.hashes):
            yield beam.pvalue.TaggedOutput("paths", (LINE_DEDUP_PATH + NONE, 1))
            return
        if len(dup.hashes) <= self.per_shard_cap:
            Metrics.counter(f"corral.{self.source}", "line_dedup_shards_broadcast").inc()
            yield beam.pvalue.TaggedOutput(BROADCAST, dup)
            yield beam.pvalue.TaggedOutput("paths", (LINE_DEDUP_PATH + BROADCAST, 1))
            return
        Metrics.counter(f"corral.{self.source}", "line_dedup_shards_per_file").inc()
        yield beam.pvalue.TaggedOutput("paths", (LINE_DEDUP_PATH + PER_FILE, 1))
        for file_index, chunk in records:  # a second pass over the shard's records
            hit = dup.hits(chunk.hashes)
            if hit is not None:
                yield beam.pvalue.TaggedOutput(PER_FILE, (file_index, hit))


class LineVerdicts(beam.PTransform):
    """`(shard key, (file_index, LineRecords))` → broadcast duplicated sets + per-file verdicts + path counts."""

    def __init__(self, source: str, shards: int, broadcast_max_hashes: int, parts: int = 1) -> None:
        super().__init__()
        self.source = source
        self.per_shard_cap = broadcast_max_hashes // max(shards, 1)
        self.parts = parts  # the shards grouped in this many parts (`pipeline.grouping`)

    def expand(self, records: beam.PCollection) -> dict[str, beam.PCollection]:
        verdicts = ShardVerdictsFn(self.source, self.per_shard_cap)
        return records | "ByShard" >> GroupInParts(
            lambda g: g | "Verdicts" >> beam.ParDo(verdicts).with_outputs(BROADCAST, PER_FILE, "paths"),
            tags=(BROADCAST, PER_FILE, "paths"),
            parts=self.parts,
        )
