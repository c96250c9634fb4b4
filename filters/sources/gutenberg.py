"""Project Gutenberg books (`.txt`, `.txt.gz`, …): one book per file, PG header and licence footer removed.

Why: LLaMA's Books source is Gutenberg (+ Books3) with the PG boilerplate stripped (LLaMA §2.1); the
licence text is the same in every book and would otherwise be the most repeated passage in the corpus.

The body starts after the last start marker found before the end marker — the current
`*** START OF THE/THIS PROJECT GUTENBERG EBOOK … ***`, the older `***START OF THE PROJECT GUTENBERG…`
and the small-print variant `*END*THE SMALL PRINT! …` — and ends at the first end marker after it:
`*** END OF THE/THIS PROJECT GUTENBERG …`, `End of (the) Project Gutenberg('s) EBook of …`. A file
without markers is kept whole and counted as a repair (`gutenberg_no_start_marker` /
`gutenberg_no_end_marker`), so a plain-text book from elsewhere still reads. A BOM is removed, line
ends become `\\n`. Title, author, language (ISO 639-1 from the `Language:` header), release date and
the eBook number come from the header and go to `meta`.

A book is one document, so memory is one book; a file that decompresses to more than `MAX_BOOK_BYTES`
raises `ReaderError` instead of growing without bound. A truncated compressed file raises `ReaderError`
(file + byte offset) and yields nothing, since a cut book has no footer to find. An empty file, or one
with no text between the markers, is dropped with a counted reason. Ids are the file's basename (one
document per file). Near-duplicate books are removed later in the pipeline (MinHash 0.9), not here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from filters.document import Document
from filters.sources.base import ReaderError, ReadStats, basename, decode_utf8
from filters.sources.compression import open_decompressed

SOURCE = "books"
MAX_BOOK_BYTES = 64 << 20  # the largest PG texts are ~10 MB

_START = re.compile(
    r"^[ \t]*\*+[ \t]*START[ \t]+OF[ \t]+(?:THE[ \t]+|THIS[ \t]+)?PROJECT[ \t]+GUTENBERG[^\n]*$"
    r"|^[ \t]*\*END\*[ \t]*THE[ \t]+SMALL[ \t]+PRINT[^\n]*$",
    re.I | re.M,
)
_END = re.compile(
    r"^[ \t]*\*+[ \t]*END[ \t]+OF[ \t]+(?:THE[ \t]+|THIS[ \t]+)?PROJECT[ \t]+GUTENBERG[^\n]*$"
    r"|^[ \t]*End[ \t]+of[ \t]+(?:the[ \t]+)?Project[ \t]+Gutenberg[^\n]*$",
    re.I | re.M,
)
_FIELD = re.compile(
    r"^(Title|Author|Language|Release Date|Posting Date|Translator|Editor):[ \t]*(.*)$", re.I | re.M
)
_EBOOK = re.compile(r"\[E(?:Book|Text) #(\d+)\]", re.I)

# Language names as PG writes them → ISO 639-1 (639-3 where no two-letter code exists).
LANGUAGES = {
    "afrikaans": "af", "arabic": "ar", "bulgarian": "bg", "catalan": "ca", "chinese": "zh", "croatian": "hr",
    "czech": "cs", "danish": "da", "dutch": "nl", "english": "en", "esperanto": "eo", "estonian": "et",
    "finnish": "fi", "french": "fr", "galician": "gl", "german": "de", "greek": "el", "hebrew": "he",
    "hungarian": "hu", "icelandic": "is", "irish": "ga", "italian": "it", "japanese": "ja", "korean": "ko",
    "latin": "la", "latvian": "lv", "lithuanian": "lt", "norwegian": "no", "occitan": "oc", "polish": "pl",
    "portuguese": "pt", "romanian": "ro", "russian": "ru", "serbian": "sr", "slovak": "sk",
    "slovenian": "sl", "spanish": "es", "swedish": "sv", "tagalog": "tl", "turkish": "tr",
    "ukrainian": "uk", "welsh": "cy", "yiddish": "yi", "middle english": "enm", "old english": "ang",
}  # fmt: skip


def language_code(value: str | None) -> str | None:
    """ISO code for the first language of a PG `Language:` value ("English", "French and English")."""
    if not value:
        return None
    first = re.split(r",|;|\band\b", value.strip(), maxsplit=1)[0].strip().lower()
    if first in LANGUAGES:
        return LANGUAGES[first]
    return first if re.fullmatch(r"[a-z]{2,3}", first) else None


def parse_header(header: str) -> dict[str, Any]:
    """Title, author, language, release date and eBook number from a PG header (continuation lines joined)."""
    meta: dict[str, Any] = {}
    lines = header.split("\n")
    for i, line in enumerate(lines):
        m = _FIELD.match(line)
        if not m:
            continue
        key = m.group(1).lower().replace(" ", "_")
        if key in meta:
            continue
        value = m.group(2).strip()
        for cont in lines[i + 1 :]:  # indented continuation lines (long titles, several authors)
            if cont.startswith((" ", "\t")) and cont.strip() and not _FIELD.match(cont.strip()):
                value += " " + cont.strip()
            else:
                break
        meta[key] = _EBOOK.sub("", value).strip()
    m = _EBOOK.search(header)
    if m:
        meta["ebook"] = int(m.group(1))
    if "language" in meta:
        meta["language_name"] = meta.pop("language")
        meta["lang"] = language_code(meta["language_name"])
    if "posting_date" in meta and "release_date" not in meta:
        meta["release_date"] = meta.pop("posting_date")
    if "release_date" in meta:
        released, _, updated = re.sub(r"(?i)most recently updated:", "\0", meta["release_date"]).partition(
            "\0"
        )
        meta["release_date"] = released.strip()
        if updated.strip():
            meta["updated"] = updated.strip()
    return meta


def split_book(text: str, stats: ReadStats) -> tuple[str, str]:
    """(header, body) of a PG text with `\\n` line ends; counts a repair when a marker is missing."""
    end = _END.search(text)
    limit = end.start() if end else len(text)
    starts = list(_START.finditer(text, 0, limit))
    if starts:
        header, body_start = text[: starts[-1].start()], starts[-1].end()
    else:
        stats.repair("gutenberg_no_start_marker")
        header, body_start = text[:4096], 0
    if end is not None and end.start() < body_start:  # the first end marker is part of the header
        end = _END.search(text, body_start)
    if end is None:
        stats.repair("gutenberg_no_end_marker")
    body = text[body_start : end.start() if end else len(text)]
    return header, body.strip("\n").rstrip()


def read_gutenberg(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[Document]:
    """One document per book file: the text between the PG markers, with header metadata in meta."""
    base = basename(name)
    data = open_decompressed(stream, name).read(MAX_BOOK_BYTES + 1)
    if len(data) > MAX_BOOK_BYTES:
        raise ReaderError(name, f"byte {MAX_BOOK_BYTES} (decompressed)", "book larger than MAX_BOOK_BYTES")
    if not data.strip():
        stats.drop("empty_file")
        return
    text = decode_utf8(data, stats).lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    header, body = split_book(text, stats)
    if not body.strip():
        stats.drop("empty_book")
        return
    meta = parse_header(header)
    meta["file"] = base
    stats.emitted += 1
    yield Document(id=base, source=SOURCE, text=body, meta=meta)
