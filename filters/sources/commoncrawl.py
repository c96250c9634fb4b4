"""Common Crawl readers: WET `conversion` records and WARC `response` records → documents.

Why two readers: LLaMA's CommonCrawl source is CCNet run on WET files (CC's own text extraction), but a
user who starts from WARC files needs the HTML → text step too; that uses resiliparse's extractor.

Both read through `open_decompressed`, so gzip (CC's per-record multi-member gzip included), bz2, xz and
plain files all work and a truncated file raises `ReaderError` naming the file and the compressed byte
offset. Documents yielded before a break stay yielded; the `ReaderError` propagates to the caller, which
records it as a dead letter. A record whose block is shorter than its `Content-Length` at the end of the
file is a truncation too, reported the same way.

Ids are `"{basename}:{offset}"`, the decompressed byte offset of the record: stable, unique within the
file, and unlike `WARC-Record-ID` they stay unique in hand-made files that repeat record ids.

WET framing: records are framed by `Content-Length` and the headers parsed by warcio. cc_net's own sample
WET (hand-made) carries wrong `Content-Length` values, and cc_net frames WET by the `WARC/1.0` marker
line; so when the bytes after a block are not the blank line + `WARC/` header the standard requires, the
reader re-frames that record at the next marker line and counts the repair
(`wet_content_length_mismatch`) instead of failing the rest of the file.

WET records are parsed as cc_net's `process_wet_file.parse_doc` does: every line stripped, empty lines
dropped, the first line is the page title (`meta["title"]`, not part of the text, so it takes no part in
dedup, LID, perplexity or training), `source_domain` is the URL's netloc, `digest` the
`WARC-Block-Digest`, and `length`/`nlines` are those of the text without the title. (cc_net's parser
keeps empty lines inside the content; its line dedup then removes them, the empty line's hash being in
every page, so the mined text is the same.) Documents shorter than 300 characters are kept (CCNet drops
them in its own stage); an empty `conversion` record is dropped as `empty_conversion`, one whose content
is only a title as `wet_title_only`. Records that are not documents (warcinfo, request, metadata, …) are
counted as `not_document:<type>`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from filters.document import Document
from filters.sources.base import ReaderError, ReadStats, ReplayStream, basename, decode_utf8
from filters.sources.compression import open_decompressed

SOURCE = "commoncrawl"

_MARKER = re.compile(rb"\r?\n\r?\n(WARC/1\.[01]\r?\n)")
_VERSION_LINE = re.compile(rb"^WARC/\d\.\d+\r?\n$")
_MAX_HEADER_LINES = 200  # a WARC header block is a few dozen lines; more means we are not at a header
_MAX_RECORD = 64 << 20  # CC truncates payloads at 1 MiB; a bigger block means a corrupt length or framing
_HTML_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "text/xml")


def _parse_headers(block: bytes) -> Any:
    """Parse a WARC header block with warcio (verify off: header names are case-insensitive)."""
    from warcio.statusandheaders import StatusAndHeadersParser

    parser = StatusAndHeadersParser(["WARC/1.1", "WARC/1.0", "WARC/0.17", "WARC/0.18"], verify=False)
    return parser.parse(io.BytesIO(block))


def _iter_wet_records(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[tuple[int, Any, bytes]]:
    """(offset, headers, block) for each record of a WET stream, decompressed and framed."""
    reader = ReplayStream(open_decompressed(stream, name))
    while True:
        line = reader.readline()
        while line in (b"\r\n", b"\n"):
            line = reader.readline()
        if not line:
            return
        offset = reader.pos - len(line)
        if not _VERSION_LINE.match(line):
            raise ReaderError(
                name, f"byte {offset} (decompressed)", f"expected a WARC version line, got {line[:80]!r}"
            )
        header = [line]
        while True:
            hl = reader.readline()
            if not hl:
                raise ReaderError(name, f"byte {offset} (decompressed)", "WARC header block truncated")
            if hl in (b"\r\n", b"\n"):
                break
            header.append(hl)
            if len(header) > _MAX_HEADER_LINES:
                raise ReaderError(name, f"byte {offset} (decompressed)", "WARC header block has no end")
        headers = _parse_headers(b"".join(header))
        length_text = headers.get_header("Content-Length")
        try:
            length = int(length_text)
        except (TypeError, ValueError):
            raise ReaderError(
                name, f"byte {offset} (decompressed)", f"record has no valid Content-Length: {length_text!r}"
            ) from None
        if length < 0 or length > _MAX_RECORD:
            raise ReaderError(name, f"byte {offset} (decompressed)", f"implausible Content-Length {length}")
        block = reader.read(length)
        tail = b""
        if len(block) == length:
            # The standard says a block is followed by CRLF CRLF and then the next record's version line.
            tail = reader.readline() + reader.readline() + reader.readline()
            stripped = tail.lstrip(b"\r\n")
            if not stripped or _VERSION_LINE.match(stripped.split(b"\n", 1)[0] + b"\n"):
                reader.unread(stripped)
                yield offset, headers, block
                continue
        elif not _MARKER.search(b"\n" + block):
            raise ReaderError(
                name,
                f"byte {offset} (decompressed)",
                f"record truncated: Content-Length {length}, only {len(block)} bytes before end of file",
            )
        # Content-Length disagrees with the framing: re-frame at the next "blank line + WARC/1.x" marker.
        stats.repair("wet_content_length_mismatch")
        buf = b"\n" + block + tail  # the leading newline lets a marker at the very start match
        while True:
            m = _MARKER.search(buf)
            if m:
                reader.unread(buf[m.start(1) :])
                yield offset, headers, buf[1 : m.start()]
                break
            more = reader.readline()
            if len(buf) > _MAX_RECORD:
                raise ReaderError(
                    name, f"byte {offset} (decompressed)", "no next record marker within size cap"
                )
            if not more:
                yield offset, headers, buf[1:].rstrip(b"\r\n")
                break
            buf += more


def wet_content(text: str) -> tuple[str, str]:
    """`(title, raw_content)` of a WET block as cc_net's `process_wet_file.parse_doc` makes them: every
    line stripped, empty lines dropped, the first line is the page title and not part of the content."""
    lines = [stripped for line in text.split("\n") if (stripped := line.strip())]
    if not lines:
        return "", ""
    return lines[0], "\n".join(lines[1:])


def read_wet(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[Document]:
    """WET `conversion` records as documents: the first content line is the title (in meta, not in the
    text), as cc_net parses them; url, domain, date, record id, block digest and CC's language header."""
    base = basename(name)
    for offset, headers, block in _iter_wet_records(stream, name, stats):
        rec_type = (headers.get_header("WARC-Type") or "").strip()
        if rec_type != "conversion":
            stats.drop(f"not_document:{rec_type or 'unknown'}")
            continue
        title, text = wet_content(decode_utf8(block, stats).replace("\r\n", "\n"))
        if not title:
            stats.drop("empty_conversion")
            continue
        if not text:
            stats.drop("wet_title_only")
            continue
        url = headers.get_header("WARC-Target-URI")
        meta: dict[str, Any] = {
            "url": url,
            "title": title,
            "source_domain": urlsplit(url).netloc if url else None,
            "date": headers.get_header("WARC-Date"),
            "record_id": headers.get_header("WARC-Record-ID"),
            "refers_to": headers.get_header("WARC-Refers-To"),
            "digest": headers.get_header("WARC-Block-Digest"),
            "cc_languages": _languages(headers.get_header("WARC-Identified-Content-Language")),
            "length": len(text),
            "nlines": text.count("\n") + 1,
            "file": base,
            "offset": offset,
        }
        stats.emitted += 1
        yield Document(id=f"{base}:{offset}", source=SOURCE, text=text, meta=meta)


