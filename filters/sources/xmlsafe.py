"""Safe, streaming XML for untrusted dumps: UTF-8 normalisation, DTD refusal, positioned errors.

Wikipedia and StackExchange dumps are large XML files that we parse with `lxml.etree.iterparse` and
element clearing. Three things go wrong with real or hostile input, and each is handled here once:

* Entity-expansion bombs ("billion laughs") need a DTD. Neither dump format has one, so any
  `<!DOCTYPE` / `<!ENTITY` in the prolog is refused before a single entity is parsed; on top of that the
  parser runs with `resolve_entities=False`, `load_dtd=False`, `no_network=True` and `huge_tree=False`.
* Encodings: dumps are UTF-8, but UTF-16 (with BOM, e.g. a Windows re-save) occurs. UTF-16 is transcoded
  to UTF-8 incrementally (bounded memory), and the XML declaration is rewritten to say so.
* Invalid UTF-8 makes libxml2 stop. Bytes are checked chunk by chunk; bad sequences are replaced with
  U+FFFD and counted via `ReadStats.repair("invalid_utf8")` instead of killing the file.

Malformed XML mid-file raises `ReaderError` naming the file, line and column (and the decompressed byte
offset read so far); elements yielded before the error stay yielded.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator
from typing import BinaryIO

from lxml import etree

from filters.sources.base import ReaderError, ReadStats, ReplayStream

_CHUNK = 1 << 16
_PROLOG_LIMIT = 1 << 20  # bytes allowed before the root element starts
_ROOT_START = re.compile(rb"<[A-Za-z_]")
_DECL_ENCODING = re.compile(rb"^(<\?xml[^>]*?encoding\s*=\s*)([\"'])[^\"']*\2")
_REPLACEMENT = "\ufffd".encode()


def _utf8_cut(data: bytes) -> int:
    """Index up to which `data` holds only complete UTF-8 sequences (an incomplete tail is kept back)."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte < 0x80:
            return n
        if byte >= 0xC0:  # lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return n if back >= need else n - back
    return n


class Utf8Stream(io.RawIOBase):
    """A byte stream re-encoded as valid UTF-8 (from UTF-8, UTF-8 with BOM, or UTF-16 with BOM).

    Invalid sequences are replaced with U+FFFD and counted in `stats.repaired["invalid_utf8"]`.
    `offset` is the number of source bytes consumed so far (for error positions).
    """

    def __init__(self, raw: BinaryIO, name: str, stats: ReadStats) -> None:
        self._raw = raw
        self.name = name
        self._stats = stats
        self._buf = b""
        self._pending = b""
        self._eof = False
        self.offset = 0
        head = raw.read(4)
        self.offset += len(head)
        self.encoding = "utf-8"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            self.encoding = "utf-16"
        elif head.startswith(b"<\x00") and head[2:3] != b"\x00":
            self.encoding = "utf-16-le"
        elif head.startswith(b"\x00<"):
            self.encoding = "utf-16-be"
        self._decoder = codecs.getincrementaldecoder(self.encoding)(errors="replace")
        self._first = True
        self._feed(head)

    def readable(self) -> bool:
        return True

    def _feed(self, data: bytes, final: bool = False) -> None:
        if self.encoding != "utf-8":
            text = self._decoder.decode(data, final)
            out = text.encode("utf-8")
            self._count_replacements(text.count("\ufffd"))
        else:
            data = self._pending + data
            cut = len(data) if final else _utf8_cut(data)
            part, self._pending = data[:cut], data[cut:]
            try:
                part.decode("utf-8")
                out = part
            except UnicodeDecodeError:
                text = part.decode("utf-8", errors="replace")
                self._count_replacements(text.count("\ufffd") - part.count(_REPLACEMENT))
                out = text.encode("utf-8")
        self._buf += out

    def _fix_start(self) -> None:
        """Drop a UTF-8 BOM and make the XML declaration say UTF-8 (once, on the first 1 kB)."""
        self._first = False
        if self._buf.startswith(codecs.BOM_UTF8):
            self._buf = self._buf[len(codecs.BOM_UTF8) :]
        if self.encoding != "utf-8":  # the declaration must match the bytes lxml now sees
            self._buf = _DECL_ENCODING.sub(rb"\1\2UTF-8\2", self._buf, count=1)

    def _count_replacements(self, n: int) -> None:
        if n > 0:
            self._stats.repair("invalid_utf8", n)

    def readinto(self, b) -> int:  # type: ignore[override]
        while (not self._buf or (self._first and len(self._buf) < 1024)) and not self._eof:
            data = self._raw.read(_CHUNK)
            self.offset += len(data)
            if not data:
                self._eof = True
                self._feed(b"", final=True)
            else:
                self._feed(data)
        if self._first:
            self._fix_start()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def _prolog_checked(raw: io.RawIOBase, name: str) -> ReplayStream:
    """The stream, after refusing documents with a DTD (the only way to declare entities) before lxml
    sees them; the bytes read to find the root element are replayed."""
    head = b""
    while True:
        data = raw.read(_CHUNK)
        head += data or b""
        match = _ROOT_START.search(head)
        prolog = head[: match.start()] if match else head
        if b"<!DOCTYPE" in prolog or b"<!ENTITY" in prolog:
            raise ReaderError(
                name, "prolog", "XML with a DTD/entity declarations refused (entity-bomb guard)"
            )
        if match or not data:
            break
        if len(head) > _PROLOG_LIMIT:
            raise ReaderError(name, "prolog", f"no root element in the first {_PROLOG_LIMIT} bytes")
    if not head.strip():
        raise ReaderError(name, "byte 0", "empty input (no XML document)")
    return ReplayStream(raw, head)  # type: ignore[arg-type]


def safe_iterparse(
    stream: BinaryIO, name: str, stats: ReadStats, events: tuple[str, ...] = ("end",)
) -> Iterator[tuple[str, etree._Element]]:
    """`lxml.etree.iterparse` over a decompressed stream, hardened; yields (event, element).

    The caller clears elements it has processed (`clear_element`) so memory stays bounded.
    """
    utf8 = Utf8Stream(stream, name, stats)
    checked = io.BufferedReader(_prolog_checked(utf8, name), buffer_size=_CHUNK)
    parser = etree.iterparse(
        checked,
        events=events,
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        recover=False,
    )
    try:
        yield from parser
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (exc.lineno, 0)
        raise ReaderError(
            name,
            f"line {line}, column {column} (decompressed byte ~{utf8.offset})",
            f"malformed XML: {exc.msg}",
        ) from exc


def clear_element(elem: etree._Element) -> None:
    """Free a processed element and the already-processed siblings before it (bounded memory)."""
    elem.clear(keep_tail=False)
    parent = elem.getparent()
    if parent is not None:
        while elem.getprevious() is not None:
            del parent[0]


def local_name(tag: object) -> str:
    """'{ns}page' -> 'page' (dumps change the export namespace version between releases)."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2]
