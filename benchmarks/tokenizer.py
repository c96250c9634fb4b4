"""Benchmark `corral tokenizer` against plain SentencePiece training on the same sample, side by side.

Prints:
  tokenizer_sample_mb: N.N              the sample SentencePiece trains on (UTF-8 megabytes)
  tokenizer_corral_s: N.N               `corral tokenizer` end to end: sampling + training + HF export + checks
  tokenizer_spm_train_s: N.N            `SentencePieceTrainer.train(input=sample, …)` with the same settings
  tokenizer_train_s_at_<MB>mb: N.N      the training step alone inside `corral tokenizer`
  tokenizer_vs_spm_train: N.NNx         spm wall time / corral wall time (1.00x: sampling and export are free)
  tokenizer_vs_spm_train_cpu: N.NNx     the same with CPU seconds (this process + children): steadier on a
                                        machine shared with other work
Each side runs `--repeats` times, alternating, and the fastest run counts; both must give the same pieces.

The corpus: the real samples of ../shared/data read with the project's readers (every source, with
LLaMA's mixture weights), each source's documents repeated under new ids until it holds 1.2 times its
share of the sample, so the sampler really subsamples. Repetition inflates word counts rather than adding
new words, so training is somewhat faster than on 50 MB of distinct text. Without ../shared/data the
repository's own fixtures are used.

Run: `python -m benchmarks.tokenizer [--mb 50] [--vocab 32000] [--threads 0] [--repeats 2] [--distinct]`
(`--mb 5` for a quick run; `--distinct` trains on the real text once, without repeated documents).
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
SHARED_DATA = Path(os.environ.get("CORRAL_SHARED_DATA", REPO.parent / "shared" / "data"))

from corpus_fixture import write_corpus  # noqa: E402

from filters.sources.base import ReadStats  # noqa: E402
from filters.sources.registry import get_reader  # noqa: E402
from manifests.schema import load_manifest  # noqa: E402
from tokenizer_training import bpe  # noqa: E402
from tokenizer_training.train import run  # noqa: E402

# source: (reader, globs under ../shared/data, LLaMA weight; langid sentences ride along as extra web text)
SOURCES = {
    "commoncrawl": ("wet", ["commoncrawl/*.wet*"], 0.67),
    "c4": ("c4_json", ["c4_web/*.json*.gz", "wikipedia/*.jsonl.gz"], 0.15),
    "github": ("github", ["github_code/*.jsonl.gz"], 0.045),
    "wikipedia": ("wikipedia_xml", ["wikipedia/*.xml.bz2"], 0.045),
    "books": ("gutenberg", ["gutenberg/*.txt.gz"], 0.045),
    "arxiv": ("arxiv", ["arxiv/*.tar.gz"], 0.025),
    "stackexchange": ("stackexchange", ["stackexchange/*Posts.xml.gz"], 0.02),
}


def real_texts() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, (reader, globs, _) in SOURCES.items():
        spec, docs = get_reader(reader), []
        for path in sorted({p for g in globs for p in glob.glob(str(SHARED_DATA / g))}):
            with open(path, "rb") as f:
                docs += [d.text for d in spec.load_reader()(f, path, ReadStats()) if d.text]
        out[name] = docs
    langid = sorted((SHARED_DATA / "langid").glob("*.tsv.gz"))
    for path in langid:  # many scripts: Greek, Devanagari, CJK, … in the web share
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = [line.rstrip("\n").rsplit("\t", 1)[-1] for line in f]
        out["commoncrawl"] += ["\n".join(lines[i : i + 50]) for i in range(0, len(lines), 50)]
    return out


def fixture_texts() -> dict[str, list[str]]:
    fx = REPO / "tests" / "fixtures"
    text = "\n\n".join(
        p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(fx.rglob("*.*"))
        if p.suffix in (".txt", ".xml", ".wet", ".tex", ".jsonl")
    )
    paras = [p for p in text.split("\n\n") if p.strip()]
    return {"fixtures": paras}


def build_corpus(root: Path, mb: float, distinct: bool = False) -> Path:
    """The benchmark corpus; `distinct`: every document once (the sample is then the whole corpus)."""
    texts = real_texts() if SHARED_DATA.is_dir() else fixture_texts()
    weights = {n: SOURCES[n][2] if n in SOURCES else 1.0 for n in texts}
    total_w = sum(weights.values())
    sources = {}
    for name, docs in texts.items():
        want = 1.2 * mb * 1e6 * weights[name] / total_w
        have = sum(map(len, docs))
        sources[name] = docs if distinct else docs * max(1, int(want // max(have, 1)) + 1)
    extra = f"[tokenizer]\nsample_chars = {int(mb * 1e6)}\n"
    return write_corpus(root, sources, weights=weights, extra_toml=extra)


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the SentencePiece child included)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=float, default=50.0, help="sample size in millions of characters")
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--threads", type=int, default=0, help="0: every core")
    p.add_argument(
        "--repeats", type=int, default=2, help="runs of each side, alternating; the fastest counts"
    )
    p.add_argument("--distinct", action="store_true", help="no repeated documents: the real text once")
    args = p.parse_args()
    import sentencepiece as spm

    with tempfile.TemporaryDirectory(prefix="corral-bench-tok-") as tmp:
        root = Path(tmp)
        m_path = build_corpus(root, args.mb, args.distinct)
        m_path.write_text(
            m_path.read_text().replace(
                "[tokenizer]\n", f"[tokenizer]\nvocab_size = {args.vocab}\nthreads = {args.threads}\n"
            )
        )
        manifest = load_manifest(m_path)
        sample = root / "sample.txt"
        settings = bpe.trainer_settings(args.vocab, bpe.resolve_threads(args.threads))
        corral_s, corral_cpu, spm_s, spm_cpu, best = [], [], [], [], None
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), _cpu()
            result = run(manifest, force=True, keep_sample=str(sample), progress=False)
            corral_s.append(time.perf_counter() - t0)
            corral_cpu.append(_cpu() - c0)
            if best is None or corral_s[-1] == min(corral_s):
                best = result
            t0, c0 = time.perf_counter(), _cpu()
            spm.SentencePieceTrainer.train(
                input=str(sample), model_prefix=str(root / "spm"), minloglevel=2, **settings
            )
            spm_s.append(time.perf_counter() - t0)
            spm_cpu.append(_cpu() - c0)

        ours = spm.SentencePieceProcessor(model_file=str(Path(best.output) / "tokenizer.model"))
        theirs = spm.SentencePieceProcessor(model_file=str(root / "spm.model"))
        ids = list(range(ours.get_piece_size()))
        same = ours.id_to_piece(ids) == theirs.id_to_piece(list(range(theirs.get_piece_size())))
        s = best.card.sample
        shares = ", ".join(
            f"{n} {100 * v['achieved_share']:.1f}%/{100 * v['target_share']:.1f}%"
            for n, v in s["sources"].items()
        )
        print(
            f"tokenizer_sample_mb: {sample.stat().st_size / 1e6:.1f}{' (distinct text)' if args.distinct else ''}"
        )
        print(f"tokenizer_sample_shares (achieved/target): {shares}")
        print(
            f"tokenizer_threads: {settings['num_threads']}  vocab: {args.vocab}  same_pieces_as_spm: {same}"
        )
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in best.seconds.items())
        print(f"tokenizer_corral_s: {min(corral_s):.1f} ({steps}; cpu {min(corral_cpu):.1f}s)")
        print(f"tokenizer_spm_train_s: {min(spm_s):.1f} (cpu {min(spm_cpu):.1f}s)")
        print(f"tokenizer_train_s_at_{args.mb:g}mb: {best.seconds['train']:.1f}")
        print(f"tokenizer_vs_spm_train: {min(spm_s) / min(corral_s):.2f}x")
        print(f"tokenizer_vs_spm_train_cpu: {min(spm_cpu) / min(corral_cpu):.2f}x")
        return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
