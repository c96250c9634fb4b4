"""Wikipedia pages-articles reader: fixtures, compression/encoding variants, bad input, real dumps."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import random
import re
from collections import Counter
from pathlib import Path

import mwparserfromhell
import pytest

from filters.sources.base import ReaderError, ReadStats
from filters.sources.compression import open_decompressed
from filters.sources.wikipedia import (
    WikitextRenderer,
    dbname_from_filename,
    external_links,
    lang_from_dbname,
    prestrip,
    read_wikipedia_xml,
    remove_namespace_links,
    remove_templates,
)
from filters.sources.xmlsafe import clear_element, local_name, safe_iterparse


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


@pytest.mark.parametrize(
    ("wikitext", "expected"),
    [
        ("See http://a.example/x. Next", ["http://a.example/x"]),  # trailing punctuation is not the URL
        ("(see http://a.example/x) and http://b.example/(y)", ["http://a.example/x", "http://b.example/(y)"]),
        ("[http://a.example/x.]", ["http://a.example/x."]),  # in brackets the URL runs to the space
        (
            "http://a.example/?a=1&amp;b=2&region=3",
            ["http://a.example/?a=1&b=2&region=3"],
        ),  # `;` entities only
        ("{{cite web|url=http://a.example/x|title=T}}", ["http://a.example/x"]),
        ("http://a.example/x''italic''", ["http://a.example/x"]),
        (
            "[https://a.example/x\u00a0Title] http://b.example/y\u3000z",
            ["https://a.example/x", "http://b.example/y"],
        ),
        ("//a.example/bare [//b.example/y t]", ["https://b.example/y"]),  # `//` alone only in brackets
        ("xhttp://a.example/x HTTP://B.example/y", ["HTTP://B.example/y"]),
        ("|archiveurl=//web.archive.org/web/1/http://a.example/x |", ["http://a.example/x"]),
        ("<!-- http://a.example/c --><nowiki>http://a.example/n</nowiki><pre>http://a.example/p</pre>", []),
        ('<span title="http://a.example/attr">x</span>', []),
        ("http://{{SERVER}}/x http://a.example/{{PAGENAME}} http://a.example/ok", ["http://a.example/ok"]),
        ("ftp://f.example/a mailto:x@y.example http:// alone", ["ftp://f.example/a"]),
        ("[http://a.example/x A] http://a.example/x", ["http://a.example/x"]),  # deduplicated, in order
    ],
)
def test_external_links_follow_mediawiki_rules(wikitext: str, expected: list[str]) -> None:
    assert external_links(wikitext) == expected


def _parser_only(renderer: WikitextRenderer, wikitext: str) -> str:
    """The renderer without its regex shortcuts: every link and apostrophe left to mwparserfromhell."""
    text = remove_namespace_links(prestrip(wikitext), renderer.media_namespaces)
    return renderer._tidy(renderer._render(mwparserfromhell.parse(text)))


@pytest.mark.parametrize(
    "link",
    [
        "[[Fence|fences]]",
        "[[Fence]]",
        "[[ Fence |fences]]",
        "[[Fence#History]]",
        "[[#History]]",
        "[[Fence#History|history]]",
        "[[:Category:Fences]]",
        "[[Category:Fences]]",
        "[[Category:Fences|sort key]]",
        "[[fr:Clôture]]",
        "[[fr:Clôture|clôture]]",
        "[[Template:Fence]]",
        "[[Fence|]]",
        "[[Fence|a|b]]",
        "[[Fence|R&amp;D]]",
        "[[R&amp;D]]",
        "[[Rock 'n' roll]]",
        "[[Fence|a&nbsp;b]]",
        "[[Fence|*starred]]",
        "[[Fence|: colon]]",
        "[[Fence|x__NOTOC__]]",
        "[[Fence|[[nested]]]]",
    ],
)
def test_link_shortcut_renders_as_the_parser_does(link: str) -> None:
    renderer = WikitextRenderer({"Category", "Template"})
    for wikitext in (f"Post and {link} rail.", f"Post and\n{link} rail.", f"{link}\nrail"):
        assert renderer(wikitext) == _parser_only(renderer, wikitext), wikitext


def test_apostrophes_lists_and_literal_blocks() -> None:
    renderer = WikitextRenderer()
    text = renderer(
        "'''Bold''' and ''italic'' and '''''both''''', in French ''{{lang|fr|enclos}}'' too.\n"
        "* first item\n** nested [[Item|item]]\n# numbered\n: indented\n"
        "<syntaxhighlight lang=python>x = ''\n* not a list [[x]]</syntaxhighlight>\n"
        "<nowiki>''literal''</nowiki> end."
    )
    assert text.split("\n") == [
        "Bold and italic and both, in French too.",
        "first item",
        "nested item",
        "numbered",
        "indented",
        "x = ''",
        "* not a list [[x]]",
        "''literal'' end.",
    ]


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


def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text.lower()))


@pytest.mark.realdata
def test_real_enwiki_text_overlaps_wikiextractor(shared_data: Path) -> None:
    """Token overlap with wikiextractor's text of the same articles: nothing it keeps goes missing.

    wikiextractor drops lists (disambiguation pages, "See also"), so precision is lower than recall.
    """
    folder = shared_data / "wikipedia"
    path = folder / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    with path.open("rb") as handle:
        docs = {str(d.meta["page_id"]): d.text for d in read_wikipedia_xml(handle, path.name, ReadStats())}
    with gzip.open(folder / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz", "rt") as handle:
        reference = {row["id"]: row["text"] for row in map(json.loads, handle)}
    ours_all: Counter[str] = Counter()
    ref_all: Counter[str] = Counter()
    for page_id, ref_text in reference.items():
        ours, ref = _tokens(docs[page_id]), _tokens(ref_text)
        ours_all += ours
        ref_all += ref
        if sum(ref.values()) >= 50:
            recall = sum((ours & ref).values()) / sum(ref.values())
            assert recall >= 0.9, (page_id, recall)
        assert "''" not in docs[page_id], page_id
    common = sum((ours_all & ref_all).values())
    assert common / sum(ref_all.values()) >= 0.99  # measured 0.9993
    assert common / sum(ours_all.values()) >= 0.85  # measured 0.901


def _raw_pages(path: Path, limit: int) -> list[str]:
    """Wikitext of the first `limit` non-redirect pages that can cite a URL."""
    pages: list[str] = []
    with path.open("rb") as handle:
        stream = open_decompressed(handle, path.name)
        for _event, elem in safe_iterparse(stream, path.name, ReadStats()):
            if local_name(elem.tag) != "page":
                continue
            text = next((e.text for e in elem.iter() if local_name(e.tag) == "text"), None) or ""
            if "//" in text and not re.match(r"\s*#redirect", text, re.IGNORECASE):
                pages.append(text)
            clear_element(elem)
            if len(pages) == limit:
                break
    return pages


@pytest.mark.realdata
def test_real_external_links_agree_with_full_parse(shared_data: Path) -> None:
    """The regex scan finds what a full mwparserfromhell parse of the page finds (what it replaced)."""
    path = shared_data / "wikipedia" / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    found = expected = both = 0
    for wikitext in _raw_pages(path, 20):
        ours = set(external_links(wikitext))
        urls = (str(link.url).strip() for link in mwparserfromhell.parse(wikitext).filter_external_links())
        parsed = {"https:" + url if url.startswith("//") else url for url in urls}
        parsed = {url for url in parsed if re.match(r"(https?|ftp)://", url, re.IGNORECASE)}
        found, expected, both = found + len(ours), expected + len(parsed), both + len(ours & parsed)
    assert expected > 500
    assert both / expected >= 0.98 and both / found >= 0.98, (found, expected, both)


def test_mwparserfromhell_uses_its_c_tokenizer() -> None:
    """The pure-Python fallback tokenizer (a source install without a compiler) is ~10x slower."""
    assert mwparserfromhell.parser.use_c, (
        "mwparserfromhell's C tokenizer is not built: reinstall from a wheel"
    )


def test_unmatched_link_brackets_removed_words_kept() -> None:
    from filters.sources.wikipedia import WikitextRenderer, remove_unmatched_brackets

    assert remove_unmatched_brackets("a [[Foo b") == "a Foo b"
    assert remove_unmatched_brackets("c [[Bar] d") == "c Bar d"
    assert remove_unmatched_brackets("Foo]] end") == "Foo end"
    assert remove_unmatched_brackets("keep [sic] and [[x]] pairs") == "keep [sic] and [[x]] pairs"
    text = WikitextRenderer()("Η [[Αθήνα]] είναι η [[πρωτεύουσα της Ελλάδας. Ένα [[Foo] τέλος [sic].")
    assert text == "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας. Ένα Foo τέλος [sic]."
