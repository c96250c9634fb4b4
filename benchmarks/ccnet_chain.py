"""Benchmark: the CCNet chain through the Beam build vs the same `filters/` calls in a plain loop, and whole builds.

Prints ratio lines measured side by side in this run:
  ccnet_chain_beam_vs_bare: X.XXx       documents per CPU-second, `corral build` of one WET source
                                        (FnApiRunner, 1 worker, in this process, start-up included) / the
                                        same work in one loop: read, hash pass, verdicts, a read chunk
                                        written and read back, mining pass
                                        (length, line dedup, LID, perplexity), Parquet of the survivors;
                                        median of --reps back-to-back pairs (all pair ratios are printed)
  ccnet_chain_beam_vs_bare_wall: X.XXx  the same with wall-clock time (noisier on a shared machine)
  build_2_vs_1_workers: X.XXx           whole-build documents/s (chain + MinHash), 2 workers / 1 worker, over
                                        4 input files (benchmarks.scale measures it at scale)
  vs_datatrove: X.XXx                   Beam chain documents per CPU-second / datatrove's (its run: the
                                        first --datatrove-docs of the same documents, as a WET file)
plus absolute rates, Beam's fixed start-up and peak memory. Perplexity runs when an LM exists (--lm-dir,
default build/demo/lm from `make demo`). Documents: original synthetic English pages (tests/build_corpus.py),
2 shared boilerplate lines each.

datatrove (never a project dependency) runs as a subprocess from the pinned peer venv that
`make bench-peers` creates (build/peers/venv). Its side is datatrove's WarcReader, LanguageFilter (ft176
backend on corral's lid.176 file) and KenlmModel perplexity (cc_net style, on corral's SentencePiece +
KenLM files) in a LocalPipelineExecutor; datatrove has no CCNet line-dedup block, so that step is a
PipelineStep calling corral's filters.dedup with cc_net's counting.
Run: python -m benchmarks.ccnet_chain [--docs 25000] [--reps 4] [--lm-dir build/demo/lm] [--datatrove-python PY]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from build_corpus import BOILERPLATE, paragraph, wet_record  # noqa: E402

from filters.document import Document  # noqa: E402
from manifests.lm_index import LMIndex  # noqa: E402
from manifests.schema import SourceConfig  # noqa: E402


def make_docs(n: int) -> list[Document]:
    rng = random.Random(5)
    docs = []
    for i in range(n):
        lines = [paragraph(rng, 3), BOILERPLATE[0], paragraph(rng, 4), BOILERPLATE[1], paragraph(rng, 2)]
        docs.append(Document(f"bench:{i:07d}", "commoncrawl", "\n".join(lines), {}))
    return docs


def chain_config(wet: Path, perplexity: bool, minhash: bool = False) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "reader": "wet",
            "inputs": [str(wet)],
            "weight": 1.0,
            "ccnet": {"perplexity": perplexity, "wikiref": False, "keep_buckets": ["head", "middle", "tail"]},
            "minhash": {"enabled": minhash},
        }
    )


def bare_chain(wet: Path, cfg: SourceConfig, lm_dir: str | None) -> int:
    """The build's work in one loop of the same `filters/` and `manifests/` calls (the baseline): one read
    of the file, the line hashes computed once, the admitted documents through a read chunk and back."""
    from filters.ccnet import HashPass, Miner
    from filters.dedup import DuplicatedLines, merge_line_records
    from filters.langid import LanguageIdentifier
    from filters.scoring import DocumentScorer, ScoringModels
    from filters.sources.source_file import SourceFile
    from manifests.corpus import iter_read_chunk, parquet_bytes, read_chunk_bytes, row_meta

    hp = HashPass(cfg)
    docs = [d for d in SourceFile("wet", str(wet)) if hp.admit(d)]
    hashes = hp.line_hashes(docs)
    records = [hp.line_records(docs[i : i + 2048], hashes[i : i + 2048]) for i in range(0, len(docs), 2048)]
    duplicated = [DuplicatedLines.from_records(merge_line_records(records))]
    lms = {}
    if cfg.ccnet.perplexity and lm_dir:
        from filters.scoring import LanguageModelFiles

        e = LMIndex.read_from(lm_dir).languages["en"]
        lms["en"] = LanguageModelFiles(
            os.path.join(lm_dir, e.sp_model), os.path.join(lm_dir, e.kenlm_model), e.p30, e.p60
        )
    models = ScoringModels(lid=LanguageIdentifier())
    if lms:
        models = ScoringModels.load(langid=True, lms=lms)
    miner = Miner(cfg, DocumentScorer(cfg.ccnet, models))
    kept: list[Document] = []
    chunk = read_chunk_bytes(docs, hashes, cfg.ccnet.batch_size)
    for rows, line_hashes in iter_read_chunk(io.BytesIO(chunk)):
        batch = [Document(r["id"], r["source"], r["text"], row_meta(r)) for r in rows]
        kept += miner.mine(batch, (), duplicated, line_hashes).kept
    parquet_bytes(kept)
    return len(kept)


def beam_chain(wet: Path, cfg: SourceConfig, lm_dir: str | None) -> int:
    """`corral build` of the same file with the same settings, in this process; returns the documents kept."""
    from pipeline.build import main as build_main

    out = Path(tempfile.mkdtemp(prefix="corral-bench-out-"))
    extra = ""
    if lm_dir:
        extra = f'[lm]\noutput = "{lm_dir}"\n[sources.wikipedia]\nreader = "wikipedia_xml"\ninputs = ["{wet}"]\nweight = 1\n'
    manifest = out / "m.toml"
    manifest.write_text(
        f'output = "{out}"\nseed = 1\n[sources.cc]\nreader = "wet"\ninputs = ["{wet}"]\nweight = 1.0\n'
        f"[sources.cc.ccnet]\nperplexity = {str(cfg.ccnet.perplexity).lower()}\nwikiref = false\n"
        'keep_buckets = ["head", "middle", "tail"]\n'
        f"[sources.cc.minhash]\nenabled = {str(cfg.minhash.enabled).lower()}\n{extra}"
    )
    if build_main(["--manifest", str(manifest), "--sources", "cc", "--direct_num_workers", "1"]) != 0:
        raise SystemExit("the Beam build failed")
    kept = json.loads((out / "cc" / "manifest.json").read_text())["kept"]
    import shutil

    shutil.rmtree(out)
    return kept


def write_wet(docs: list[Document], path: Path) -> Path:
    path.write_bytes(b"".join(wet_record(f"http://bench.example/{d.id}", d.text) for d in docs))
    return path


def timed(fn, *args) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def clocked(fn, *args) -> tuple[float, float, Any]:  # noqa: ANN001
    """(wall seconds, CPU seconds of this process, result): the chain runs in-process on both sides."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


