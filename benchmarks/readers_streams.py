"""Reader throughput (part A: wet, warc, c4_json, github, gutenberg) against plain decompression.

For each reader: input MB/s (compressed bytes on disk), documents/s, and `NAME_vs_decompress: N.NNx` =
time(stdlib gzip decompression of the same bytes) / time(reader) — decompression is the floor no
reader can beat, so the ratio says how much of the reader's time is parsing. The samples in
../shared/data are small, so each is repeated (gzip members concatenate into one valid file) to get
a few MB; both timings are taken side by side in the same run, best of `REPEATS`.

Usage: python -m benchmarks.readers_streams [SHARED_DATA]
"""

from __future__ import annotations

import gzip
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from filters.sources.base import ReadStats
from filters.sources.c4 import clean_c4, read_c4_json
from filters.sources.commoncrawl import read_warc, read_wet
from filters.sources.github import clean_github, read_github
from filters.sources.gutenberg import read_gutenberg

REPEATS = 3
Reader = Callable[[io.BytesIO, str, ReadStats], Iterator]


def _decompress(blobs: list[bytes]) -> None:
    for blob in blobs:
        with gzip.GzipFile(fileobj=io.BytesIO(blob)) as f:
            while f.read(1 << 20):
                pass


def _read(reader: Reader, blobs: list[bytes], recipe=None) -> int:
    stats = ReadStats()
    n = 0
    for i, blob in enumerate(blobs):
        for doc in reader(io.BytesIO(blob), f"bench-{i}", stats):
            if recipe is None or recipe(doc, stats) is not None:
                n += 1
    return n


def _best(fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _cases(shared: Path) -> list[tuple[str, Reader, list[bytes], Callable | None]]:
    cc, c4 = shared / "commoncrawl", shared / "c4_web"
    wet = (cc / "resiliparse-warcfile.DERIVED.warc.wet.gz").read_bytes()
    warc = (cc / "resiliparse-tests-warcfile.warc.gz").read_bytes()
    c4_blob = b"".join(p.read_bytes() for p in sorted(c4.glob("*.gz")))
    code = (shared / "github_code" / "github_4repos.jsonl.gz").read_bytes()
    books = [p.read_bytes() for p in sorted((shared / "gutenberg").glob("*.txt.gz"))]
    return [
        ("wet", read_wet, [wet * 100], None),
        ("warc", read_warc, [warc * 15], None),
        ("c4_json", read_c4_json, [c4_blob * 60], None),
        ("c4_json+recipe", read_c4_json, [c4_blob * 60], clean_c4),
        ("github", read_github, [code * 4], None),
        ("github+recipe", read_github, [code * 4], clean_github),
        ("gutenberg", read_gutenberg, books * 3, None),
    ]


def run(shared_data: Path) -> list[str]:
    """Measure every reader of part A on the real samples; returns the lines it would print."""
    lines = []
    for name, reader, blobs, recipe in _cases(Path(shared_data)):
        size_mb = sum(len(b) for b in blobs) / 1e6
        _read(reader, blobs[:1], recipe)  # warm-up: lazy imports, caches
        t_dec = _best(lambda blobs=blobs: _decompress(blobs))
        docs = 0

        def timed(reader=reader, blobs=blobs, recipe=recipe) -> None:
            nonlocal docs
            docs = _read(reader, blobs, recipe)

        t_read = _best(timed)
        lines.append(
            f"{name}: {size_mb / t_read:.2f} MB/s input, {docs / t_read:.0f} docs/s "
            f"({docs} docs, {size_mb:.1f} MB compressed)"
        )
        lines.append(f"{name}_vs_decompress: {t_dec / t_read:.2f}x")
    return lines


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    for line in run(Path(sys.argv[1]) if len(sys.argv) > 1 else default):
        print(line, flush=True)
