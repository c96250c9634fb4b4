"""Gutenberg reader: PG header/footer removal (current and old markers), BOM, header metadata, bad input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from filters.sources.base import ReaderError, ReadStats
from filters.sources.gutenberg import language_code, read_gutenberg
from filters.sources.registry import get_reader

BODY = "CHAPTER I.\n\nThe river was high that spring, and the mill wheel turned all night.\n" * 40

MODERN = (
    "\ufeffThe Project Gutenberg eBook of The Mill on the Test\n"
    "    \n"
    "This ebook is for the use of anyone anywhere in the United States and\n"
    "most other parts of the world at no cost and with almost no restrictions.\n"
    "\n"
    "Title: The Mill on the Test\n"
    "       A Second Title Line\n"
    "\n"
    "Author: I. M. Writer\n"
    "\n"
    "Release date: May 5, 2005 [eBook #12345]\n"
    "                Most recently updated: June 6, 2006\n"
    "\n"
    "Language: French\n"
    "\n"
    "*** START OF THE PROJECT GUTENBERG EBOOK THE MILL ON THE TEST ***\n"
    "\n\n" + BODY + "\n\n"
    "*** END OF THE PROJECT GUTENBERG EBOOK THE MILL ON THE TEST ***\n"
    "\n"
    "Updated editions will replace the previous one--the old editions will\n"
    "be renamed. Section 1. General Terms of Use and Redistributing Project Gutenberg License\n"
)


def _read(data: bytes, name: str = "pg12345.txt"):
    stats = ReadStats()
    return list(read_gutenberg(io.BytesIO(data), name, stats)), stats


def test_modern_book_with_bom_crlf_and_gzip():
    for data in (MODERN.encode(), MODERN.replace("\n", "\r\n").encode(), gzip.compress(MODERN.encode())):
        docs, stats = _read(data)
        assert len(docs) == 1 and stats.emitted == 1
        doc = docs[0]
        assert doc.text == BODY.strip("\n")  # starts at the text, not the licence
        assert "\ufeff" not in doc.text and "\r" not in doc.text
        assert "Gutenberg" not in doc.text
        assert doc.id == "pg12345.txt" and doc.source == "books"
        assert doc.meta["title"] == "The Mill on the Test A Second Title Line"
        assert doc.meta["author"] == "I. M. Writer"
        assert doc.meta["lang"] == "fr" and doc.meta["language_name"] == "French"
        assert doc.meta["ebook"] == 12345
        assert doc.meta["release_date"] == "May 5, 2005" and doc.meta["updated"] == "June 6, 2006"
        assert not stats.repaired


def test_old_small_print_variant(fixtures_dir: Path):
    with (fixtures_dir / "gutenberg_old_smallprint.txt").open("rb") as f:
        stats = ReadStats()
        docs = list(read_gutenberg(f, "lantern10.txt", stats))
    doc = docs[0]
    assert doc.text.startswith("THE LANTERN KEEPER\n\nChapter I")
    assert doc.text.endswith("the names of gulls.")
    assert (
        "SMALL PRINT" not in doc.text and "lawyers" not in doc.text and "End of the Project" not in doc.text
    )
    assert (
        doc.meta["title"] == "The Lantern Keeper" and doc.meta["lang"] == "en" and doc.meta["ebook"] == 99999
    )


def test_older_start_and_end_spellings():
    text = (
        "Title: Old Times\nLanguage: German\n"
        "***START OF THE PROJECT GUTENBERG EBOOK OLD TIMES***\nDie Geschichte beginnt hier.\n"
        "End of Project Gutenberg's Old Times, by Someone\n*** END OF THE PROJECT GUTENBERG EBOOK OLD TIMES ***\n"
    )
    docs, _ = _read(text.encode())
    assert docs[0].text == "Die Geschichte beginnt hier." and docs[0].meta["lang"] == "de"


def test_no_markers_keeps_text_and_counts():
    docs, stats = _read(b"Just a plain novel.\nWith two lines.\n", "plain.txt")
    assert docs[0].text == "Just a plain novel.\nWith two lines."
    assert stats.repaired == {"gutenberg_no_start_marker": 1, "gutenberg_no_end_marker": 1}


def test_invalid_utf8_replaced_and_counted():
    docs, stats = _read(MODERN.replace("mill wheel", "mill\x00wheel").encode().replace(b"\x00", b"\x92"))
    assert "mill\ufffdwheel" in docs[0].text
    assert stats.repaired["invalid_utf8"] == 1


def test_empty_inputs_are_counted_drops():
    docs, stats = _read(b"", "empty.txt")
    assert docs == [] and stats.dropped == {"empty_file": 1}
    only_boilerplate = (
        "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\n"
    )
    docs, stats = _read(only_boilerplate.encode(), "x.txt")
    assert docs == [] and stats.dropped == {"empty_book": 1}


def test_truncated_gzip_is_an_error_naming_the_file():
    data = gzip.compress(MODERN.encode() * 20)
    with pytest.raises(ReaderError) as err:
        _read(data[: len(data) // 2], "cut.txt.gz")
    assert err.value.name == "cut.txt.gz" and str(err.value.position).startswith("byte ")


def test_language_codes():
    assert language_code("English") == "en"
    assert language_code("French and English") == "fr"
    assert language_code("Spanish, Catalan") == "es"
    assert language_code("Klingon") is None


def test_registry():
    assert get_reader("gutenberg").load_reader() is read_gutenberg


@pytest.mark.realdata
def test_real_books(shared_data: Path):
    paths = sorted((shared_data / "gutenberg").glob("*.txt.gz"))
    assert len(paths) == 6
    ids = []
    for path in paths:
        runs = []
        for _ in range(2):
            stats = ReadStats()
            with path.open("rb") as f:
                runs.append(list(read_gutenberg(f, path.name, stats)))
        (doc,), (again,) = runs
        assert again.id == doc.id and again.text == doc.text
        ids.append(doc.id)
        gold = path.name.split("_")[1] if path.name.startswith("kalamine_") else path.name.split("_")[0]
        assert doc.meta["lang"] == gold, path.name
        assert doc.meta["title"] and doc.meta["author"] and doc.meta["ebook"]
        head, tail = doc.text[:3000], doc.text[-3000:]
        assert "START OF THE PROJECT GUTENBERG" not in head and "This ebook is for the use" not in head
        assert "END OF THE PROJECT GUTENBERG" not in tail and "Project Gutenberg License" not in doc.text
        assert "\ufeff" not in doc.text and "\r" not in doc.text
        assert len(doc.text) > 100_000
        assert not stats.repaired.get("gutenberg_no_start_marker")
    assert len(set(ids)) == 6
    with (shared_data / "gutenberg" / "en_pg84.txt.gz").open("rb") as f:
        (frankenstein,) = read_gutenberg(f, "en_pg84.txt.gz", ReadStats())
    assert frankenstein.text.startswith("Frankenstein;\n\nor, the Modern Prometheus")
    assert frankenstein.text.rstrip().endswith("lost in darkness and distance.")
