"""CommonCrawl readers: WET conversion records and WARC responses, on warcio-written fixtures and real samples."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from filters.sources.base import ReaderError, ReadStats
from filters.sources.commoncrawl import read_warc, read_wet
from filters.sources.registry import get_reader

PAGES = [
    ("http://example.org/a", "eng", "Page A\nA short page.\n\n   Second line of the short page.  "),
    ("http://example.org/b", "deu,eng", "Seite B\nEin Text auf Deutsch.\nMit zwei Zeilen."),
    ("http://example.org/empty", None, "   \n"),
    ("http://example.org/c", "fra", "Page C\n" + "Un texte en français, assez long pour être lu.\n" * 20),
    ("http://example.org/title", "eng", "Only A Title\n\n"),
]


def _wet_bytes(pages=PAGES, gzip_members: bool = True, raw_payloads: dict[int, bytes] | None = None) -> bytes:
    """A WET file written by warcio: a warcinfo record then one conversion record per page."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzip_members)
    writer.write_record(writer.create_warcinfo_record("test.warc.wet.gz", {"isPartOf": "TEST-CRAWL"}))
    for i, (url, lang, text) in enumerate(pages):
        headers = {"WARC-Date": f"2021-01-0{i + 1}T00:00:00Z", "Content-Type": "text/plain"}
        if lang:
            headers["WARC-Identified-Content-Language"] = lang
        payload = (raw_payloads or {}).get(i, text.encode("utf-8"))
        record = writer.create_warc_record(
            url, "conversion", payload=io.BytesIO(payload), warc_headers_dict=headers
        )
        writer.write_record(record)
    return buf.getvalue()


def _read(fn, data: bytes, name: str = "test.warc.wet.gz"):
    stats = ReadStats()
    docs = list(fn(io.BytesIO(data), name, stats))
    return docs, stats


def test_wet_multimember_gzip_counts_ids_and_meta():
    data = _wet_bytes()
    assert data[:2] == b"\x1f\x8b" and data.count(b"\x1f\x8b\x08") >= 5  # one gzip member per record
    docs, stats = _read(read_wet, data)
    assert [d.meta["url"] for d in docs] == [
        "http://example.org/a",
        "http://example.org/b",
        "http://example.org/c",
    ]
    assert stats.emitted == 3
    assert stats.dropped == {"not_document:warcinfo": 1, "empty_conversion": 1, "wet_title_only": 1}
    a, b, _ = docs
    assert a.source == "commoncrawl"
    # cc_net parse_doc: lines stripped, empty ones dropped, the first line is the title, not text
    assert (
        a.text == "A short page.\nSecond line of the short page."
    )  # short docs are kept (CCNet drops later)
    assert a.meta["title"] == "Page A" and b.meta["title"] == "Seite B"
    assert a.meta["source_domain"] == "example.org" and a.meta["digest"].startswith("sha1:")
    assert (a.meta["length"], a.meta["nlines"]) == (len(a.text), 2)
    assert a.meta["cc_languages"] == ["eng"] and b.meta["cc_languages"] == ["deu", "eng"]
    assert a.meta["date"] == "2021-01-01T00:00:00Z"
    assert a.meta["record_id"].startswith("<urn:uuid:")
    assert all(d.id.startswith("test.warc.wet.gz:") for d in docs)
    assert len({d.id for d in docs}) == 3
    again, _ = _read(read_wet, data)
    assert [d.id for d in again] == [d.id for d in docs]


def test_wet_plain_and_gzip_give_same_documents():
    gz_docs, _ = _read(read_wet, _wet_bytes(gzip_members=True))
    plain_docs, _ = _read(read_wet, _wet_bytes(gzip_members=False), "test.warc.wet")
    assert [d.text for d in plain_docs] == [d.text for d in gz_docs]
    # one gzip stream over the whole file (not per record) reads the same too
    whole, _ = _read(read_wet, gzip.compress(_wet_bytes(gzip_members=False)))
    assert [d.text for d in whole] == [d.text for d in gz_docs]


