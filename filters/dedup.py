"""Line-level exact deduplication: the line hashes and the per-document rewrite, for two recipes.

- **CCNet** (cc_net `dedup.py`): a line is normalised (`normalize_for_dedup`) and hashed (SHA1, first 8
  bytes little-endian). Each document counts a hash once (`HashesCollector` adds a document's hashes as a
  set); a hash found in two or more documents of the scope is a duplicate and every copy of it is removed,
  the first occurrence included (`DuplicatesRemover`). Inside one document only the first occurrence of a
  line survives (`finalize_doc`: "Remove duplicates inside doc").
- **C4** (tfds `c4_utils.remove_duplicate_text`): a line is `line.strip().lower()` hashed with MD5; of the
  pages holding a line, the one whose URL has the smallest MD5 keeps it and every other page loses it; later
  copies inside a page go too; the pages are then re-checked for three sentences (see `filters.quality`).

Counting across the scope is the pipeline's job; this module gives the hashes, the per-document sets that
are counted, and the rewrite of a document once its verdicts are known.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from filters.normalize import normalize_lines_for_dedup

_sha1 = hashlib.sha1
_md5 = hashlib.md5


class DedupRule(StrEnum):
    CCNET = "ccnet"
    TFDS = "tfds"


def sha1_u64(text: str) -> int:
    """SHA1 of the text's UTF-8, first 8 bytes as a little-endian uint64: cc_net's line-hash layout, and the
    stable hash of ids (splits, document keys). Lone surrogates are replaced rather than crashing."""
    return int.from_bytes(_sha1(text.encode("utf-8", errors="replace")).digest()[:8], "little")


def line_hash(line: str) -> int:
    """The hash of an (already normalised) line (cc_net `dedup.str_hash`)."""
    return sha1_u64(line)


def c4_line_hash(line: str) -> int:
    """tfds `_hash_text(line.strip().lower())`: MD5, first 8 bytes big-endian (so that integer order is
    the order of tfds' hex digests)."""
    data = line.strip().lower().encode("utf-8", errors="replace")
    return int.from_bytes(_md5(data).digest()[:8], "big")


def c4_page_key(url: str | None, doc_id: str) -> int:
    """The order in which tfds picks the page that keeps a shared line: MD5 of the page's URL (the
    smallest wins; `Top.PerKey(1, key=_hash_text, reverse=True)`). Pages without a URL use their id."""
    data = (url or doc_id).encode("utf-8", errors="replace")
    return int.from_bytes(_md5(data).digest()[:8], "big")


def document_line_hashes(text: str, rule: DedupRule = DedupRule.CCNET) -> list[int]:
    """The hash of every line of a document, in order."""
    if rule is DedupRule.TFDS:
        return [c4_line_hash(line) for line in text.split("\n")]
    return [sha1_u64(line) for line in normalize_lines_for_dedup(text)]


@dataclass(frozen=True, slots=True)
class DedupResult:
    """A document after line dedup, with what was kept and removed (for exact accounting)."""

    text: str
    lines_kept: int
    lines_removed: int  # lines whose hash was a duplicate of the scope
    local_duplicates: int  # later copies of a line inside this document
    chars_kept: int
    chars_removed: int


def remove_duplicate_lines(
    text: str, duplicated: Container[int], hashes: list[int] | None = None
) -> DedupResult:
    """Drop every line whose hash is in `duplicated`, and every later copy of a line inside the document.

    `duplicated` holds the hashes this document must lose: for CCNet the hashes found in ≥ 2 documents, for
    C4 those found in ≥ 2 pages whose keeper is another page. `hashes` may pass the hashes already computed
    by `document_line_hashes`. Character counts include each line's newline, as cc_net counts `len + 1`.
    """
    lines = text.split("\n")
    if hashes is None:
        hashes = document_line_hashes(text)
    elif len(hashes) != len(lines):
        raise ValueError(f"got {len(hashes)} hashes for {len(lines)} lines")
    kept: list[str] = []
    seen: set[int] = set()
    chars_removed = removed = local = 0
    for line, h in zip(lines, hashes, strict=True):
        if h in duplicated:
            removed += 1
        elif h in seen:
            local += 1
        else:
            seen.add(h)
            kept.append(line)
            continue
        chars_removed += len(line) + 1
    new_text = "\n".join(kept)
    return DedupResult(
        text=new_text,
        lines_kept=len(kept),
        lines_removed=removed,
        local_duplicates=local,
        chars_kept=len(new_text),
        chars_removed=chars_removed,
    )


# --- Counting across the scope -------------------------------------------------------------------------
#
# What travels from the documents to the hash shards is, per distinct line hash of a chunk of documents,
# the smallest "document key" holding it and whether more than one key holds it. Keys are what tells
# documents apart: for CCNet a hash of the document's text when whole-text exact dedup runs first (exact
# copies then count once, as they do when the copies are removed before line dedup) and of its id
# otherwise; for C4 the page key (`c4_page_key`), whose minimum is the page that keeps the line. Merging
# records is associative and commutative, so it runs as a lifted combine.

EMPTY_U64 = np.empty(0, dtype=np.uint64)


@dataclass(frozen=True, slots=True)
class LineRecords:
    """Distinct line hashes (sorted), the smallest document key per hash, and whether ≥ 2 keys hold it."""

    hashes: np.ndarray  # uint64, sorted, unique
    keys: np.ndarray  # uint64
    multi: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.hashes)

    @classmethod
    def empty(cls) -> LineRecords:
        return cls(EMPTY_U64, EMPTY_U64, np.empty(0, dtype=bool))

    def select(self, mask: np.ndarray) -> LineRecords:
        return LineRecords(self.hashes[mask], self.keys[mask], self.multi[mask])