DATATROVE_SIDE = r'''
import json, os, sys, tempfile, time
from collections import Counter

wet, lid_path, sp_path, lm_path, repo = sys.argv[1:6]
min_length, threshold = int(sys.argv[6]), float(sys.argv[7])
sys.path.insert(0, repo)  # filters.dedup is stdlib-only: datatrove has no CCNet line-dedup block
import kenlm  # noqa: E402
import sentencepiece  # noqa: E402
from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.base import PipelineStep  # noqa: E402
from datatrove.pipeline.filters import LanguageFilter  # noqa: E402
from datatrove.pipeline.readers import WarcReader  # noqa: E402
from datatrove.utils.lid import FT176LID  # noqa: E402
from datatrove.utils.perplexity import KenlmModel, SentencePiece  # noqa: E402
from fasttext.FastText import _FastText  # noqa: E402

from filters.dedup import document_line_hashes, remove_duplicate_lines  # noqa: E402

OUT = {}


class LineDedup(PipelineStep):
    name = "CCNet line dedup (corral filters.dedup, two passes)"

    def run(self, data, rank=0, world_size=1):
        docs = [d for d in data if len(d.text) >= min_length]
        hashes = [document_line_hashes(d.text) for d in docs]
        counts = Counter()
        for hs in hashes:
            counts.update(set(hs))  # cc_net: a document counts a hash once
        dup = {h for h, c in counts.items() if c >= 2}
        for d, hs in zip(docs, hashes):
            d.text = remove_duplicate_lines(d.text, dup, hs).text
            if d.text.strip():
                yield d


class Perplexity(PipelineStep):
    name = "CCNet perplexity (datatrove KenlmModel)"

    def run(self, data, rank=0, world_size=1):
        self.km = KenlmModel("local", "en")  # datatrove would download from HF: hand it corral's local models
        self.km._model = kenlm.Model(lm_path)
        tok = SentencePiece("local", "en")
        tok._model = sentencepiece.SentencePieceProcessor()
        tok._model.load(sp_path)
        self.km._tokenizer = tok
        for d in data:
            d.metadata["perplexity"] = self.km.get_perplexity(d.text)
            yield d


class Count(PipelineStep):
    name = "count"

    def run(self, data, rank=0, world_size=1):
        OUT["kept"] = sum(1 for _ in data)
        yield from ()


wall, cpu = time.perf_counter(), time.process_time()


class LocalFT176(FT176LID):
    """datatrove's fastText LID on the same local lid.176 file as corral (datatrove would download it)."""

    @property
    def model(self):
        if self._model is None:
            self._model = _FastText(lid_path)
        return self._model


lid = LanguageFilter(languages=["en"], language_threshold=threshold)
lid.model = LocalFT176(["en"])
steps = [WarcReader(os.path.dirname(wet), glob_pattern=os.path.basename(wet)), LineDedup(), lid, Perplexity(), Count()]
with tempfile.TemporaryDirectory() as logs:
    LocalPipelineExecutor(pipeline=steps, tasks=1, workers=1, logging_dir=logs).run()
OUT.update(wall=time.perf_counter() - wall, cpu=time.process_time() - cpu)
print(json.dumps(OUT))
'''


