"""Benchmark: distributed connected components (pipeline/components.py) vs a plain in-memory union-find.

For 1M and 10M edges of a synthetic near-duplicate graph it runs, each as a subprocess whose process
tree is sampled for RSS (~10 Hz, `benchmarks.scale.TreeSampler`):
  - the baseline: one Python process reads the edge file, `filters.components.union_find_roots`, writes
    `node<TAB>root` lines;
  - Beam: `ReadFromText` → `ConnectedComponents` → `WriteToText` on the FnApiRunner (`--workers 1`:
    in-process, so runner and worker are one process; `--workers N`: N multi-processing workers).
Both outputs are checked identical (count and an order-free checksum of the lines). Prints per size:
  components_distributed_vs_unionfind: X.XXx        wall time, Beam / union-find
  components_distributed_vs_unionfind_rss: X.XXx    peak RSS of the whole process tree, Beam / union-find
plus the largest Beam worker's peak RSS and the rounds that had work.

The graph: components of Zipf-distributed size (2 … 50,000; exponent 2), each a random recursive tree
plus 25% extra edges inside it (near-duplicate clusters seen through several LSH bands), and 0.5% of the
edges in paths of 2,000 nodes (near-duplicate chains A~B~C, the slow case for star contraction). Ids are
a random permutation, so id order says nothing about the structure; edge order is shuffled.
Files go to build/bench/components/ (kept; delete to regenerate).
Run: python -m benchmarks.components [--only-1m] [--workers 1] [--max-rounds 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(
        0, str(REPO)
    )  # `python benchmarks/components.py` as well as `python -m benchmarks.components`
WORK = REPO / "build" / "bench" / "components"
GIB = 2**30


def make_graph(n_edges: int, path: Path, seed: int = 1) -> dict[str, int]:
    """Writes `a<TAB>b` lines of the synthetic near-duplicate graph; returns its sizes."""
    rng = np.random.default_rng(seed)
    chain_len = 2_000
    n_chain_edges = int(n_edges * 0.005) // (chain_len - 1) * (chain_len - 1)
    target = n_edges - n_chain_edges
    sizes: list[np.ndarray] = []
    total = 0
    while total < target:  # tree edges (s - 1) + extra (25% of that) per component
        s = np.minimum(rng.zipf(2.0, size=max(1000, target // 4)) + 1, 50_000)
        per = (s - 1) + ((s - 1) // 4) * (s >= 3)
        cum = np.cumsum(per)
        keep = int(np.searchsorted(cum, target - total, side="right")) + 1
        sizes.append(s[:keep])
        total += int(per[:keep].sum())
    size = np.concatenate(sizes).astype(np.int64)
    offset = np.concatenate([[0], np.cumsum(size)[:-1]])
    n_tree_nodes = int(size.sum())
    comp = np.repeat(np.arange(len(size)), size)
    local = np.arange(n_tree_nodes) - offset[comp]
    child = np.nonzero(local > 0)[0]
    parent = offset[comp[child]] + (rng.random(len(child)) * local[child]).astype(np.int64)
    extra_n = ((size - 1) // 4) * (size >= 3)
    extra_comp = np.repeat(np.arange(len(size)), extra_n)
    ea = offset[extra_comp] + (rng.random(len(extra_comp)) * size[extra_comp]).astype(np.int64)
    eb = offset[extra_comp] + (rng.random(len(extra_comp)) * size[extra_comp]).astype(np.int64)
    ea, eb = ea[ea != eb], eb[ea != eb]
    n_chains = n_chain_edges // (chain_len - 1)
    chain_nodes = n_tree_nodes + np.arange(n_chains * chain_len).reshape(n_chains, chain_len)
    ca, cb = chain_nodes[:, 1:].ravel(), chain_nodes[:, :-1].ravel()
    a = np.concatenate([child, ea, ca])
    b = np.concatenate([parent, eb, cb])
    n_nodes = n_tree_nodes + n_chains * chain_len
    order = rng.permutation(len(a))
    names = rng.permutation(n_nodes)
    with path.open("w", encoding="utf-8") as f:
        for lo in range(0, len(order), 1_000_000):
            idx = order[lo : lo + 1_000_000]
            f.writelines(
                f"d{x:010d}\td{y:010d}\n"
                for x, y in zip(names[a[idx]].tolist(), names[b[idx]].tolist(), strict=True)
            )
    return {"edges": len(a), "nodes": n_nodes, "components": len(size) + n_chains, "largest": int(size.max())}


def _read_edges(path: Path):
    with path.open(encoding="utf-8") as f:
        for line in f:
            a, b = line.rstrip("\n").split("\t")
            yield a, b


def run_unionfind(edges: Path, out: Path) -> dict[str, int]:
    from filters.components import union_find_roots

    roots = union_find_roots(_read_edges(edges))
    with out.open("w", encoding="utf-8") as f:
        f.writelines(f"{node}\t{root}\n" for node, root in roots.items())
    return {}


def run_beam(edges: Path, out: Path, workers: int, max_rounds: int) -> dict[str, int]:
    import apache_beam as beam
    from apache_beam.metrics import MetricsFilter

    from pipeline.components import ConnectedComponents
    from pipeline.options import make_runner, pipeline_options

    opts = pipeline_options(["--direct_num_workers", str(workers)])
    p = beam.Pipeline(runner=make_runner(opts), options=opts)
    _ = (
        p
        | "Read" >> beam.io.ReadFromText(str(edges))
        | "Parse" >> beam.Map(lambda line: tuple(line.split("\t")))
        | "Components" >> ConnectedComponents(max_rounds=max_rounds)
        | "Format" >> beam.MapTuple(lambda node, root: f"{node}\t{root}")
        | "Write" >> beam.io.WriteToText(str(out))
    )
    result = p.run()
    result.wait_until_finish()
    rounds = [
        d.committed.max
        for d in result.metrics().query(MetricsFilter().with_name("active_round"))["distributions"]
    ]
    return {"rounds": max(r for r in rounds if r is not None)}


def checksum(paths: list[Path]) -> tuple[int, int]:
    """(lines, sum of CRC32 of the lines mod 2^64): equal for the same lines in any order or split."""
    n = total = 0
    for path in paths:
        with path.open("rb") as f:
            for line in f:
                n += 1
                total = (total + zlib.crc32(line)) & 0xFFFFFFFFFFFFFFFF
    return n, total


def measure(argv: list[str]) -> dict[str, float]:
    from benchmarks.scale import TreeSampler

    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    stdout, _ = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(argv)} failed with exit code {proc.returncode}")
    info = json.loads(stdout.decode().strip().splitlines()[-1])
    return {
        "wall_s": wall,
        "tree_gib": sampler.peak_tree / GIB,
        "root_gib": sampler.peak_root / GIB,
        "child_gib": sampler.peak_child / GIB,
        **info,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only-1m", action="store_true", help="run the 1M-edge graph only")
    ap.add_argument("--workers", type=int, default=1, help="Beam local workers (1: in-process)")
    ap.add_argument("--max-rounds", type=int, default=32)
    ap.add_argument("--side", choices=["unionfind", "beam"], help=argparse.SUPPRESS)
    ap.add_argument("--edges", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side:  # child process: one side, its extra facts as the last stdout line
        if args.side == "unionfind":
            info = run_unionfind(args.edges, args.out)
        else:
            info = run_beam(args.edges, args.out, args.workers, args.max_rounds)
        print(json.dumps(info))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    for label, n_edges in [("1M", 1_000_000), ("10M", 10_000_000)][: 1 if args.only_1m else 2]:
        edges = WORK / f"edges-{label}.tsv"
        meta = WORK / f"edges-{label}.json"
        if not (edges.exists() and meta.exists()):
            t = time.perf_counter()
            meta.write_text(json.dumps(make_graph(n_edges, edges)))
            print(f"# generated {edges} in {time.perf_counter() - t:.1f} s", flush=True)
        sizes = json.loads(meta.read_text())
        me = [sys.executable, "-m", "benchmarks.components", "--edges", str(edges)]
        uf_out = WORK / f"roots-{label}-unionfind.tsv"
        uf = measure([*me, "--side", "unionfind", "--out", str(uf_out)])
        beam_prefix = WORK / f"roots-{label}-beam-{args.workers}w"
        for old in WORK.glob(beam_prefix.name + "*"):
            old.unlink()
        bm = measure(
            [*me, "--side", "beam", "--out", str(beam_prefix), "--workers", str(args.workers)]
            + ["--max-rounds", str(args.max_rounds)]
        )
        same = checksum([uf_out]) == checksum(sorted(WORK.glob(beam_prefix.name + "-*")))
        worker = bm["root_gib"] if args.workers == 1 else bm["child_gib"]
        print(
            f"# {label}: edges={sizes['edges']:,} nodes={sizes['nodes']:,} components={sizes['components']:,} "
            f"largest tree={sizes['largest']:,} rounds with work={bm['rounds']}\n"
            f"#   union-find, 1 process: {uf['wall_s']:.1f} s, peak RSS {uf['tree_gib']:.2f} GiB\n"
            f"#   Beam FnApiRunner, {args.workers} worker(s): {bm['wall_s']:.1f} s, peak RSS tree "
            f"{bm['tree_gib']:.2f} GiB, runner {bm['root_gib']:.2f} GiB, largest worker {worker:.2f} GiB\n"
            f"components_distributed_vs_unionfind: {bm['wall_s'] / uf['wall_s']:.2f}x  ({label} edges, wall)\n"
            f"components_distributed_vs_unionfind_rss: {bm['tree_gib'] / uf['tree_gib']:.2f}x  "
            f"({label} edges, peak tree RSS)\n"
            f"components_results_identical: {'yes' if same else 'NO'}",
            flush=True,
        )
        if not same:
            raise SystemExit(f"{label}: Beam and union-find roots differ")


if __name__ == "__main__":
    main()
