"""Document-level dedup across a whole source: exact (whole text) and near (MinHash LSH clusters).

Near dedup: signatures in batches → one `(band key, id)` per LSH band → `GroupByKey` per band key →
star edges from the smallest id of each bucket to every other member (a bucket of k documents gives
k-1 edges, not k²/2, and the same components) → distinct edges → connected components with
union-find → every member of a component except its smallest id is dropped (`near_duplicate`).
The drop list meets the documents by a join keyed on document id (unique keys, so no hot key).

Memory: the components step gathers all distinct edges on ONE worker (union-find over a dict of ids).
Edges exist only between candidate duplicates, so the count is at most (bands × duplicated
documents); at ~250 bytes per edge (two id strings + dict entries) an 8 GB worker holds ~30M edges,
which is the point where this design stops working and a distributed (iterative min-label) components
step is needed. Exact dedup keys documents by the SHA1 of their text and keeps the smallest id with a
`CombinePerKey(min)`, so a text repeated 100k times is combined, not grouped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from filters.document import Document
from manifests.schema import MinHashSettings
from pipeline.common import COUNTS, CountingDoFn


def connected_components(edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Union-find over id pairs: every id that appears in an edge → the smallest id of its component."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            # The smaller id becomes the root, so a component's root is its smallest id.
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
        parent.setdefault(a, a)
        parent.setdefault(b, b)
    return {x: find(x) for x in parent}


class BandKeysFn(beam.DoFn):
    """MinHash signatures for a batch of documents, one `(band key, id)` per band."""

    def __init__(self, settings: MinHashSettings) -> None:
        self.settings = settings

    def setup(self) -> None:
        from filters.minhash import MinHasher, lsh_params

        s = self.settings
        self._hasher = MinHasher(num_perm=s.num_perm, ngram=s.ngram, seed=s.seed)
        self._bands, self._rows = lsh_params(s.threshold, s.num_perm)

    def process(self, batch: list[Document]) -> Iterator[tuple[bytes, str]]:
        from filters.minhash import band_keys_batch

        sigs = self._hasher.signatures([d.text for d in batch])
        for doc, keys in zip(batch, band_keys_batch(sigs, self._bands, self._rows), strict=True):
            for key in keys:
                yield key, doc.id


def star_edges(item: tuple[bytes, Iterable[str]]) -> Iterator[tuple[str, str]]:
    """Edges from the bucket's smallest id to each other member (enough for the same components)."""
    ids = sorted(set(item[1]))
    for other in ids[1:]:
        yield ids[0], other


def component_drops(item: tuple[Any, Iterable[tuple[str, str]]]) -> Iterator[tuple[str, str]]:
    """`(id, root)` for every document that is not the smallest id of its near-duplicate cluster."""
    for node, root in connected_components(item[1]).items():
        if node != root:
            yield node, root


class DropListedFn(CountingDoFn):
    """Joins documents with a drop list keyed by id; counts the drops under `reason`."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(source)
        self.reason = reason

    def process(self, item: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        docs, marks = item[1]["docs"], item[1]["drop"]
        if marks:
            self.drop(self.reason, len(docs))
            return
        yield from docs


class NearDedup(beam.PTransform):
    """MinHash LSH near-dedup across a source: one document (the smallest id) kept per cluster."""

    def __init__(self, source: str, settings: MinHashSettings, batch_size: int = 256) -> None:
        super().__init__()
        self.source = source
        self.settings = settings
        self.batch_size = batch_size

    def expand(self, docs: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        drops = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.batch_size)
            | "BandKeys" >> beam.ParDo(BandKeysFn(self.settings))
            | "Buckets" >> beam.GroupByKey()
            | "StarEdges" >> beam.FlatMap(star_edges)
            | "DistinctEdges" >> beam.Distinct()
            | "AllEdges" >> beam.Map(lambda e: (None, e))
            | "Gather" >> beam.GroupByKey()
            | "Components" >> beam.FlatMap(component_drops)
        )
        return _drop_join(docs, drops, self.source, "near_duplicate")


def _drop_join(docs: beam.PCollection, drops: beam.PCollection, source: str, reason: str):
    keyed = docs | "ById" >> beam.Map(lambda d: (d.id, d))
    return (
        {"docs": keyed, "drop": drops}
        | "Join" >> beam.CoGroupByKey()
        | "Drop" >> beam.ParDo(DropListedFn(source, reason)).with_outputs(COUNTS, main="docs")
    )


def text_digest(doc: Document) -> tuple[str, str]:
    return hashlib.sha1(doc.text.encode("utf-8", errors="replace")).hexdigest(), doc.id


class ExactDedup(beam.PTransform):
    """Whole-text exact dedup: among documents with the same SHA1 the smallest id is kept."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.source = source

    def expand(self, docs: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        keepers = (
            docs
            | "Digest" >> beam.Map(text_digest)
            | "SmallestId" >> beam.CombinePerKey(min)
            | "KeeperIds" >> beam.Map(lambda kv: (kv[1], True))
        )
        keyed = docs | "ById" >> beam.Map(lambda d: (d.id, d))
        return (
            {"docs": keyed, "keep": keepers}
            | "Join" >> beam.CoGroupByKey()
            | "Keep" >> beam.ParDo(KeepListedFn(self.source)).with_outputs(COUNTS, main="docs")
        )


class KeepListedFn(CountingDoFn):
    """Keeps the documents whose id is a keeper; the rest are exact duplicates."""

    def process(self, item: tuple[str, dict[str, list[Any]]]) -> Iterator[Any]:
        docs, keep = item[1]["docs"], item[1]["keep"]
        if keep:
            yield from docs
        else:
            self.drop("exact_duplicate", len(docs))
