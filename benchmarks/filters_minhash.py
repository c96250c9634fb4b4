"""Benchmark: batch MinHash (filters.minhash) vs datasketch on the same real documents, and C4 filter speed.

Prints ratio lines measured side by side in one run:
  minhash_batch_vs_datasketch_loop: N.NNx   (our docs/s over MinHash.update per shingle)
  minhash_batch_vs_datasketch_bulk: N.NNx   (our docs/s over MinHash.bulk, i.e. update_batch per doc)
Both sides include normalisation and shingling; the signatures are checked to be identical.
Input: the wikiextractor JSONL and Gutenberg books (split into paragraphs) from ../shared/data, or
synthetic random-word documents when that folder is absent.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from datasketch import MinHash

from filters.minhash import MinHasher, shingles
from filters.quality import c4_filter

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CORRAL_SHARED_DATA", REPO.parent / "shared" / "data"))
NUM_PERM, SEED, NGRAM = 128, 1, 13


def _load_docs() -> tuple[list[str], str]:
    wiki = SHARED_DATA / "wikipedia" / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz"
    books = sorted((SHARED_DATA / "gutenberg").glob("*.txt.gz")) if SHARED_DATA.is_dir() else []
    if not wiki.is_file():
        rng = random.Random(0)
        docs = [
            " ".join(f"w{rng.randrange(50000)}" for _ in range(rng.randrange(50, 800))) for _ in range(1000)
        ]
        return docs, "synthetic random-word docs (../shared/data absent)"
    with gzip.open(wiki, "rt", encoding="utf-8") as f:
        docs = [json.loads(line)["text"] for line in f]
    n_wiki = len(docs)
    n_par = 0
    for book in books[:2]:
        raw = gzip.decompress(book.read_bytes())
        try:
            body = raw.decode("utf-8-sig")
        except UnicodeDecodeError:  # some older PG files are Windows-1252
            body = raw.decode("cp1252")
        paragraphs = [p for p in re.split(r"\n\s*\n", body) if len(p.split()) >= 20]
        docs += paragraphs
        n_par += len(paragraphs)
    return docs, f"{n_wiki} wikipedia articles + {n_par} gutenberg paragraphs"


def _best_of(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _datasketch_loop(texts: list[str]) -> np.ndarray:
    out = np.empty((len(texts), NUM_PERM), dtype=np.uint64)
    for i, text in enumerate(texts):
        m = MinHash(num_perm=NUM_PERM, seed=SEED)
        for sh in shingles(text, NGRAM):
            m.update(sh)
        out[i] = m.hashvalues
    return out


def _datasketch_bulk(texts: list[str]) -> np.ndarray:
    ms = MinHash.bulk([shingles(t, NGRAM) for t in texts], num_perm=NUM_PERM, seed=SEED)
    return np.array([m.hashvalues for m in ms], dtype=np.uint64)


def run() -> list[str]:
    """Measure and return the benchmark lines."""
    docs, what = _load_docs()
    n_words = sum(len(d.split()) for d in docs)
    mh = MinHasher(num_perm=NUM_PERM, ngram=NGRAM, seed=SEED)
    mh.signatures(docs[:4])  # warm the punctuation table
    t_batch, ours = _best_of(lambda: mh.signatures(docs), 3)
    t_loop, loop = _best_of(lambda: _datasketch_loop(docs), 1)
    t_bulk, bulk = _best_of(lambda: _datasketch_bulk(docs), 1)
    if not (np.array_equal(ours, loop) and np.array_equal(ours, bulk)):
        raise AssertionError("batch signatures differ from datasketch's")
    c4_docs = docs[: min(len(docs), 2000)]
    t_c4, _ = _best_of(lambda: [c4_filter(d) for d in c4_docs], 3)
    n = len(docs)
    return [
        f"# input: {what}; {n} docs, {n_words} words; {NUM_PERM} perms, {NGRAM}-word shingles",
        f"minhash_batch_docs_per_s: {n / t_batch:.0f}",
        f"minhash_datasketch_loop_docs_per_s: {n / t_loop:.0f}",
        f"minhash_datasketch_bulk_docs_per_s: {n / t_bulk:.0f}",
        f"minhash_batch_vs_datasketch_loop: {t_loop / t_batch:.2f}x",
        f"minhash_batch_vs_datasketch_bulk: {t_bulk / t_batch:.2f}x",
        f"c4_filter_docs_per_s: {len(c4_docs) / t_c4:.0f}",
    ]


if __name__ == "__main__":
    for line in run():
        print(line)
