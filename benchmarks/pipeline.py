"""Benchmark: the CCNet chain through Beam vs the same `filters/` calls in a plain loop, and whole builds.

Prints ratio lines measured side by side in this run:
  ccnet_chain_beam_vs_bare: X.XXx   documents/s per core, Beam (FnApiRunner, 1 worker) / plain loop
  build_2_vs_1_workers: X.XXx       whole-build documents/s, 2 workers / 1 worker
plus absolute rates and peak memory. The chain is normalise + line hash + global line dedup + LID (+
perplexity when `filters.perplexity` and a trained LM are available: pass --lm-dir DIR).
Documents: original synthetic English pages (tests/build_corpus.py), 4 shared boilerplate lines each.
Run: python benchmarks/pipeline.py [--docs 12000] [--lm-dir build/demo/lm]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This file is named like the `pipeline` package: take its own folder off the path so the package wins.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import apache_beam as beam  # noqa: E402
from build_corpus import BOILERPLATE, paragraph, wet_record  # noqa: E402

from filters.dedup import document_line_hashes, remove_duplicate_lines  # noqa: E402
from filters.document import Document  # noqa: E402
from filters.langid import LanguageIdentifier, passes_threshold  # noqa: E402
from manifests.schema import CCNetSettings  # noqa: E402
from pipeline.ccnet import CCNet, read_lm_index  # noqa: E402
from pipeline.options import make_runner, pipeline_options  # noqa: E402


def make_docs(n: int) -> list[Document]:
    rng = random.Random(5)
    docs = []
    for i in range(n):
        lines = [paragraph(rng, 3), BOILERPLATE[0], paragraph(rng, 4), BOILERPLATE[1], paragraph(rng, 2)]
        docs.append(Document(f"bench:{i:07d}", "commoncrawl", "\n".join(lines), {}))
    return docs


def bare_chain(docs: list[Document], settings: CCNetSettings, lm_dir: str | None) -> int:
    """The same filters/ calls, in one Python loop (the baseline)."""
    lid = LanguageIdentifier()
    docs = [d for d in docs if len(d.text) >= settings.min_length]
    hashes = [document_line_hashes(d.text) for d in docs]
    counts: Counter[int] = Counter()
    for hs in hashes:
        counts.update(hs)
    dup = {h for h, c in counts.items() if c >= 2}
    texts = [remove_duplicate_lines(d.text, dup, hs).text for d, hs in zip(docs, hashes, strict=True)]
    texts = [t for t in texts if t.strip()]
    kept = []
    for i in range(0, len(texts), settings.batch_size):
        batch = texts[i : i + settings.batch_size]
        for t, (lang, score) in zip(batch, lid.predict_batch(batch), strict=True):
            if passes_threshold(lang, score, settings.lang_threshold, settings.languages or None) is None:
                kept.append((t, lang))
    if settings.perplexity and lm_dir:
        import os

        from filters.perplexity import PerplexityScorer

        entry = read_lm_index(lm_dir)["languages"]["en"]
        scorer = PerplexityScorer(
            os.path.join(lm_dir, entry["sp_model"]), os.path.join(lm_dir, entry["kenlm_model"])
        )
        scorer.perplexity_batch([t for t, _ in kept])
    return len(kept)


def read_docs(wet: Path) -> list[Document]:
    from filters.sources.base import ReadStats
    from filters.sources.commoncrawl import read_wet

    with open(wet, "rb") as f:
        return list(read_wet(f, str(wet), ReadStats()))


def bare_from_file(wet: Path, settings: CCNetSettings, lm_dir: str | None) -> int:
    return bare_chain(read_docs(wet), settings, lm_dir)


def beam_chain(wet: Path, settings: CCNetSettings, lm_dir: str | None) -> None:
    """The same chain in Beam, reading the same file (beam.Create would pickle every document into the graph)."""
    from pipeline.read import InputFile, ReadSource

    opts = pipeline_options([])
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        read = p | ReadSource("commoncrawl", "wet", [InputFile(str(wet), wet.stat().st_size)])
        out, _counts = read.docs | CCNet("commoncrawl", settings, lm_dir)
        _ = out | beam.combiners.Count.Globally()


def write_wet(docs: list[Document], path: Path) -> Path:
    path.write_bytes(b"".join(wet_record(f"http://bench.example/{d.id}", d.text) for d in docs))
    return path


def timed(fn, *args) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def build_rate(n_docs: int, workers: int, tmp: Path) -> float:
    from pipeline.build import main

    rng = random.Random(9)
    wet = tmp / "bench.wet"
    if not wet.exists():
        pages = []
        for i in range(n_docs):
            body = "\n".join([paragraph(rng, 3), BOILERPLATE[0], paragraph(rng, 4), BOILERPLATE[1]])
            pages.append(wet_record(f"http://bench.example/{i}", body))
        wet.write_bytes(b"".join(pages))
        (tmp / "m.toml").write_text(
            f'output = "out"\nseed = 1\n[sources.cc]\nreader = "wet"\ninputs = ["{wet}"]\nweight = 1.0\n'
            '[sources.cc.ccnet]\nenabled = true\nperplexity = false\nlanguages = ["en"]\n'
            "[sources.cc.minhash]\nenabled = true\n"
        )
    out = tmp / f"out{workers}"
    argv = ["--manifest", str(tmp / "m.toml"), "--output", str(out), "--direct_num_workers", str(workers)]
    return n_docs / timed(main, argv)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=12000)
    ap.add_argument("--lm-dir", default=None)
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    settings = CCNetSettings(enabled=True, languages=["en"], perplexity=bool(args.lm_dir))
    docs = make_docs(args.docs)
    scratch = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    small = write_wet(docs[:50], scratch / "warm.wet")
    wet = write_wet(docs, scratch / "chain.wet")
    beam_chain(small, settings, args.lm_dir)  # warm-up: imports, model load
    bare = timed(bare_from_file, wet, settings, args.lm_dir)
    in_beam = timed(beam_chain, wet, settings, args.lm_dir)
    what = "normalise+hash+line-dedup+LID" + ("+perplexity" if args.lm_dir else "")
    print(
        f"ccnet_chain ({what}), {len(docs)} docs: bare {len(docs) / bare:.0f} docs/s, beam {len(docs) / in_beam:.0f} docs/s"
    )
    print(f"ccnet_chain_beam_vs_bare: {bare / in_beam:.2f}x")
    with tempfile.TemporaryDirectory() as tmp:
        one = build_rate(args.docs // 2, 1, Path(tmp))
        two = build_rate(args.docs // 2, 2, Path(tmp))
    print(f"build docs/s: 1 worker {one:.0f}, 2 workers {two:.0f}")
    print(f"build_2_vs_1_workers: {two / one:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak_rss_mb: launcher {peak:.0f}, largest worker process {peak_children:.0f}")
    print("vs_datatrove: not measured (datatrove is not installed; see the report)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
