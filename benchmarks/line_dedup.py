"""Benchmark: the two line-dedup lookups of `corral build` side by side on one synthetic WET corpus.

"broadcast" sends every hash shard's duplicated hashes to every worker (fast while that set is small);
"per_file" (forced with `broadcast_max_hashes = 0`) computes the verdicts at the hash shards and sends them
back keyed by input file, so no worker holds more than one shard's duplicated set. Both builds run the
CCNet chain without perplexity, wiki-ref and MinHash (line dedup is what differs), as subprocesses with
their process tree sampled (benchmarks/scale.py). Prints:
  line_dedup_bounded_vs_broadcast: X.XXx        documents/s per_file / broadcast
  line_dedup_bounded_vs_broadcast_rss: X.XXx    peak tree RSS per_file / broadcast
  verdicts_identical: yes|NO                    the two outputs are byte-identical
Run: python -m benchmarks.line_dedup [--docs 20000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.scale import BENCH, SOURCE, Run, ensure_corpus, run_build  # noqa: E402
from benchmarks.scale import MANIFEST as SCALE_MANIFEST  # noqa: E402

# scale.py's manifest with MinHash off and a slot for the lookup setting: line dedup is what differs.
MANIFEST = SCALE_MANIFEST.replace("wikiref = false\n", "wikiref = false\nLOOKUP\n").replace(
    "enabled = true\nthreshold = 0.8\n", "enabled = false\n"
)
assert "LOOKUP" in MANIFEST and "threshold" not in MANIFEST, "benchmarks/scale.py's manifest changed"
PATHS = {"broadcast": "", "per_file": "broadcast_max_hashes = 0"}


def _parts(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / SOURCE).glob("part-*.parquet"))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.line_dedup", description=__doc__.split("\n", 1)[0]
    )
    ap.add_argument("--docs", type=int, default=20000, help="synthetic WET pages (default 20000)")
    ap.add_argument("--quick", action="store_true", help="2000 pages (a smoke run)")
    ap.add_argument("--docs-per-file", type=int, default=2500)
    ap.add_argument("--workers", type=int, default=1)
    args, extra = ap.parse_known_args(argv)
    n = 2000 if args.quick else args.docs
    folder, text_mib = ensure_corpus(n, max(1, n // args.docs_per_file), 0, 2)
    work = BENCH / "line_dedup"
    runs: dict[str, Run] = {}
    for path, line in PATHS.items():
        text = MANIFEST.replace("LOOKUP", line)
        run = run_build(folder, Run(n, args.workers, text_mib), work, extra, True, text, f"-{path}")
        if not run.ok:
            print(f"{path}: FAILED {run.error}")
            return 1
        print(
            f"{path}: {run.wall_s:.1f} s, {run.docs_per_s:.0f} docs/s, peak tree {run.peak_tree_mib:.0f} MiB, "
            f"kept {run.kept} of {run.read}, lines removed {run.stats.get('lines_removed')}",
            flush=True,
        )
        runs[path] = run
    outs = {p: work / f"out-{n}-{args.workers}w-{p}" for p in PATHS}
    identical = _parts(outs["broadcast"]) == _parts(outs["per_file"])
    ran = {
        p: json.loads((o / SOURCE / "manifest.json").read_text())["paths"]["line_dedup"]
        for p, o in outs.items()
    }
    if any(ran[p] != p for p in PATHS):
        print(f"the builds took other lookup paths than asked: {ran}")
        return 1
    b, f = runs["broadcast"], runs["per_file"]
    print(f"line_dedup_bounded_vs_broadcast: {f.docs_per_s / b.docs_per_s:.2f}x")
    print(f"line_dedup_bounded_vs_broadcast_rss: {f.peak_tree_mib / b.peak_tree_mib:.2f}x")
    print(f"verdicts_identical: {'yes' if identical else 'NO'}")
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
