"""Benchmark: how a whole `corral build` scales with the corpus (memory and time) and with workers.

For N, 2N and 4N synthetic WET pages (benchmarks/synth.py; N = 40k by default) and 1 and 2 workers it
runs `corral build` as a subprocess on a manifest with one `wet` source — the CCNet chain without
perplexity and wiki-ref, then MinHash at 0.8 — and samples, at ~10 Hz, the RSS of the runner process, of
every descendant (Beam's multi-processing workers) and of the whole tree. Prints a table and:
  rss_per_text_mib: X.XX            peak tree RSS (MiB) per MiB of WET text at 4N, worst worker count
  rss_growth_4x: X.XXx              peak tree RSS at 4N / at N, worst worker count (linear would be 4x)
  time_growth_4x: X.XXx             wall time at 4N / at N, 1 worker (linear would be 4x)
  build_2_vs_1_workers: X.XXx       documents/s with 2 workers / with 1, at 4N
  workers_agree: yes|NO            1 and 2 workers kept and dropped the same counts at every size
  small_record_bytes_per_doc: X.X   when the build's manifest `stats` reports `--small-records-key`
  chain_vs_previous: X.XXx          with `--baseline FILE` (a results JSON of an earlier run of this
                                    script): documents/s now / then, 1 worker, at each size both have
The corpora are generated once per parameters and kept under build/bench/synth-* (delete to regenerate);
results go to build/bench/scale-results.json. Arguments after the known ones go to the build (Beam flags,
e.g. `--direct_running_mode multi_processing`); the environment passes through (e.g. MALLOC_ARENA_MAX=2).
Run: python -m benchmarks.scale [--docs 40000] [--quick] [--scales 1,2,4] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `python benchmarks/scale.py` as well as `python -m benchmarks.scale`
BENCH = REPO / "build" / "bench"
SOURCE = "cc"
MANIFEST = """\
# written by benchmarks/scale.py: the CCNet chain without perplexity and wiki-ref, then MinHash 0.8
output = "out"
seed = 1

[sources.{source}]
reader = "wet"
inputs = [{glob}]
weight = 1.0

[sources.{source}.ccnet]
enabled = true
perplexity = false
wikiref = false

[sources.{source}.minhash]
enabled = true
threshold = 0.8
"""


@dataclass
class Run:
    docs: int
    workers: int
    text_mib: float
    ok: bool = False
    wall_s: float = 0.0
    docs_per_s: float = 0.0
    peak_tree_mib: float = 0.0  # the sum over the tree, at the sampled instant where it was largest
    peak_runner_mib: float = 0.0
    peak_worker_mib: float = 0.0  # the largest single descendant
    samples: int = 0
    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)
    error: str = ""
    planted: dict[str, int] = field(default_factory=dict)  # what the corpus should make the build drop


def planted_drops(folder: Path) -> dict[str, int]:
    """From planted.json: near-duplicates removable (all but one per cluster and chain, all but one hot
    copy), exact copies (empty after line dedup), short pages, non-English pages."""
    g = json.loads((folder / "planted.json").read_text())["groups"]
    near = sum(len(c) - 1 for c in g["near_dup"]) + 2 * len(g["chains"]) + max(len(g["hot"]) - 1, 0)
    return {
        "near_duplicate_at_most": near,
        "exact_copies": sum(len(c) for c in g["exact"]),
        "short": len(g["short"]),
        "non_english": sum(len(v) for v in g["non_english"].values()),
    }


def corpus_dir(n_docs: int, n_files: int, seed: int) -> Path:
    from benchmarks.synth import GENERATOR_VERSION

    return BENCH / f"synth-v{GENERATOR_VERSION}-{n_docs}d-{n_files}f-s{seed}"


def ensure_corpus(n_docs: int, n_files: int, seed: int, workers: int) -> tuple[Path, float]:
    """The cached corpus for these parameters (generated when missing); returns (folder, text MiB)."""
    from benchmarks.synth import GENERATOR_VERSION, SynthConfig, write_wet_corpus

    folder = corpus_dir(n_docs, n_files, seed)
    planted = folder / "planted.json"  # written last: its presence means the corpus is complete
    want = {"n_docs": n_docs, "n_files": n_files, "seed": seed, "config": asdict(SynthConfig())}
    want["generator_version"] = GENERATOR_VERSION
    if planted.exists():
        meta = json.loads(planted.read_text())
        if {k: meta.get(k) for k in want} == want:
            return folder, meta["text_bytes"] / 2**20
    if folder.exists():
        shutil.rmtree(folder)
    start = time.perf_counter()
    c = write_wet_corpus(folder, n_docs, n_files, seed, workers=workers)
    print(
        f"generated {n_docs} documents ({c.text_bytes / 2**20:.0f} MiB of text, {n_files} files) "
        f"in {time.perf_counter() - start:.1f} s → {folder}",
        flush=True,
    )
    return folder, c.text_bytes / 2**20


class TreeSampler(threading.Thread):
    """Peak RSS of a process, of its largest descendant and of the whole tree, sampled every `period` s."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.period = period
        self.stop = threading.Event()
        self.peak_tree = self.peak_root = self.peak_child = 0
        self.samples = 0

    def run(self) -> None:
        known: dict[int, psutil.Process] = {}
        while not self.stop.is_set():
            try:
                root_rss = self.root.memory_info().rss
                children = self.root.children(recursive=True)
            except psutil.Error:
                break
            total, biggest = root_rss, 0
            for child in children:
                proc = known.setdefault(child.pid, child)  # reuse Process objects: cheaper, pid-reuse safe
                try:
                    rss = proc.memory_info().rss
                except psutil.Error:
                    continue
                total += rss
                biggest = max(biggest, rss)
            self.peak_root = max(self.peak_root, root_rss)
            self.peak_child = max(self.peak_child, biggest)
            self.peak_tree = max(self.peak_tree, total)
            self.samples += 1
            self.stop.wait(self.period)


