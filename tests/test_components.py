"""Distributed near-duplicate clusters (pipeline/components.py) equal union-find exactly, with bounded groups.

Graphs are the adversarial ones for components in MapReduce: a long path (label propagation needs n rounds;
large-star/small-star ~log2 n), a star of a million leaves (a naive large-star / small-star groups every
neighbour of the centre on one worker), many small components, and a random graph at the percolation
threshold (a giant component with long paths). Every run is Beam's FnApiRunner, in-process, 1 worker.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics import MetricsFilter

from filters.components import union_find_roots
from filters.minhash import MinHasher, band_keys_batch, lsh_params
from pipeline.components import BucketEdges, ConnectedComponents, NotConvergedError
from pipeline.options import make_runner, pipeline_options


def _run(tmp_path: Path, build: Callable[[beam.Pipeline], dict[str, beam.PCollection]]):
    """Runs a pipeline whose named outputs are (str, str) pairs; returns their pairs and the metrics."""
    opts = pipeline_options(["--direct_num_workers", "1"])
    p = beam.Pipeline(runner=make_runner(opts), options=opts)
    named = build(p)
    for name, pcoll in named.items():
        _ = (
            pcoll
            | f"Format{name}" >> beam.MapTuple(lambda a, b: f"{a}\t{b}")
            | f"Write{name}" >> beam.io.WriteToText(str(tmp_path / name))
        )
    result = p.run()
    result.wait_until_finish()
    outputs = {}
    for name in named:
        pairs = []
        for f in sorted(tmp_path.glob(f"{name}-*")):
            pairs += [tuple(line.rstrip("\n").split("\t")) for line in f.open(encoding="utf-8")]
        outputs[name] = pairs
    return outputs, result.metrics().query(MetricsFilter())


def _components(tmp_path: Path, edges: list[tuple[str, str]], **settings) -> tuple[dict[str, str], object]:
    out, metrics = _run(
        tmp_path,
        lambda p: {"roots": p | beam.Create(edges, reshuffle=False) | ConnectedComponents(**settings)},
    )
    pairs = out["roots"]
    roots = dict(pairs)
    assert len(roots) == len(pairs), "a node came out twice"
    return roots, metrics


def _dist_max(metrics, name: str, step: str = "") -> int:
    found = [
        d.committed.max for d in metrics["distributions"] if d.key.metric.name == name and step in d.key.step
    ]
    assert found, f"no {name} metric"
    return max(found)


def test_union_find_reference() -> None:
    assert union_find_roots([]) == {}
    assert union_find_roots([("b", "a"), ("c", "b"), ("e", "d"), ("f", "f")]) == {
        "a": "a",
        "b": "a",
        "c": "a",
        "d": "d",
        "e": "d",
        "f": "f",
    }
    rng = random.Random(3)
    edges = [(str(rng.randrange(200)), str(rng.randrange(200))) for _ in range(150)]
    shuffled = edges[:]
    rng.shuffle(shuffled)
    assert union_find_roots(edges) == union_find_roots([(b, a) for a, b in shuffled])


def test_small_components_duplicates_loops_and_both_orientations(tmp_path: Path) -> None:
    """10,000 random components (trees and cycles, 1–12 nodes), random ids, every edge in both
    orientations and some twice, self-loops: exactly union-find; one shard (the default group size)."""
    rng = random.Random(11)
    edges: list[tuple[str, str]] = []
    for _ in range(10_000):
        size = rng.randint(1, 12)
        nodes = [f"{rng.getrandbits(40):010x}" for _ in range(size)]
        if size == 1:
            edges.append((nodes[0], nodes[0]))  # a node whose only edge is a self-loop
            continue
        for i in range(1, size):
            edges.append((nodes[i], nodes[rng.randrange(i)]))
        if size > 3 and rng.random() < 0.3:
            edges.append((nodes[0], nodes[-1]))  # a cycle
    edges += [(b, a) for a, b in rng.sample(edges, len(edges) // 2)]
    edges += rng.sample(edges, len(edges) // 5)
    edges.append((edges[0][0], edges[0][0]))  # a self-loop on a node that has other edges
    rng.shuffle(edges)
    roots, metrics = _components(tmp_path, edges)
    assert roots == union_find_roots(edges)
    assert _dist_max(metrics, "active_round") <= 8


def test_not_converged_is_a_clear_failure(tmp_path: Path) -> None:
    path = [f"{i:05d}" for i in range(2_000)]
    with pytest.raises(NotConvergedError, match="max_rounds=3"):
        _components(tmp_path, list(zip(path, path[1:], strict=False)), max_rounds=3)


def test_bad_ids_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="ids must be str"):
        _components(tmp_path, [("a", 7)], max_rounds=1)


def test_bucket_edges_exact(tmp_path: Path) -> None:
    """Edges member → smallest id of each bucket, a bucket of one gives none, multi-bucket members."""
    pairs = [(b"k1", "d3"), (b"k1", "d1"), (b"k1", "d2"), (b"k2", "d2"), (b"k2", "d9"), (b"k3", "d7")]
    pairs += [(b"k4", f"x{i:03d}") for i in range(300)]
    expected = []
    for key in {k for k, _ in pairs}:
        members = sorted(d for k, d in pairs if k == key)
        expected += [(m, members[0]) for m in members[1:]]
    for group_records in (10_000, 40):  # one shard, and ~8 shards with salted join groups
        out, _ = _run(
            tmp_path / str(group_records),
            lambda p, g=group_records: {
                "edges": p | beam.Create(pairs, reshuffle=False) | BucketEdges(group_records=g)
            },
        )
        assert sorted(out["edges"]) == sorted(expected)


@pytest.mark.slow
def test_path_of_100k_nodes(tmp_path: Path) -> None:
    """Sorted ids, smallest at one end: the worst case for label propagation; ~log2(n) rounds here.
    group_records = 20,000 makes ~5 shards, so the salted multi-shard joins are what runs."""
    ids = [f"{i:06d}" for i in range(100_000)]
    edges = list(zip(ids, ids[1:], strict=False))
    random.Random(5).shuffle(edges)
    roots, metrics = _components(tmp_path, edges, group_records=20_000)
    assert roots == union_find_roots(edges)
    assert set(roots.values()) == {"000000"}
    rounds = _dist_max(metrics, "active_round")
    assert 12 <= rounds <= 24, rounds
    assert _dist_max(metrics, "join_group_records") <= 2 * 20_000


@pytest.mark.slow
def test_star_of_a_million_leaves(tmp_path: Path) -> None:
    """Centre in the middle of the id order: 500,001 smaller leaves (hot for small-star) and 499,999
    larger ones (hot for large-star). No join group holds more than ~2 × group_records ids."""
    leaves = [f"{i:07d}" for i in range(1_000_000)]
    centre = "0500000c"  # "0500000" < centre < "0500001"
    edges = [(centre, leaf) if i % 2 else (leaf, centre) for i, leaf in enumerate(leaves)]
    roots, metrics = _components(tmp_path, edges, group_records=50_000)
    assert len(roots) == 1_000_001
    assert set(roots.values()) == {"0000000"}
    biggest = _dist_max(metrics, "join_group_records")
    assert biggest <= 2 * 50_000, biggest
    assert _dist_max(metrics, "stats_group_records") <= 4 * 50_000  # ≤ 4 small entries a record


@pytest.mark.slow
def test_random_graph_at_the_percolation_threshold(tmp_path: Path) -> None:
    """G(n, p) with mean degree 1 (critical): a giant component of ~n^(2/3) nodes, long paths, many trees."""
    rng = np.random.default_rng(7)
    n = 200_000
    m = n // 2
    a, b = rng.integers(0, n, size=m), rng.integers(0, n, size=m)
    names = [f"{(x * 2654435761) % (1 << 32):08x}{x:06d}" for x in range(n)]  # ids in no graph order
    edges = [(names[x], names[y]) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    expected = union_find_roots(edges)
    sizes: dict[str, int] = {}
    for root in expected.values():
        sizes[root] = sizes.get(root, 0) + 1
    assert max(sizes.values()) > 1_000  # really at the threshold: a giant component
    roots, metrics = _components(tmp_path, edges, group_records=25_000)
    assert roots == expected
    assert _dist_max(metrics, "join_group_records") <= 2 * 25_000


def _identical_band_keys(n_docs: int) -> list[tuple[bytes, str]]:
    """Band keys of `n_docs` copies of one page: every band bucket holds every document."""
    text = " ".join(f"word{i % 97} token{i % 13} item{i}" for i in range(400))
    hasher = MinHasher(num_perm=128, ngram=13, seed=1)
    bands, rows = lsh_params(0.8, 128)
    sigs = hasher.signatures([text, text])
    assert np.array_equal(sigs[0], sigs[1])
    keys = band_keys_batch(np.repeat(sigs[:1], n_docs, axis=0), bands, rows)
    assert all(len(k) == bands for k in keys[:3])
    order = list(range(n_docs))
    random.Random(2).shuffle(order)
    return [(key, f"doc{i:06d}") for i in order for key in keys[i]]


@pytest.mark.slow
def test_all_documents_identical_keep_exactly_one(tmp_path: Path) -> None:
    """One bucket per band holding all 30,000 documents: BucketEdges never gathers it (join groups stay
    ~group_records), and components keep exactly one document, the smallest id."""
    n_docs = 30_000
    pairs = _identical_band_keys(n_docs)
    bands = len(pairs) // n_docs

    def build(p: beam.Pipeline) -> dict[str, beam.PCollection]:
        edges = p | beam.Create(pairs, reshuffle=False) | BucketEdges(group_records=10_000)
        return {"edges": edges, "roots": edges | ConnectedComponents(group_records=10_000)}

    out, metrics = _run(tmp_path, build)
    assert len(out["edges"]) == bands * (n_docs - 1)
    assert {root for _, root in out["edges"]} == {"doc000000"}
    roots = dict(out["roots"])
    assert len(roots) == n_docs
    survivors = [d for d, r in roots.items() if d == r]
    assert survivors == ["doc000000"]
    bucket_join = _dist_max(metrics, "join_group_records", step="BucketEdges")
    assert bucket_join <= 2 * 10_000 < n_docs * bands, bucket_join