def datatrove_chain(python: str, wet: Path, cfg: SourceConfig, lm_dir: str) -> dict:
    """Run the chain with datatrove in its own venv; returns {kept, wall, cpu} measured inside it."""
    from filters.langid import default_model_path

    entry = LMIndex.read_from(lm_dir).languages["en"]
    argv = [
        python,
        "-c",
        DATATROVE_SIDE,
        str(wet),
        str(default_model_path()),
        os.path.join(lm_dir, entry.sp_model),
        os.path.join(lm_dir, entry.kenlm_model),
        str(REPO),
        str(cfg.ccnet.min_length),
        str(cfg.ccnet.lang_threshold),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=600)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"datatrove side failed (exit {result.returncode}): {tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])


BUILD_FILES = 4


def build_rate(n_docs: int, workers: int, tmp: Path) -> float:
    from pipeline.build import main

    rng = random.Random(9)
    files = [
        tmp / f"bench-{k}.wet" for k in range(BUILD_FILES)
    ]  # work is per input file: one would not split
    if not files[0].exists():
        pages = []
        for i in range(n_docs):
            body = "\n".join([paragraph(rng, 3), BOILERPLATE[0], paragraph(rng, 4), BOILERPLATE[1]])
            pages.append(wet_record(f"http://bench.example/{i}", body))
        for k, f in enumerate(files):
            f.write_bytes(b"".join(pages[k::BUILD_FILES]))
        (tmp / "m.toml").write_text(
            f'output = "out"\nseed = 1\n[sources.cc]\nreader = "wet"\ninputs = ["{tmp}/bench-*.wet"]\n'
            "weight = 1.0\n[sources.cc.ccnet]\nperplexity = false\nwikiref = false\n"
        )
    out = tmp / f"out{workers}"
    argv = ["--manifest", str(tmp / "m.toml"), "--output", str(out), "--direct_num_workers", str(workers)]
    return n_docs / timed(main, argv)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=25000)
    ap.add_argument("--reps", type=int, default=4, help="bare/Beam pairs; the median pair ratio counts")
    ap.add_argument("--build-docs", type=int, default=8000)
    default_lm = REPO / "build" / "demo" / "lm"
    ap.add_argument("--lm-dir", default=str(default_lm) if (default_lm / "lm.json").exists() else None)
    ap.add_argument("--datatrove-python", default=str(REPO / "build" / "peers" / "venv" / "bin" / "python"))
    ap.add_argument("--datatrove-docs", type=int, default=10000, help="the first N documents (it is slower)")
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    docs = make_docs(args.docs)
    scratch = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    small = write_wet(docs[:50], scratch / "warm.wet")
    wet = write_wet(docs, scratch / "chain.wet")
    settings = chain_config(wet, perplexity=bool(args.lm_dir))
    beam_chain(small, settings, args.lm_dir)  # warm-up: imports, model load
    startup = min(clocked(beam_chain, small, settings, args.lm_dir)[1] for _ in range(2))
    pairs = []
    for i in range(args.reps):  # back to back, order alternating (ABBA): drifting load hits both sides
        if i % 2 == 0:
            b = clocked(bare_chain, wet, settings, args.lm_dir)
            m = clocked(beam_chain, wet, settings, args.lm_dir)
        else:
            m = clocked(beam_chain, wet, settings, args.lm_dir)
            b = clocked(bare_chain, wet, settings, args.lm_dir)
        if b[2] != m[2]:
            raise SystemExit(f"the two sides disagree: bare kept {b[2]} documents, Beam {m[2]}")
        pairs.append((b, m))
    n = len(docs)
    cpu_ratio = statistics.median(b[1] / m[1] for b, m in pairs)
    wall_ratio = statistics.median(b[0] / m[0] for b, m in pairs)
    bare_cpu, beam_cpu = min(b[1] for b, _ in pairs), min(m[1] for _, m in pairs)
    what = "read+hash+read-chunk+line-dedup+LID" + ("+perplexity" if args.lm_dir else "") + "+Parquet"
    print(
        f"ccnet_chain ({what}), {n} docs, {args.reps} pairs: bare {n / bare_cpu:.0f} docs/CPU-s, "
        f"beam {n / beam_cpu:.0f} docs/CPU-s (best runs); pair ratios (CPU) "
        + " ".join(f"{b[1] / m[1]:.2f}" for b, m in pairs)
    )
    print(f"kept: {b[2]} documents on both sides")
    print(f"beam_fixed_startup_cpu_s: {startup:.2f} (a 50-document run, included in the beam numbers)")
    print(f"ccnet_chain_beam_vs_bare: {cpu_ratio:.2f}x")
    print(f"ccnet_chain_beam_vs_bare_wall: {wall_ratio:.2f}x")
    print(
        f"ccnet_chain_beam_vs_bare_best_runs: {bare_cpu / beam_cpu:.2f}x (fastest bare run / fastest Beam run)"
    )
    peak_chain = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        one = build_rate(args.build_docs, 1, Path(tmp))
        two = build_rate(args.build_docs, 2, Path(tmp))
    print(f"build docs/s ({args.build_docs} docs, no perplexity): 1 worker {one:.0f}, 2 workers {two:.0f}")
    print(f"build_2_vs_1_workers: {two / one:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"peak_rss_mb: chain process {peak_chain:.0f}, launcher after builds {peak:.0f}, "
        f"largest worker process {peak_children:.0f}"
    )
    if not args.lm_dir:
        print("vs_datatrove: not measured (no LM: pass --lm-dir, or run `make demo` first)")
    elif args.datatrove_docs <= 0:
        print("vs_datatrove: not measured (--datatrove-docs 0)")
    elif not Path(args.datatrove_python).exists():
        print(f"vs_datatrove: not measured ({args.datatrove_python} does not exist: run `make bench-peers`)")
    else:
        try:
            dt_docs = min(args.datatrove_docs, n)
            dt_wet = wet if dt_docs == n else write_wet(docs[:dt_docs], scratch / "datatrove.wet")
            dt = datatrove_chain(args.datatrove_python, dt_wet, settings, args.lm_dir)
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
            print(f"vs_datatrove: not measured ({exc})")
        else:
            print(
                f"datatrove chain, first {dt_docs} of the docs: {dt_docs / dt['cpu']:.0f} docs/CPU-s "
                f"({dt_docs / dt['wall']:.0f} docs/s wall), kept {dt['kept']}"
            )
            print(f"vs_datatrove: {(n / beam_cpu) / (dt_docs / dt['cpu']):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