def test_wet_truncated_gzip_keeps_documents_before_break_and_names_offset():
    data = _wet_bytes(PAGES[:4])
    cut = len(data) - 200  # inside the last record's gzip member
    stats = ReadStats()
    docs = []
    with pytest.raises(ReaderError) as err:
        for doc in read_wet(io.BytesIO(data[:cut]), "cut.warc.wet.gz", stats):
            docs.append(doc)
    assert [d.meta["url"] for d in docs] == ["http://example.org/a", "http://example.org/b"]
    assert stats.emitted == 2
    assert err.value.name == "cut.warc.wet.gz"
    assert "byte" in str(err.value.position)
    assert "cut.warc.wet.gz" in str(err.value)


def test_wet_truncated_plain_record_is_an_error_with_offset():
    data = _wet_bytes(PAGES[:4], gzip_members=False)
    stats = ReadStats()
    with pytest.raises(ReaderError) as err:
        list(read_wet(io.BytesIO(data[:-300]), "cut.warc.wet", stats))
    assert "truncated" in err.value.message
    assert stats.emitted == 2


def test_wet_invalid_utf8_is_replaced_and_counted():
    docs, stats = _read(read_wet, _wet_bytes(raw_payloads={0: b"Caf\xe9\ncaf\xe9 au lait \xff\xfe ok"}))
    assert docs[0].text == "caf\ufffd au lait \ufffd\ufffd ok" and docs[0].meta["title"] == "Caf\ufffd"
    assert stats.repaired["invalid_utf8"] == 1


def test_wet_empty_file_yields_nothing():
    docs, stats = _read(read_wet, b"", "empty.warc.wet")
    assert docs == [] and stats.emitted == 0 and not stats.dropped


def test_wet_garbage_is_an_error_not_silence():
    with pytest.raises(ReaderError) as err:
        _read(read_wet, b"this is not a WARC file\n", "junk.wet")
    assert err.value.name == "junk.wet"


def test_wet_wrong_content_length_is_reframed_and_counted(fixtures_dir: Path):
    path = fixtures_dir / "cc_bad_lengths.warc.wet"
    with path.open("rb") as f:
        stats = ReadStats()
        docs = list(read_wet(f, str(path), stats))
    assert [d.meta["url"] for d in docs] == ["http://example.org/first", "http://example.org/second"]
    assert docs[0].meta["title"] == "The first page says hello."
    assert docs[0].text == "Its second line is longer than the declared length."
    assert docs[1].text == "Second page, same record id as the first (hand-made files do this)."
    assert docs[0].meta["record_id"] == docs[1].meta["record_id"] and docs[0].id != docs[1].id
    assert stats.repaired["wet_content_length_mismatch"] == 3
    assert stats.dropped == {"not_document:warcinfo": 1}


def _warc_bytes() -> bytes:
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=True)
    html = (
        "<html><head><title>T</title><script>var hidden = 1;</script></head><body>"
        "<h1>Caf\u00e9 news</h1><p>The first paragraph is here.</p><ul><li>one</li><li>two</li></ul>"
        "</body></html>"
    ).encode("cp1252")
    req = writer.create_warc_record(
        "http://example.org/page",
        "request",
        payload=io.BytesIO(b""),
        http_headers=StatusAndHeaders("GET /page HTTP/1.1", [("Host", "example.org")], is_http_request=True),
    )
    writer.write_record(req)
    resp = writer.create_warc_record(
        "http://example.org/page",
        "response",
        payload=io.BytesIO(html),
        http_headers=StatusAndHeaders(
            "200 OK", [("Content-Type", "text/html; charset=windows-1252")], protocol="HTTP/1.1"
        ),
    )
    writer.write_record(resp)
    png = writer.create_warc_record(
        "http://example.org/img.png",
        "response",
        payload=io.BytesIO(b"\x89PNG\r\n\x1a\n" + bytes(100)),
        http_headers=StatusAndHeaders("200 OK", [("Content-Type", "image/png")], protocol="HTTP/1.1"),
    )
    writer.write_record(png)
    return buf.getvalue()


def test_warc_response_html_to_text():
    docs, stats = _read(read_warc, _warc_bytes(), "t.warc.gz")
    assert len(docs) == 1
    doc = docs[0]
    assert "Caf\u00e9 news" in doc.text  # decoded with the HTTP charset
    assert "The first paragraph is here." in doc.text
    assert "one\n" in doc.text and "two" in doc.text  # list items on their own lines
    assert "hidden" not in doc.text and "<p>" not in doc.text  # scripts and tags removed
    assert doc.meta["url"] == "http://example.org/page" and doc.meta["http_status"] == 200
    assert stats.dropped == {"not_document:request": 1, "warc_not_html": 1}
    assert stats.emitted == 1


