"""Document-level dedup across a source, on ids only: whole-text duplicates, second copies of an id, and
MinHash near-duplicate clusters.

All three start from `(key, node)` records the passes emit (a text digest, a document id, a MinHash band key;
a node is a document id with its file number, `pipeline.read.node_id`), packed per input file and key shard
(`NodePacker`): a Beam element carries thousands of records, not one, so the runner's buffers and the
shuffle pay a few bytes of framing per record instead of a few hundred.

- exact / same id: every member of a key group except the smallest node is dropped;
- near: members of a band bucket are joined to the bucket's smallest node, the edges form clusters
  (connected components), and every member of a cluster except its smallest node is dropped.

Two ways to find the groups (`[sources.X.clusters] algorithm`):
- `sharded`: one group per key shard (`key_shards`) gathers its records on one worker; near-duplicate edges
  (only between candidate duplicates: few) meet in one union-find. Fast, no fixed cost; memory per worker:
  one key shard (a template page copied a million times: its million records in one shard) and all edges.
- `distributed` (`pipeline.components`): no bucket and no component is ever held whole (a combined minimum,
  salted join groups, large-star/small-star rounds unrolled in the graph); memory per worker bounded by a
  setting; a fixed cost of ~0.2 s a round on the local runner, whose process keeps every round's records.
- `auto`: `sharded` on Beam's local runners, or when the source's input is at most `sharded_max_input_bytes`;
  `distributed` otherwise.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from filters.components import union_find_roots
from pipeline.components import BucketEdges, ConnectedComponents
from pipeline.grouping import GroupInParts

Packed = tuple[int, tuple[int, "Strings", "Strings"]]  # (key shard, (file, keys, nodes))


class Strings:
    """Many short strings (or byte strings) as one buffer and their sizes: one Python object for thousands of
    records wherever Beam's local runner decodes and holds them (its grouping buffers keep decoded values,
    and encode them all again at once when the grouped collection is read). Equal-width items (band keys,
    digests) store no sizes; others store them in the narrowest unsigned type that fits (ids: one byte).
    Text is zlib-compressed: the ids of one file share their prefix (the file's name), so they shrink ~2-5×."""

    __slots__ = ("count", "data", "sizes", "text", "width")

    def __init__(self, items: list[Any]) -> None:
        self.text = bool(items) and isinstance(items[0], str)
        raw = [i.encode("utf-8", errors="surrogatepass") for i in items] if self.text else items
        self.data = zlib.compress(b"".join(raw), 1) if self.text else b"".join(raw)
        self.count = len(raw)
        lengths = np.fromiter(map(len, raw), dtype=np.int64, count=len(raw))
        if len(lengths) and lengths.min() == lengths.max():
            self.width, self.sizes = int(lengths[0]), None
        else:
            self.width = -1
            self.sizes = lengths.astype(np.min_scalar_type(int(lengths.max()) if len(lengths) else 0))

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Any]:
        data = zlib.decompress(self.data) if self.text else self.data
        if self.sizes is None:
            bounds = [i * self.width for i in range(self.count + 1)]
        else:
            bounds = [0, *np.cumsum(self.sizes, dtype=np.int64).tolist()]
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            piece = data[lo:hi]
            yield piece.decode("utf-8", errors="surrogatepass") if self.text else piece

    def __reduce__(self) -> tuple[Any, ...]:
        return _strings, (self.data, self.count, self.width, self.sizes, self.text)


def _strings(data: bytes, count: int, width: int, sizes: np.ndarray | None, text: bool) -> Strings:
    out = Strings.__new__(Strings)
    out.data, out.count, out.width, out.sizes, out.text = data, count, width, sizes, text
    return out


def key_shard(key: bytes | str, shards: int) -> int:
    data = key.encode("utf-8", errors="surrogatepass") if isinstance(key, str) else key
    return zlib.crc32(data) % shards


class NodePacker:
    """`(key, node)` records of one input file, batched per key shard (`add`, then `flush` at the end)."""

    def __init__(self, file_index: int, shards: int, max_records: int = 50_000) -> None:
        self.file_index = file_index
        self.shards = shards
        self.max_records = max_records
        self._keys: dict[int, list[Any]] = {}
        self._nodes: dict[int, list[str]] = {}
        self.records = 0

    def add(self, key: bytes | str, node: str) -> Iterator[Packed]:
        shard = key_shard(key, self.shards)
        self._keys.setdefault(shard, []).append(key)
        nodes = self._nodes.setdefault(shard, [])
        nodes.append(node)
        self.records += 1
        if len(nodes) >= self.max_records:
            yield self._take(shard)

    def _take(self, shard: int) -> Packed:
        return shard, (self.file_index, Strings(self._keys.pop(shard)), Strings(self._nodes.pop(shard)))

    def flush(self) -> Iterator[Packed]:
        for shard in sorted(self._nodes):
            yield self._take(shard)


