"""Benchmark: the whole `corral shards` job against a bare SentencePiece encode loop, and a re-mix.

Prints ratio lines measured side by side in this run:
  shards_vs_raw_encode: X.XXx       tokens per CPU-second of the whole shards job (tokenize, count,
                                    mix, shuffle, write; FnApiRunner, 1 worker, Beam start-up included)
                                    / a bare batched `sp.encode` loop over the same texts in this process
                                    (the faster of its list and numpy outputs, 1 thread); per core
  shards_vs_raw_encode_wall: X.XXx  the same with wall-clock time (noisier on a shared machine)
  mix_only_vs_full: X.XXx           CPU time of a run after a weight change (the mix alone: the tokenized
                                    cache is reused) / a full run
plus the absolute rates. `total_tokens` is set to the corpus's own token count, so the mix writes as many
tokens as were tokenized.

Texts: the real samples of ../shared/data when present (Gutenberg books cut into ~4,000-character
documents, the GitHub files, the Wikipedia extract), repeated under new ids up to --mb megabytes of text;
otherwise English-like synthetic pages. The tokenizer is SentencePiece BPE trained here with LLaMA's
settings (--vocab, default 32000) on a 3 MB sample.
Run: python benchmarks/shards.py [--mb 40] [--vocab 32000] [--reps 1]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import sentencepiece as spm  # noqa: E402
from corpus_fixture import write_corpus  # noqa: E402

from manifests import storage  # noqa: E402
from manifests.shards import ShardManifest  # noqa: E402
from manifests.tokenizer import TokenizerCard  # noqa: E402
from pipeline.shards import main as shards_main  # noqa: E402
from tokenizer_training.bpe import LLAMA_TRAINER_SETTINGS  # noqa: E402

SHARED = Path(os.environ.get("CORRAL_SHARED_DATA", REPO.parent / "shared" / "data"))
# LLaMA's trainer settings, with a soft vocabulary cap: the few MB of real text may not support 32,000.
LLAMA_SPM = {**LLAMA_TRAINER_SETTINGS, "hard_vocab_limit": False, "minloglevel": 2}


def real_texts() -> dict[str, list[str]]:
    books = []
    for f in sorted((SHARED / "gutenberg").glob("*.txt.gz")):
        text = gzip.decompress(f.read_bytes()).decode("utf-8", errors="replace").replace("\r\n", "\n")
        paras, cur = [], ""
        for para in text.split("\n\n"):
            cur += para + "\n\n"
            if len(cur) > 4000:
                paras.append(cur)
                cur = ""
        books += paras
    code = [
        json.loads(line)["text"]
        for line in gzip.decompress(
            (SHARED / "github_code" / "github_4repos.jsonl.gz").read_bytes()
        ).splitlines()
    ]
    wiki_file = SHARED / "wikipedia" / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz"
    wiki = [json.loads(line)["text"] for line in gzip.decompress(wiki_file.read_bytes()).splitlines()]
    return {"books": books, "code": [c for c in code if c.strip()], "wiki": [w for w in wiki if w.strip()]}


def synthetic_texts() -> dict[str, list[str]]:
    import random

    from build_corpus import paragraph  # original English-like text of the build tests

    rng = random.Random(0)
    return {
        "web": [paragraph(rng, rng.randint(3, 30)) for _ in range(3000)],
        "wiki": [paragraph(rng, rng.randint(20, 80)) for _ in range(500)],
    }


def grow(texts: dict[str, list[str]], mb: float) -> dict[str, list[str]]:
    """Repeat the texts (as new documents) until there are `mb` megabytes of them."""
    size = sum(len(t.encode()) for ts in texts.values() for t in ts)
    times = max(1, round(mb * 1e6 / size))
    return {name: [t for _ in range(times) for t in ts] for name, ts in texts.items()}


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def raw_encode(model: str, texts: list[str]) -> dict[str, tuple[float, float, int]]:
    sp = spm.SentencePieceProcessor(model_file=model)
    out = {}
    for kind in (int, "numpy"):
        c0, w0, n = cpu(), time.perf_counter(), 0
        for i in range(0, len(texts), 256):
            ids = sp.encode(texts[i : i + 256], return_type=kind, num_threads=1)
            n += sum(len(x) for x in ids)
        out[str(kind)] = (cpu() - c0, time.perf_counter() - w0, n)
    return out


def timed(argv: list[str]) -> tuple[float, float]:
    c0, w0 = cpu(), time.perf_counter()
    saved = sys.stdout
    sys.stdout = io.StringIO()
    try:
        assert shards_main(argv) == 0
    finally:
        sys.stdout = saved
    return cpu() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=40.0)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--reps", type=int, default=1)
    args = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    base = real_texts() if (SHARED / "gutenberg").is_dir() else synthetic_texts()
    texts = grow(base, args.mb)
    work = Path(tempfile.mkdtemp(prefix="corral-bench-shards-"))
    try:
        tok = work / "tokenizer"
        tok.mkdir()
        sample, size = [], 0  # lines, as SentencePiece trains on sentences (≤ max_sentence_length)
        for i in range(max(map(len, base.values()))):
            for ts in base.values():
                if i < len(ts):
                    lines = [ln for ln in ts[i].splitlines() if ln.strip()]
                    sample += lines
                    size += sum(map(len, lines))
            if size > 3e6:
                break
        t0 = time.perf_counter()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sample),
            model_prefix=str(tok / "tokenizer"),
            vocab_size=args.vocab,
            **LLAMA_SPM,
        )
        model = str(tok / "tokenizer.model")
        pieces = spm.SentencePieceProcessor(model_file=model).get_piece_size()
        TokenizerCard(sha256=storage.sha256_of(model), vocab_size=pieces, settings={}).write(str(tok))
        print(f"tokenizer: {pieces} pieces trained in {time.perf_counter() - t0:.1f}s")
        all_texts = [t for ts in texts.values() for t in ts]
        chars = sum(map(len, all_texts))
        print(f"texts: {len(all_texts):,} documents, {chars / 1e6:.1f}M characters, sources {list(texts)}")
        raw = raw_encode(model, all_texts)
        tokens = raw["numpy"][2]
        sizes = {n: sum(map(len, ts)) for n, ts in texts.items()}
        weights = {n: s / sum(sizes.values()) for n, s in sizes.items()}
        extra = f'[shards]\ntokenizer = "tokenizer"\ntotal_tokens = {tokens}\nvalidation_fraction = 0.001\n'
        manifest = write_corpus(work, texts, weights=weights, extra_toml=extra)
        pairs = []
        for _ in range(args.reps):
            raw = raw_encode(model, all_texts)
            raw_cpu, raw_wall, n = min(raw.values())
            storage.delete(str(work / "shards"))
            full_cpu, full_wall = timed(["--manifest", str(manifest)])
            pairs.append((n / raw_cpu, n / raw_wall, tokens / full_cpu, tokens / full_wall, full_cpu))
            for kind, (c, _, k) in raw.items():
                print(
                    f"raw encode ({'list' if kind == str(int) else 'numpy'} output): {k / c / 1e6:.2f}M tokens/CPU-s"
                )
        m = ShardManifest.read_from(str(work / "shards"))
        shift = {n: w * (1.5 if i == 0 else 0.75) for i, (n, w) in enumerate(weights.items())}
        text = manifest.read_text()
        for n, w in weights.items():
            text = text.replace(f"weight = {w}\n", f"weight = {shift[n]}\n", 1)
        manifest.write_text(text)
        mix_cpu, mix_wall = timed(["--manifest", str(manifest)])
        r_cpu, r_wall, f_cpu, f_wall, full_cpu = sorted(pairs, key=lambda p: p[2] / p[0])[len(pairs) // 2]
        print(f"tokens: {tokens:,} tokenized, {m.train_tokens:,} written to {len(m.train)} train shards")
        print(f"raw encode: {r_cpu / 1e6:.2f}M tokens/CPU-s; shards job: {f_cpu / 1e6:.2f}M tokens/CPU-s")
        print(f"shards_vs_raw_encode: {f_cpu / r_cpu:.2f}x")
        print(f"shards_vs_raw_encode_wall: {f_wall / r_wall:.2f}x")
        print(f"mix only: {mix_cpu:.1f} CPU-s ({mix_wall:.1f}s wall) vs full {full_cpu:.1f} CPU-s")
        print(f"mix_only_vs_full: {mix_cpu / full_cpu:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