def corral_command() -> list[str]:
    script = Path(sys.executable).with_name("corral")
    return [str(script)] if script.exists() else [sys.executable, "-m", "corral.cli"]


def run_build(
    folder: Path,
    run: Run,
    work: Path,
    extra: list[str],
    keep: bool,
    manifest_text: str = MANIFEST,
    tag: str = "",
) -> Run:
    """One `corral build` of `folder` as a subprocess, its process tree sampled; output in
    work/out-<docs>-<workers>w<tag> (removed unless `keep`)."""
    manifest = work / f"scale{tag}.toml"
    work.mkdir(parents=True, exist_ok=True)
    manifest.write_text(manifest_text.format(source=SOURCE, glob=json.dumps(str(folder / "*.warc.wet.gz"))))
    out = work / f"out-{run.docs}-{run.workers}w{tag}"
    if out.exists():
        shutil.rmtree(out)
    argv = corral_command() + ["build", "--manifest", str(manifest), "--output", str(out), "--force"]
    argv += ["--direct_num_workers", str(run.workers), *extra]
    log = work / f"build-{run.docs}-{run.workers}w{tag}.log"
    start = time.perf_counter()
    with open(log, "wb") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, cwd=REPO)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
    run.wall_s = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    run.peak_tree_mib = sampler.peak_tree / 2**20
    run.peak_runner_mib = sampler.peak_root / 2**20
    run.peak_worker_mib = sampler.peak_child / 2**20
    run.samples = sampler.samples
    run.docs_per_s = run.docs / run.wall_s
    manifest_json = out / SOURCE / "manifest.json"
    if rc != 0 or not manifest_json.exists():
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        run.error = f"exit {rc}: " + " | ".join(tail) + f" (log: {log})"
    else:
        m = json.loads(manifest_json.read_text())
        run.read, run.kept = m["read"], m["kept"]
        run.dropped, run.stats = m.get("dropped", {}), m.get("stats", {})
        run.ok = True
    if not keep and out.exists():
        shutil.rmtree(out)
    return run


