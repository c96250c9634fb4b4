"""Reader throughput for Wikipedia XML, arXiv tarballs and StackExchange Posts.xml vs plain decompression.

For each source: input MB/s (compressed bytes), documents/s, and `NAME_vs_decompress: N.NNx` =
time(decompress only) / time(reader [+ recipe]) measured side by side in one run (1.00x would mean the
reader is as fast as just decompressing the file, the floor no reader can beat).
`wikipedia_links_scan_vs_full_parse: N.NNx` = time(mwparserfromhell parse + filter_external_links, what
the reader used to do per page) / time(`external_links`, the regex scan that replaced it), same pages.
Run: `python -m benchmarks.readers_markup` (needs ../shared/data).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

from filters.sources.arxiv import clean_arxiv, read_arxiv
from filters.sources.base import ReadStats
from filters.sources.compression import open_decompressed
from filters.sources.stackexchange import read_stackexchange
from filters.sources.wikipedia import external_links, read_wikipedia_xml
from filters.sources.xmlsafe import clear_element, local_name, safe_iterparse

REPO = Path(__file__).resolve().parents[1]


def _decompress(data: bytes, name: str) -> None:
    stream = open_decompressed(io.BytesIO(data), name)
    while stream.read(1 << 20):
        pass


def _best(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def _bench(label: str, files: list[Path], reader, recipe=None, repeat: int = 3) -> list[str]:
    blobs = [(p.read_bytes(), p.name) for p in files]
    size = sum(len(b) for b, _ in blobs)

    def decompress() -> int:
        for data, name in blobs:
            _decompress(data, name)
        return 0

    def read() -> int:
        n = 0
        for data, name in blobs:
            stats = ReadStats()
            for doc in reader(io.BytesIO(data), name, stats):
                if recipe is None or recipe(doc, stats) is not None:
                    n += 1
        return n

    t_dec, _ = _best(decompress, repeat)
    t_read, docs = _best(read, repeat)
    return [
        f"{label}_input_MB_per_s: {size / 1e6 / t_read:.2f}",
        f"{label}_docs_per_s: {docs / t_read:.1f}",
        f"{label}_vs_decompress: {t_dec / t_read:.2f}x",
    ]


def _wikitexts(path: Path) -> list[str]:
    """Every page's raw wikitext (the input `external_links` sees)."""
    texts: list[str] = []
    with path.open("rb") as handle:
        for _event, elem in safe_iterparse(open_decompressed(handle, path.name), path.name, ReadStats()):
            if local_name(elem.tag) == "text" and elem.text:
                texts.append(elem.text)
            elif local_name(elem.tag) == "page":
                clear_element(elem)
    return texts


def _bench_links(path: Path) -> list[str]:
    import mwparserfromhell  # the reference only; the reader itself no longer parses for links

    texts = [t for t in _wikitexts(path) if "//" in t]

    def scan() -> int:
        return sum(len(external_links(t)) for t in texts)

    def full_parse() -> int:
        return sum(len(mwparserfromhell.parse(t).filter_external_links()) for t in texts)

    t_scan, _ = _best(scan, 3)
    t_parse, _ = _best(full_parse, 1)
    return [f"wikipedia_links_scan_vs_full_parse: {t_parse / t_scan:.2f}x"]


def run(shared_data: Path) -> list[str]:
    """Measure the three readers on the real samples; returns the benchmark lines."""
    lines: list[str] = []
    wiki = shared_data / "wikipedia"
    lines += _bench(
        "wikipedia_xml",
        [
            wiki / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
            wiki / "ukwiki-sample.xml.bz2",
        ],
        read_wikipedia_xml,
        repeat=3,
    )
    lines += _bench_links(wiki / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2")
    lines += _bench(
        "arxiv", sorted((shared_data / "arxiv").glob("*.tar.gz")), read_arxiv, clean_arxiv, repeat=5
    )
    lines += _bench(
        "stackexchange",
        sorted((shared_data / "stackexchange").glob("*.Posts.xml.gz")),
        read_stackexchange,
        repeat=3,
    )
    return lines


if __name__ == "__main__":
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    for line in run(data):
        print(line, flush=True)