def _unpack(packed: Packed) -> Iterator[tuple[Any, str]]:
    _, (_, keys, nodes) = packed
    yield from zip(keys, nodes, strict=True)


def _shard_edges(item: tuple[int, Iterable[tuple[int, Strings, Strings]]]) -> Iterator[tuple[str, str]]:
    """Within one key shard: `(member, smallest node of its key group)` for every other member."""
    smallest: dict[Any, str] = {}
    members: dict[Any, list[str]] = {}
    for _, keys, nodes in item[1]:
        for key, node in zip(keys, nodes, strict=True):
            low = smallest.get(key)
            if low is None:
                smallest[key] = node
                continue
            group = members.setdefault(key, [low])
            group.append(node)
            if node < low:
                smallest[key] = node
    for key, group in members.items():
        low = smallest[key]
        for node in sorted(set(group)):
            if node != low:
                yield node, low


class GroupEdges(beam.PTransform):
    """Packed `(key, node)` records → `(member, smallest node of its key group)` edges."""

    def __init__(self, distributed: bool, parts: int = 1) -> None:
        super().__init__()
        self.distributed = distributed
        self.parts = parts  # `sharded`: the key shards grouped in this many parts (`pipeline.grouping`)

    def expand(self, packed: beam.PCollection) -> beam.PCollection:
        if self.distributed:
            return packed | "Unpack" >> beam.FlatMap(_unpack) | "BucketEdges" >> BucketEdges()
        edges = GroupInParts(lambda g: g | "ShardEdges" >> beam.FlatMap(_shard_edges), parts=self.parts)
        return packed | "ByShard" >> edges


def _union_find(item: tuple[None, Iterable[tuple[str, str]]]) -> Iterator[tuple[str, str]]:
    yield from union_find_roots(item[1]).items()


class Components(beam.PTransform):
    """Edges → `(node, root)`: root = the smallest node of the node's component."""

    def __init__(self, distributed: bool, max_rounds: int) -> None:
        super().__init__()
        self.distributed = distributed
        self.max_rounds = max_rounds

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        if self.distributed:
            return edges | "Rounds" >> ConnectedComponents(max_rounds=self.max_rounds)
        return (
            edges
            | "Distinct" >> beam.Distinct()
            | "One" >> beam.Map(lambda e: (None, e))
            | "Gather" >> beam.GroupByKey()
            | "UnionFind" >> beam.FlatMap(_union_find)
        )


class DuplicateMembers(beam.PTransform):
    """Packed `(key, node)` records → the nodes to drop: all but the smallest node of each key group."""

    def __init__(self, distributed: bool, parts: int = 1) -> None:
        super().__init__()
        self.distributed = distributed
        self.parts = parts

    def expand(self, packed: beam.PCollection) -> beam.PCollection:
        edges = GroupEdges(self.distributed, self.parts)
        return packed | "Edges" >> edges | "Members" >> beam.Map(lambda edge: edge[0])


class NearDuplicates(beam.PTransform):
    """Packed `(band key, node)` records → `(node, root)` for the nodes to drop: every member of a cluster
    but its root, the smallest node."""

    def __init__(self, distributed: bool, max_rounds: int, parts: int = 1) -> None:
        super().__init__()
        self.distributed = distributed
        self.max_rounds = max_rounds
        self.parts = parts

    def expand(self, packed: beam.PCollection) -> beam.PCollection:
        return (
            packed
            | "Edges" >> GroupEdges(self.distributed, self.parts)
            | "Components" >> Components(self.distributed, self.max_rounds)
            | "NotRoot" >> beam.Filter(lambda nr: nr[0] != nr[1])
        )


@beam.ptransform_fn
def ClusterSizes(near: beam.PCollection) -> beam.PCollection:  # noqa: N802 - a PTransform
    """`(node, root)` drops → `("cluster_size.K", n)`: how many clusters have K documents."""
    return (
        near
        | "ByRoot" >> beam.Map(lambda nr: (nr[1], 1))
        | "Members" >> beam.CombinePerKey(sum)
        | "BySize" >> beam.Map(lambda kv: (f"cluster_size.{kv[1] + 1}", 1))
        | "Clusters" >> beam.CombinePerKey(sum)
    )