def _fmt_docs(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def report(runs: list[Run], base_n: int, scales: list[int], args: argparse.Namespace) -> None:
    print("\n| documents (WET text) | workers | wall | docs/s | peak RSS (tree) | runner | largest worker |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        if not r.ok:
            print(f"| {_fmt_docs(r.docs)} ({r.text_mib:.0f} MiB) | {r.workers} | failed: {r.error} |||||")
            continue
        print(
            f"| {_fmt_docs(r.docs)} ({r.text_mib:.0f} MiB) | {r.workers} | {r.wall_s:.0f} s | {r.docs_per_s:.0f} "
            f"| {r.peak_tree_mib / 1024:.2f} GiB | {r.peak_runner_mib / 1024:.2f} GiB "
            f"| {r.peak_worker_mib / 1024:.2f} GiB |"
        )
    print()
    by = {(r.docs, r.workers): r for r in runs if r.ok}
    big, small = base_n * max(scales), base_n * min(scales)
    growth = max(scales) / min(scales)
    tag = f"{growth:g}x" if growth != 4 else "4x"
    workers = sorted({r.workers for r in runs})
    per_text = {w: by[(big, w)].peak_tree_mib / by[(big, w)].text_mib for w in workers if (big, w) in by}
    for w, v in per_text.items():
        print(f"rss_per_text_mib_{w}_worker{'s' if w > 1 else ''}: {v:.2f} (at {_fmt_docs(big)})")
    if per_text:
        print(f"rss_per_text_mib: {max(per_text.values()):.2f}")
    rss_growth = {
        w: by[(big, w)].peak_tree_mib / by[(small, w)].peak_tree_mib
        for w in workers
        if (big, w) in by and (small, w) in by
    }
    for w, v in rss_growth.items():
        print(f"rss_growth_{tag}_{w}_worker{'s' if w > 1 else ''}: {v:.2f}x")
    if rss_growth:
        print(f"rss_growth_{tag}: {max(rss_growth.values()):.2f}x")
    w1 = min(workers)
    if (big, w1) in by and (small, w1) in by:
        print(f"time_growth_{tag}: {by[(big, w1)].wall_s / by[(small, w1)].wall_s:.2f}x")
    if (big, 1) in by and (big, 2) in by:
        print(f"build_2_vs_1_workers: {by[(big, 2)].docs_per_s / by[(big, 1)].docs_per_s:.2f}x")
    agree = [
        (n, (a.read, a.kept, a.dropped) == (b.read, b.kept, b.dropped))
        for n in sorted({r.docs for r in runs})
        if (a := by.get((n, 1))) and (b := by.get((n, 2)))
    ]
    if agree:
        bad = [_fmt_docs(n) for n, same in agree if not same]
        print("workers_agree: " + ("yes" if not bad else f"NO (differ at {', '.join(bad)})"))
    key = args.small_records_key
    have = [r for r in runs if r.ok and key in r.stats]
    if have:
        for r in have:
            print(
                f"small_record_bytes_per_doc ({_fmt_docs(r.docs)}, {r.workers}w): {r.stats[key] / r.docs:.1f}"
            )
    else:
        print(f"small_record_bytes_per_doc: not reported (no `{key}` in the build manifest's stats)")
    if args.baseline:
        old = {(r["docs"], r["workers"]): r for r in json.loads(Path(args.baseline).read_text())["runs"]}
        pairs = [(n, by[(n, 1)], old[(n, 1)]) for n in sorted({r.docs for r in runs}) if (n, 1) in by]
        pairs = [(n, new, o) for n, new, o in pairs if o.get("ok")]
        for n, new, o in pairs:
            print(f"chain_vs_previous ({_fmt_docs(n)}, 1 worker): {new.docs_per_s / o['docs_per_s']:.2f}x")
        if pairs:
            n, new, o = pairs[-1]
            print(f"chain_vs_previous: {new.docs_per_s / o['docs_per_s']:.2f}x")
    for r in runs:
        if r.ok:
            print(f"{_fmt_docs(r.docs)} {r.workers}w: read {r.read} kept {r.kept} dropped {r.dropped}")
    for n in sorted({r.docs for r in runs}):
        print(f"{_fmt_docs(n)} planted: {next(r.planted for r in runs if r.docs == n)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n", 1)[0])
    ap.add_argument("--docs", type=int, default=40000, help="N: the smallest corpus (default 40000)")
    ap.add_argument("--quick", action="store_true", help="N = 2000 (a smoke run of the harness)")
    ap.add_argument("--scales", default="1,2,4", help="multiples of N to build (default 1,2,4)")
    ap.add_argument("--workers", default="1,2", help="--direct_num_workers values (default 1,2)")
    ap.add_argument("--docs-per-file", type=int, default=2500, help="pages per WET file (default 2500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen-workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--small-records-key", default="small_record_bytes", help="manifest stats key to report")
    ap.add_argument("--baseline", help="results JSON of an earlier run, for chain_vs_previous")
    ap.add_argument("--keep-output", action="store_true", help="keep each build's output folder")
    ap.add_argument("--results", default=str(BENCH / "scale-results.json"))
    args, extra = ap.parse_known_args(argv)
    base_n = 2000 if args.quick else args.docs
    scales = [int(s) for s in args.scales.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    runs: list[Run] = []
    for scale in scales:
        n = base_n * scale
        folder, text_mib = ensure_corpus(n, max(1, n // args.docs_per_file), args.seed, args.gen_workers)
        for w in worker_counts:
            run = Run(n, w, text_mib, planted=planted_drops(folder))
            run = run_build(folder, run, BENCH / "scale", extra, args.keep_output)
            status = "ok" if run.ok else run.error
            print(
                f"{_fmt_docs(n)} docs, {w} worker(s): {run.wall_s:.1f} s, {run.docs_per_s:.0f} docs/s, "
                f"peak tree {run.peak_tree_mib:.0f} MiB (runner {run.peak_runner_mib:.0f}, largest worker "
                f"{run.peak_worker_mib:.0f}; {run.samples} samples) — {status}",
                flush=True,
            )
            runs.append(run)
    report(runs, base_n, scales, args)
    results: dict[str, Any] = {"base_docs": base_n, "scales": scales, "extra_args": extra}
    results["runs"] = [asdict(r) for r in runs]
    from manifests.storage import write_text_atomic

    write_text_atomic(args.results, json.dumps(results, indent=1) + "\n")
    print(f"results: {args.results}")
    return 0 if all(r.ok for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
