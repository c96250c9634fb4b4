"""Document-level dedup across a source, on ids only: whole-text duplicates and MinHash near-duplicate clusters.

Both start from `(key, node)` records emitted by the passes over the files (a text digest, or a MinHash
band key; a node is a document id with its file number, `pipeline.read.node_id`):

- exact: every member of a digest group except the smallest id is a `duplicate_text` drop;
- near: members of a band bucket are joined to the bucket's smallest id, the edges form clusters
  (connected components), and every member of a cluster except its smallest id is a `near_duplicate` drop.

The drops travel back to the files (or output parts) that hold the documents, keyed by file number.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import apache_beam as beam


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
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo
        parent.setdefault(a, a)
        parent.setdefault(b, b)
    return {x: find(x) for x in parent}


def _star_edges(item: tuple[bytes, Iterable[str]]) -> Iterator[tuple[str, str]]:
    members = sorted(set(item[1]))
    for other in members[1:]:
        yield other, members[0]


class BucketEdges(beam.PTransform):
    """`(bucket key, node)` → `(member, smallest node of its bucket)` for every other member."""

    def expand(self, keyed: beam.PCollection) -> beam.PCollection:
        return keyed | "Buckets" >> beam.GroupByKey() | "Star" >> beam.FlatMap(_star_edges)


class ConnectedComponents(beam.PTransform):
    """Edges `(a, b)` → `(node, root)`: root = the smallest node of the node's component."""

    def expand(self, edges: beam.PCollection) -> beam.PCollection:
        def components(item: tuple[None, Iterable[tuple[str, str]]]) -> Iterator[tuple[str, str]]:
            yield from connected_components(item[1]).items()

        return (
            edges
            | "Distinct" >> beam.Distinct()
            | "One" >> beam.Map(lambda e: (None, e))
            | "Gather" >> beam.GroupByKey()
            | "UnionFind" >> beam.FlatMap(components)
        )


class ExactDuplicates(beam.PTransform):
    """`(text digest, node)` → the nodes to drop (all but the smallest id of each digest)."""

    def expand(self, digests: beam.PCollection) -> beam.PCollection:
        return digests | "Edges" >> BucketEdges() | "Members" >> beam.Map(lambda edge: edge[0])


class NearDuplicates(beam.PTransform):
    """`(band key, node)` → `(node, root)` for the nodes to drop: every member of a cluster but its root,
    the smallest id."""

    def expand(self, bands: beam.PCollection) -> beam.PCollection:
        return (
            bands
            | "Edges" >> BucketEdges()
            | "Components" >> ConnectedComponents()
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
