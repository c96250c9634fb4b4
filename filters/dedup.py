"""CCNet line-level exact deduplication (SPEC §3): hash normalised lines, remove every line seen twice.

The counting of hashes across a scope (a shard group in cc_net; the whole source here) is the
pipeline's job; this module gives the per-line hash and the per-document rewrite.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass

from filters.normalize import normalize_for_dedup

_sha1 = hashlib.sha1


def line_hash(line: str) -> int:
    """SHA1 of the (already normalised) line's UTF-8, first 8 bytes as a little-endian uint64.

    Lone surrogates (possible in text decoded with surrogateescape) are replaced rather than crashing.
    """
    data = line.encode("utf-8", errors="replace")
    return int.from_bytes(_sha1(data).digest()[:8], "little")


def document_line_hashes(text: str) -> list[int]:
    """The hash of every line of a document, in order (normalised with `normalize_for_dedup` first)."""
    return [line_hash(normalize_for_dedup(line)) for line in text.split("\n")]


@dataclass(frozen=True, slots=True)
class DedupResult:
    """A document after line dedup, with what was kept and removed (for exact accounting)."""

    text: str
    lines_kept: int
    lines_removed: int
    chars_kept: int
    chars_removed: int


def remove_duplicate_lines(
    text: str, duplicated: Container[int], hashes: list[int] | None = None
) -> DedupResult:
    """Remove every line whose hash is in `duplicated` (seen ≥ 2 times in the scope), first occurrence included.

    `hashes` may pass the line hashes already computed by `document_line_hashes` to avoid hashing twice.
    Character counts include each line's newline separator, as cc_net counts `len(line) + 1`.
    """
    lines = text.split("\n")
    if hashes is None:
        hashes = [line_hash(normalize_for_dedup(line)) for line in lines]
    elif len(hashes) != len(lines):
        raise ValueError(f"got {len(hashes)} hashes for {len(lines)} lines")
    kept: list[str] = []
    chars_removed = 0
    for line, h in zip(lines, hashes, strict=True):
        if h in duplicated:
            chars_removed += len(line) + 1
        else:
            kept.append(line)
    new_text = "\n".join(kept)
    return DedupResult(
        text=new_text,
        lines_kept=len(kept),
        lines_removed=len(lines) - len(kept),
        chars_kept=len(new_text),
        chars_removed=chars_removed,
    )
