"""Benchmark the `filters/` kernels on real text: documents/s of normalise, hash, LID, perplexity, MinHash,
and `minhash_batch_vs_datasketch_loop: N.NNx` (batch signatures vs datasketch's per-shingle update).

Run: `python -m benchmarks.filters`. Real text: the Wikipedia extract and Gutenberg paragraphs from
../shared/data (synthetic words when absent). The perplexity model is trained on the fly (small vocab).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from benchmarks import filters_minhash
from filters.dedup import document_line_hashes, line_hash
from filters.langid import LanguageIdentifier
from filters.normalize import normalize_for_dedup, normalize_for_lm
from filters.perplexity import PerplexityScorer, train_lm


def _rate(fn: Callable[[], object], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> int:
    docs, what = filters_minhash._load_docs()
    n = len(docs)
    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"input: {n} documents, {mb:.1f} MB ({what})")
    lines = [ln for d in docs for ln in d.split("\n")]
    norm_lines = [normalize_for_dedup(ln) for ln in lines]
    print(
        f"normalize_for_dedup_docs_per_s: {_rate(lambda: [normalize_for_dedup(ln) for ln in lines], n):.0f}"
    )
    print(f"normalize_for_lm_docs_per_s: {_rate(lambda: [normalize_for_lm(d) for d in docs], n):.0f}")
    print(f"line_hash_docs_per_s: {_rate(lambda: [line_hash(ln) for ln in norm_lines], n):.0f}")
    print(f"normalize_and_hash_docs_per_s: {_rate(lambda: [document_line_hashes(d) for d in docs], n):.0f}")

    lid = LanguageIdentifier()
    batch = _rate(lambda: lid.predict_batch(docs), n)
    single = _rate(lambda: [lid.predict(d) for d in docs], n, repeats=1)
    print(f"langid_batch_docs_per_s: {batch:.0f}")
    print(f"langid_batch_vs_single: {batch / single:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        files = train_lm(docs[: n // 2], tmp, "en", vocab_size=8000)
        scorer = PerplexityScorer(files.sp_model, files.kenlm_model)
        held = docs[n // 2 :]
        print(
            f"perplexity_docs_per_s: {_rate(lambda: scorer.perplexity_batch(held), len(held), repeats=2):.0f}"
        )

    for line in filters_minhash.run():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
