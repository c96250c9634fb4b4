"""Wikipedia pages-articles reader: fixtures, compression/encoding variants, bad input, real dumps."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import re
from pathlib import Path

import pytest

from filters.sources.base import ReaderError, ReadStats
from filters.sources.wikipedia import (
    dbname_from_filename,
    external_links,
    lang_from_dbname,
    read_wikipedia_xml,
    remove_templates,
)


def _read(data: bytes, name: str = "enwiki-test.xml") -> tuple[list, ReadStats]:
    stats = ReadStats()
    return list(read_wikipedia_xml(io.BytesIO(data), name, stats)), stats


def _page(page_id: int, text: str, ns: int = 0, title: str | None = None) -> str:
    return (
        f"<page><title>{title or f'Page {page_id}'}</title><ns>{ns}</ns><id>{page_id}</id>"
        f'<revision><id>{page_id + 1000}</id><text xml:space="preserve">{text}</text></revision></page>\n'
    )


def _dump(pages: list[str], siteinfo: bool = True) -> bytes:
    head = '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" xml:lang="en">\n'
    if siteinfo:
        head += "<siteinfo><dbname>enwiki</dbname></siteinfo>\n"
    return (head + "".join(pages) + "</mediawiki>\n").encode()


@pytest.fixture
def sample(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / "wiki_sample.xml").read_bytes()


def test_fixture_documents_and_drops(sample: bytes) -> None:
    docs, stats = _read(sample, "wiki_sample.xml")
    assert [d.id for d in docs] == ["enwiki:101", "enwiki:104"]
    assert stats.emitted == 2
    assert stats.dropped == {"wikipedia_redirect": 1, "wikipedia_non_main_namespace": 1}
    corral = docs[0]
    assert corral.source == "wikipedia"
    assert corral.meta["lang"] == "en" and corral.meta["title"] == "Corral (livestock)"
    assert corral.text.startswith(
        "A corral is a pen for keeping livestock such as horses and cattle. It is usually round."
    )
    lines = corral.text.split("\n")
    assert "Construction" in lines  # headings kept as their own lines
    assert "References" not in lines  # an empty section's heading goes
    assert "Round pens are common." in lines
    assert "builders' guide" in corral.text
    for markup in (
        "{{",
        "}}",
        "[[",
        "]]",
        "<ref",
        "'''",
        "{|",
        "TableCellWood",
        "Animal husbandry",
        "Pferch",
        "editors",
        "dusk",
        "Infobox",
        "http",
    ):
        assert markup not in corral.text, markup


def test_ids_stable_across_runs(sample: bytes) -> None:
    first, _ = _read(sample)
    second, _ = _read(sample)
    assert [(d.id, d.text) for d in first] == [(d.id, d.text) for d in second]


@pytest.mark.parametrize("variant", ["bz2", "gz", "utf16", "utf16-crlf-bz2"])
def test_compression_and_encoding_variants(sample: bytes, variant: str) -> None:
    expected, _ = _read(sample)
    if variant == "bz2":
        data = bz2.compress(sample)
    elif variant == "gz":
        data = gzip.compress(sample)
    elif variant == "utf16":
        data = b"\xff\xfe" + sample.decode().encode("utf-16-le")
    else:
        text = '<?xml version="1.0" encoding="UTF-16"?>\r\n' + sample.decode().replace("\n", "\r\n")
        data = bz2.compress(text.encode("utf-16"))
    docs, stats = _read(data)
    assert [(d.id, d.text) for d in docs] == [(d.id, d.text) for d in expected]
    assert not stats.repaired


def test_dbname_from_filename_without_siteinfo() -> None:
    docs, _ = _read(_dump([_page(7, "Ein '''Pferch''' ist ein Gehege.")], siteinfo=False), "dewiki-2022.xml")
    assert [d.id for d in docs] == ["dewiki:7"]
    assert docs[0].meta["lang"] == "de"
    assert dbname_from_filename("/x/bgwiki-latest-pages-articles.xml.bz2") == "bgwiki"
    assert dbname_from_filename("dump.xml") is None
    assert lang_from_dbname("zh_yuewiki") == "zh-yue"


def test_lang_from_root_when_no_siteinfo_and_no_filename_prefix() -> None:
    docs, _ = _read(_dump([_page(3, "Text here.")], siteinfo=False), "dump.xml")
    assert docs[0].id == "enwiki:3"


def test_external_links_include_citation_templates() -> None:
    text = (
        "Intro [https://a.example/x A] and {{cite web |url=http://b.example/y |title=T}} "
        "<ref>[//c.example/z]</ref> again [https://a.example/x dup] [[Internal]]"
    )
    assert external_links(text) == ["https://a.example/x", "http://b.example/y", "https://c.example/z"]


def test_file_link_with_multiline_caption_removed() -> None:
    text = "Before.\n[[File:Tree.svg|thumb|A tree:\n\nline two [[Link|x]] of caption]]\nAfter [[Tree|trees]]."
    docs, _ = _read(_dump([_page(1, text)]))
    assert docs[0].text == "Before.\nAfter trees."


def test_remove_templates_nested_and_unclosed() -> None:
    assert remove_templates("a {{x|{{y}}|z}} b") == "a  b"
    assert remove_templates("keep {{unclosed and the rest") == "keep {{unclosed and the rest"


def test_truncated_bz2_keeps_pages_before_break() -> None:
    rng = random.Random(1)
    words = ["fence", "horse", "cattle", "post", "rail", "gate", "field", "barn", "stall", "yard"]
    pages = [_page(i, " ".join(rng.choice(words) for _ in range(40)) + ".") for i in range(1, 1501)]
    data = bz2.compress(_dump(pages), compresslevel=1)  # 100 kB blocks: several per file
    cut = data[: int(len(data) * 0.7)]
    stats = ReadStats()
    got = []
    with pytest.raises(ReaderError) as err:
        for doc in read_wikipedia_xml(io.BytesIO(cut), "enwiki-cut.xml.bz2", stats):
            got.append(doc)
    assert 0 < len(got) < 1500
    assert stats.emitted == len(got)
    assert err.value.name == "enwiki-cut.xml.bz2"
    assert "byte" in str(err.value.position)
    assert [d.id for d in got] == [f"enwiki:{i}" for i in range(1, len(got) + 1)]


def test_truncated_gzip_names_file_and_offset() -> None:
    pages = [_page(i, f"Article number {i} about fences.") for i in range(1, 3000)]
    data = gzip.compress(_dump(pages))
    stats = ReadStats()
    got = []
    with pytest.raises(ReaderError, match=r"enwiki-cut\.xml\.gz at byte \d+"):
        for doc in read_wikipedia_xml(io.BytesIO(data[: len(data) // 2]), "enwiki-cut.xml.gz", stats):
            got.append(doc)
    assert len(got) > 0


def test_invalid_utf8_replaced_and_counted() -> None:
    data = _dump([_page(1, "Caf\xe9 ok")]).replace("Caf\xe9".encode(), b"Caf\xff\xfe")
    docs, stats = _read(data)
    assert docs[0].text == "Caf\ufffd\ufffd ok"
    assert stats.repaired["invalid_utf8"] == 2


def test_entity_bomb_refused() -> None:
    bomb = ['<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n']
    for i in range(1, 10):
        bomb.append(f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">\n'.replace("lol0", "lol"))
    bomb.append("]>\n<mediawiki><siteinfo><dbname>enwiki</dbname></siteinfo>")
    bomb.append(_page(1, "&lol9;") + "</mediawiki>")
    with pytest.raises(ReaderError, match="DTD"):
        _read("".join(bomb).encode())


def test_undeclared_entity_is_an_error_not_an_expansion() -> None:
    with pytest.raises(ReaderError, match="malformed XML"):
        _read(_dump([_page(1, "a &lol9; b")]))


def test_malformed_xml_mid_file() -> None:
    good = [_page(i, f"Good page {i}.") for i in range(1, 4)]
    data = _dump(good + ["<page><title>Broken</title><ns>0</id></page>\n"] + [_page(9, "never")])
    stats = ReadStats()
    got = []
    with pytest.raises(ReaderError) as err:
        for doc in read_wikipedia_xml(io.BytesIO(data), "enwiki-bad.xml", stats):
            got.append(doc)
    assert [d.id for d in got] == ["enwiki:1", "enwiki:2", "enwiki:3"]
    assert re.search(r"line \d+, column \d+", str(err.value))


def test_empty_file_is_an_error() -> None:
    with pytest.raises(ReaderError, match="empty"):
        _read(b"")
    with pytest.raises(ReaderError, match="empty"):
        _read(gzip.compress(b""), "enwiki-empty.xml.gz")


def test_page_without_text_is_a_dead_letter() -> None:
    page = "<page><title>X</title><ns>0</ns><id>5</id><revision><id>1</id></revision></page>"
    docs, stats = _read(_dump([page, _page(6, "Fine.")]))
    assert [d.id for d in docs] == ["enwiki:6"]
    assert stats.dropped["wikipedia_missing_text"] == 1
    assert stats.dead_letters[0].position.startswith("line ")


# ---- real dumps ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_enwiki_matches_wikiextractor_articles(shared_data: Path) -> None:
    folder = shared_data / "wikipedia"
    path = folder / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    with path.open("rb") as handle:
        stats = ReadStats()
        docs = list(read_wikipedia_xml(handle, path.name, stats))
    with gzip.open(folder / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz", "rt") as handle:
        reference = {json.loads(line)["id"] for line in handle}
    assert len(docs) == 106
    assert {str(d.meta["page_id"]) for d in docs} == reference
    assert stats.emitted + sum(stats.dropped.values()) == 206
    by_id = {d.id: d for d in docs}
    assert by_id["enwiki:12"].text.startswith("Anarchism is a political philosophy that advocates")
    for doc in docs:
        assert "{{" not in doc.text and "[[" not in doc.text and "<ref" not in doc.text, doc.id
        assert "File:" not in doc.text and "thumb|" not in doc.text, doc.id
        assert not re.search(r"^(Category|File|Image):", doc.text, re.MULTILINE), doc.id


@pytest.mark.realdata
def test_real_samples_languages_namespaces_redirects(shared_data: Path) -> None:
    folder = shared_data / "wikipedia"
    expected_pages = {"uk": 130, "vi": 380, "ja": 139}
    for lang, total in expected_pages.items():
        path = folder / f"{lang}wiki-sample.xml.bz2"
        stats = ReadStats()
        with path.open("rb") as handle:
            docs = list(read_wikipedia_xml(handle, path.name, stats))
        assert stats.emitted + sum(stats.dropped.values()) == total
        assert stats.dropped["wikipedia_non_main_namespace"] > 0 and stats.dropped["wikipedia_redirect"] > 0
        assert {d.meta["lang"] for d in docs} == {lang}
        assert all(d.id.startswith(f"{lang}wiki:") for d in docs)
        assert len({d.id for d in docs}) == len(docs)


@pytest.mark.realdata
def test_real_utf16_and_table_markup(shared_data: Path) -> None:
    folder = shared_data / "wikipedia"
    path = folder / "bgwiki-latest-pages-articles-shortened.xml.bz2"
    with path.open("rb") as handle:
        docs = list(read_wikipedia_xml(handle, path.name, ReadStats()))
    assert [d.id for d in docs] == ["bgwiki:558"]
    assert docs[0].text.startswith("Григорианският календар")
    assert "\r" not in docs[0].text

    path = folder / "enwiki-table-markup.xml.bz2"
    with path.open("rb") as handle:
        docs = list(read_wikipedia_xml(handle, path.name, ReadStats()))
    assert len(docs) == 5 and all(d.id.startswith("enwiki:") for d in docs)
    for doc in docs:
        assert not re.search(r"^\s*(\{\||\|-|\|\})", doc.text, re.MULTILINE), doc.id
        assert "wikitable" not in doc.text
