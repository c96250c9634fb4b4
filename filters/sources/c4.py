"""C4 reader and recipe: `c4/en` JSON lines (`text`, `url`, `timestamp`), or any JSONL with a `text` field.

Why: LLaMA's C4 source is CCNet-style dedup + LID with the C4 heuristics; this module reads the records,
and `clean_c4` applies the heuristics (`filters.quality.c4_filter`) where the source's settings ask.

Streaming: the file is decompressed by magic bytes (`open_decompressed`) and read line by line, so
memory is one line whatever the file size. Ids are `"{basename}:{line_number}"` (1-based), stable across
runs. A line that is not JSON, not an object, or has no string `text` becomes a dead letter naming the
line; blank lines are not records and are skipped. Invalid UTF-8 (or lone surrogate escapes) is
replaced and counted as `invalid_utf8`. When a compressed file is truncated, the documents of every
complete line before the break are yielded, then the `ReaderError` (file + byte offset) propagates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

from filters.document import Document
from filters.sources.base import ReadStats, basename, decode_utf8
from filters.sources.compression import open_decompressed

SOURCE = "c4"
_SURROGATE = re.compile("[\ud800-\udfff]")


def fix_surrogates(text: str, stats: ReadStats) -> str:
    """JSON may escape lone surrogates (`\\ud800`) that cannot be written as UTF-8: replace and count."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        stats.repair("invalid_utf8")
        return _SURROGATE.sub("\ufffd", text)


def iter_json_lines(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line_number, object) for each JSON object line; bad lines become dead letters with their number."""
    for lineno, raw in enumerate(open_decompressed(stream, name), start=1):
        if not raw.strip():
            continue
        line = decode_utf8(raw, stats)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            stats.dead_letter(name, f"line {lineno}", "invalid_json", f"{exc}: {line[:200]}")
            continue
        if not isinstance(record, dict):
            stats.dead_letter(name, f"line {lineno}", "json_not_object", line[:200])
            continue
        yield lineno, record


def read_c4_json(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[Document]:
    """Documents from C4 / JSONL records; url and timestamp (and any `metadata` object) go to meta."""
    base = basename(name)
    for lineno, record in iter_json_lines(stream, name, stats):
        text = record.get("text")
        if not isinstance(text, str):
            stats.dead_letter(name, f"line {lineno}", "missing_text", json.dumps(record)[:200])
            continue
        text = fix_surrogates(text, stats)
        extra = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        meta: dict[str, Any] = {
            "url": record.get("url") or extra.get("url"),
            "timestamp": record.get("timestamp") or record.get("created") or extra.get("date_download"),
            "file": base,
            "line": lineno,
        }
        if "id" in record:
            meta["orig_id"] = record["id"]
        if extra:
            meta["orig_meta"] = extra
        stats.emitted += 1
        yield Document(id=f"{base}:{lineno}", source=SOURCE, text=text, meta=meta)


def clean_c4(doc: Document, stats: ReadStats) -> Document | None:
    """The C4 page rules (tfds `clean_page` + `is_valid_length`) as a read step; a dropped page is counted
    with its reason. On by default for `c4_json` sources and available to any (`[sources.X.c4] rules`)."""
    from filters.quality import c4_filter

    cleaned, reason = c4_filter(doc.text)
    if cleaned is None:
        stats.drop(reason or "c4_filter")
        return None
    return Document(id=doc.id, source=doc.source, text=cleaned, meta=doc.meta)