def _reduce(hashes: np.ndarray, keys: np.ndarray, multi: np.ndarray) -> LineRecords:
    if not len(hashes):
        return LineRecords.empty()
    order = np.lexsort((keys, hashes))
    hashes, keys, multi = hashes[order], keys[order], multi[order]
    first = np.r_[True, hashes[1:] != hashes[:-1]]
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(hashes)] - 1
    distinct = keys[starts] != keys[ends]
    any_multi = np.logical_or.reduceat(multi, starts)
    return LineRecords(hashes[starts], keys[starts], distinct | any_multi)


def line_records(per_doc_hashes: list[list[int]], doc_keys: list[int]) -> LineRecords:
    """The records of a chunk of documents: each document counts each of its hashes once."""
    hashes = [np.unique(np.asarray(h, dtype=np.uint64)) for h in per_doc_hashes]
    lengths = np.fromiter(map(len, hashes), dtype=np.int64, count=len(hashes))
    flat = np.concatenate(hashes) if hashes else EMPTY_U64
    keys = np.repeat(np.asarray(doc_keys, dtype=np.uint64), lengths)
    return _reduce(flat, keys, np.zeros(len(flat), dtype=bool))


def merge_line_records(parts: list[LineRecords]) -> LineRecords:
    parts = [p for p in parts if len(p)]
    if not parts:
        return LineRecords.empty()
    if len(parts) == 1:
        return parts[0]
    return _reduce(
        np.concatenate([p.hashes for p in parts]),
        np.concatenate([p.keys for p in parts]),
        np.concatenate([p.multi for p in parts]),
    )


def shard_of(hashes: np.ndarray, shards: int) -> np.ndarray:
    return np.remainder(hashes, np.uint64(shards)).astype(np.int64)


def split_by_shard(records: LineRecords, shards: int) -> list[tuple[int, LineRecords]]:
    """`(shard, records)` per hash shard (`hash mod shards`) present in `records`."""
    if not len(records):
        return []
    shard = shard_of(records.hashes, shards)
    order = np.argsort(shard, kind="stable")
    sorted_shards = shard[order]
    keys, starts = np.unique(sorted_shards, return_index=True)
    ends = np.r_[starts[1:], len(order)]
    out = []
    for key, lo, hi in zip(keys.tolist(), starts.tolist(), ends.tolist(), strict=True):
        idx = order[lo:hi]  # stays sorted by hash: argsort is stable and the input was sorted
        out.append((key, LineRecords(records.hashes[idx], records.keys[idx], records.multi[idx])))
    return out


@dataclass(frozen=True, slots=True)
class DuplicatedLines:
    """The duplicated hashes a worker knows (sorted) and, per hash, the key of the document keeping it."""

    hashes: np.ndarray
    keepers: np.ndarray

    @classmethod
    def from_records(cls, records: LineRecords) -> DuplicatedLines:
        dup = records.select(records.multi)
        return cls(dup.hashes, dup.keys)

    @classmethod
    def union(cls, parts: list[DuplicatedLines]) -> DuplicatedLines:
        parts = [p for p in parts if len(p.hashes)]
        if not parts:
            return cls(EMPTY_U64, EMPTY_U64)
        if len(parts) == 1:
            return parts[0]
        hashes = np.concatenate([p.hashes for p in parts])
        keepers = np.concatenate([p.keepers for p in parts])
        order = np.argsort(hashes, kind="stable")
        return cls(hashes[order], keepers[order])

    def hits(self, hashes: np.ndarray) -> DuplicatedLines | None:
        """The duplicated hashes (with their keepers) among `hashes`, or None when there are none."""
        if not len(self.hashes) or not len(hashes):
            return None
        idx = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        hit = self.hashes[idx] == hashes
        if not hit.any():
            return None
        return DuplicatedLines(self.hashes[idx[hit]], self.keepers[idx[hit]])

    def to_remove(self, hashes: np.ndarray, own_key: int | None = None) -> set[int]:
        """The hashes among `hashes` that a document must lose: every duplicated one (CCNet), or those
        whose keeper is another document (C4, `own_key` given)."""
        if not len(self.hashes) or not len(hashes):
            return set()
        idx = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        hit = self.hashes[idx] == hashes
        if own_key is not None:
            hit &= self.keepers[idx] != np.uint64(own_key)
        return set(hashes[hit].tolist()) if hit.any() else set()