def test_warc_truncated_gzip_names_file():
    data = _warc_bytes()
    with pytest.raises(ReaderError) as err:
        _read(read_warc, data[: len(data) // 2], "cut.warc.gz")
    assert err.value.name == "cut.warc.gz"


def test_registry_names_resolve_to_these_readers():
    assert get_reader("wet").load_reader() is read_wet
    assert get_reader("warc").load_reader() is read_warc


@pytest.mark.realdata
def test_real_wet_files(shared_data: Path):
    cc = shared_data / "commoncrawl"
    for fname, n in [
        ("resiliparse-warcfile.DERIVED.warc.wet.gz", 16),
        ("whirlwind.warc.wet.gz", 1),
        ("ccnet-tests-sample.warc.wet.txt", 3),
    ]:
        runs = []
        for _ in range(2):
            with (cc / fname).open("rb") as f:
                stats = ReadStats()
                runs.append(list(read_wet(f, fname, stats)))
        docs = runs[0]
        assert len(docs) == n == stats.emitted, fname
        assert [d.id for d in runs[1]] == [d.id for d in docs]
        assert len({d.id for d in docs}) == n
        assert not any("WARC/1.0" in d.text or "WARC-Type" in d.text for d in docs)
    with (cc / "ccnet-tests-sample.warc.wet.txt").open("rb") as f:
        docs = list(read_wet(f, "ccnet", ReadStats()))
    assert [d.meta["url"] for d in docs] == [
        "http://sample_english.com",
        "http://sample_chinese.zh",
        "http://sample_russian.ru",
    ]
    # cc_net's own test_parse_wet_file: titles and domains
    assert [d.meta["title"] for d in docs] == [
        "Famous Mark Twain Quotes",
        "馬克·吐溫名言",
        "Цитаты знаменитого Марка Твена",
    ]
    assert [d.meta["source_domain"] for d in docs] == [
        "sample_english.com",
        "sample_chinese.zh",
        "sample_russian.ru",
    ]
    assert docs[0].text.startswith("Don't part with your illusions.") and docs[0].text.endswith(
        "Truth isn't."
    )
    assert "\n\n" not in docs[0].text and docs[1].text.startswith("不要放棄你的幻想。")
    with (cc / "resiliparse-warcfile.DERIVED.warc.wet.gz").open("rb") as f:
        docs = list(read_wet(f, "r", ReadStats()))
    assert docs[0].meta["cc_languages"] == ["zho"]
    assert sum("rus" in d.meta["cc_languages"] for d in docs) >= 1


@pytest.mark.realdata
def test_real_warc_files(shared_data: Path):
    cc = shared_data / "commoncrawl"
    for fname, n in [
        ("resiliparse-tests-warcfile.warc.gz", 16),
        ("dolma-tests-sample-0000.warc.gz", 22),
        ("whirlwind.warc.gz", 1),
    ]:
        with (cc / fname).open("rb") as f:
            stats = ReadStats()
            docs = list(read_warc(f, fname, stats))
        assert len(docs) == n == stats.emitted, fname
        assert all(d.text.strip() and "<html" not in d.text.lower() for d in docs)
    # the same page from the WARC and from its WET conversion
    with (cc / "whirlwind.warc.gz").open("rb") as f:
        warc_doc = next(read_warc(f, "w", ReadStats()))
    with (cc / "whirlwind.warc.wet.gz").open("rb") as f:
        wet_doc = next(read_wet(f, "w", ReadStats()))
    assert warc_doc.meta["url"] == wet_doc.meta["url"] == "https://an.wikipedia.org/wiki/Escopete"
    assert "Escopete" in warc_doc.text


def test_warc_empty_and_garbage():
    assert _read(read_warc, b"", "empty.warc") == ([], ReadStats())
    with pytest.raises(ReaderError) as err:
        _read(read_warc, b"garbage here\n", "junk.warc")
    assert err.value.name == "junk.warc" and "byte 0" in str(err.value.position)