def _languages(value: str | None) -> list[str]:
    """CC's `WARC-Identified-Content-Language` (ISO 639-3, comma-separated, most likely first)."""
    return [code.strip() for code in value.split(",") if code.strip()] if value else []


def html_to_text(payload: bytes, content_type: str | None = None) -> str:
    """Visible text of an HTML page (resiliparse): encoding from the HTTP header, meta tag or detection."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    encoding = None
    if content_type:
        m = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type, re.I)
        if m:
            encoding = m.group(1)
    if encoding is None:
        encoding = detect_encoding(payload, from_html_meta=True)
    try:
        html = bytes_to_str(payload, encoding, errors="replace")
    except LookupError:
        html = bytes_to_str(payload, detect_encoding(payload), errors="replace")
    return extract_plain_text(html, preserve_formatting=True, main_content=False, list_bullets=False)


def read_warc(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[Document]:
    """WARC `response` records with an HTML payload → text documents (url, date, record id in meta)."""
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    base = basename(name)
    iterator = ArchiveIterator(open_decompressed(stream, name))
    records = iter(iterator)
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except ArchiveLoadFailed as exc:
            raise ReaderError(
                name, f"byte {iterator.offset} (decompressed)", f"invalid WARC record: {exc}"
            ) from exc
        rec_type = record.rec_type
        if rec_type != "response":
            stats.drop(f"not_document:{rec_type or 'unknown'}")
            continue
        headers = record.rec_headers
        content_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
        payload = record.content_stream().read()
        offset = iterator.get_record_offset()
        if getattr(record.raw_stream, "limit", 0):
            raise ReaderError(
                name,
                f"byte {offset} (decompressed)",
                f"record truncated: {record.raw_stream.limit} bytes of its Content-Length missing",
            )
        mime = (content_type or headers.get_header("WARC-Identified-Payload-Type") or "").split(";")[0]
        if mime.strip().lower() not in _HTML_TYPES:
            stats.drop("warc_not_html")
            continue
        text = html_to_text(payload, content_type).strip()
        if not text:
            stats.drop("empty_html_text")
            continue
        status = record.http_headers.get_statuscode() if record.http_headers else None
        meta = {
            "url": headers.get_header("WARC-Target-URI"),
            "date": headers.get_header("WARC-Date"),
            "record_id": headers.get_header("WARC-Record-ID"),
            "http_status": int(status) if status and status.isdigit() else None,
            "content_type": content_type,
            "cc_languages": _languages(headers.get_header("WARC-Identified-Content-Language")),
            "file": base,
            "offset": offset,
        }
        stats.emitted += 1
        yield Document(id=f"{base}:{offset}", source=SOURCE, text=text, meta=meta)
