"""Near-duplicate clusters: which document of a connected group of candidate pairs is kept.

The rule: every document of a connected component of the candidate-pair graph except the component's
smallest id is a near duplicate. BigCode's `near_deduplication/minhash_deduplication_spark.py` does the
same: its components are `(node, smallest node)` pairs for every node but the smallest, and the documents
that find no pair are kept. `union_find_roots` is the rule in one process: the reference the distributed
`pipeline.components.ConnectedComponents` must equal exactly, and the baseline of its benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable


def union_find_roots(edges: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Every id that appears in an edge → the smallest id of its connected component.

    Union by "smaller id wins" keeps each root the smallest id seen so far in its set; path halving keeps
    finds near-constant. Memory: one dict entry per distinct id (one process: the single-worker baseline).
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while (p := parent[x]) != x:
            parent[x] = parent[p]  # path halving
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            if ra < rb:
                parent[rb] = ra
            else:
                parent[ra] = rb
    return {x: find(x) for x in parent}
