"""The per-document work of a source's build, as both passes over its input files run it.

cc_net mines a shard in two passes over the files (`mine.py`: `hashes` first, then `mine` with the hashes
of the group loaded): only hashes travel between them. The build does the same per source, with the
whole-source counting done by the pipeline:

1. `HashPass`: every document that survives reading and the length rule gives its line hashes (each
   counted once per document) and, for whole-text exact dedup, its text digest.
2. `Miner`: the same documents again, with the verdicts — whole-text duplicates dropped, duplicated lines
   removed (CCNet: everywhere; C4: except in the keeper page), then language, perplexity, wiki-ref and bad
   words (`filters.scoring`), and the MinHash band keys of what is left.

Everything here is a decision on plain documents; where the verdicts come from is the pipeline's job.
`cfg` is a source's settings (`manifests.schema.SourceConfig`: `ccnet`, `c4`, `minhash`, `exact_dedup`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

from filters.dedup import (
    DedupRule,
    DuplicatedLines,
    LineRecords,
    c4_page_key,
    document_line_hashes,
    line_records,
    remove_duplicate_lines,
    sha1_u64,
)
from filters.document import Document
from filters.quality import REASON_TOO_FEW_SENTENCES_AFTER_DEDUP, enough_sentences
from filters.scoring import DocumentScorer

DUPLICATE_TEXT = "duplicate_text"  # whole-text exact duplicate of a document with a smaller id


def dedup_rule(cfg: Any) -> DedupRule | None:
    """The line-dedup recipe of a source, or None when its chain does not dedup lines."""
    cc = cfg.ccnet
    if not cc.enabled or cc.line_dedup == "off":
        return None
    return DedupRule(cc.line_dedup)


def text_digest(text: str) -> bytes:
    """What whole-text exact dedup compares (SHA1 of the UTF-8 text)."""
    return hashlib.sha1(text.encode("utf-8", errors="replace")).digest()


def document_key(doc: Document, rule: DedupRule, exact_dedup: bool) -> int:
    """The key that tells documents apart when their line hashes are counted (see `filters.dedup`)."""
    if rule is DedupRule.TFDS:
        return c4_page_key(doc.meta.get("url"), doc.id)
    return sha1_u64(doc.text if exact_dedup else doc.id)  # with exact dedup, exact copies count once


def length_drop(doc: Document, cfg: Any) -> str | None:
    """cc_net drops documents shorter than `min_length` characters before anything else."""
    cc = cfg.ccnet
    return "too_short" if cc.enabled and len(doc.text) < cc.min_length else None


class HashPass:
    """Pass 1: what a chunk of documents contributes to the counts."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.rule = dedup_rule(cfg)

    def admit(self, doc: Document) -> bool:
        return length_drop(doc, self.cfg) is None

    def line_hashes(self, docs: list[Document]) -> list[list[int]]:
        """Every line hash of each document, in order (what pass 2 needs again: it is kept with the
        spilled documents rather than computed twice)."""
        if self.rule is None:
            return []
        return [document_line_hashes(d.text, self.rule) for d in docs]

    def line_records(self, docs: list[Document], per_doc: list[list[int]] | None = None) -> LineRecords:
        """Each document's distinct line hashes with its key (see `filters.dedup.LineRecords`); `per_doc`:
        the documents' `line_hashes`, when already computed."""
        if self.rule is None or not docs:
            return LineRecords.empty()
        if per_doc is None:
            per_doc = self.line_hashes(docs)
        keys = [document_key(d, self.rule, self.cfg.exact_dedup) for d in docs]
        return line_records(per_doc, keys)


@dataclass
class Mined:
    """What pass 2 makes of a chunk: survivors, their band keys, counts by reason."""

    kept: list[Document] = field(default_factory=list)
    band_keys: list[list[bytes]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    stats: Counter[str] = field(default_factory=Counter)


class Miner:
    """Pass 2 for one source: verdicts applied, documents scored, band keys computed."""

    def __init__(self, cfg: Any, scorer: DocumentScorer | None = None, hasher: Any = None) -> None:
        self.cfg = cfg
        self.rule = dedup_rule(cfg)
        self.scorer = scorer
        self.hasher = hasher  # filters.minhash.MinHasher, when near-dedup is on
        if hasher is not None:
            from filters.minhash import lsh_params

            self.bands, self.rows = lsh_params(cfg.minhash.threshold, cfg.minhash.num_perm)

    def mine(
        self,
        docs: list[Document],
        exact_drops: Container[str],
        duplicated: Sequence[DuplicatedLines],
        line_hashes: Sequence[list[int]] | None = None,
    ) -> Mined:
        """`exact_drops`: ids of whole-text duplicates; `duplicated`: the duplicated-line sets known for
        these documents (e.g. the broadcast one and the file's own verdicts); `line_hashes`: each
        document's `HashPass.line_hashes`, when pass 1 kept them."""
        out = Mined()
        survivors: list[Document] = []
        if line_hashes is not None and len(line_hashes) != len(docs):
            raise ValueError(f"got line hashes for {len(line_hashes)} of {len(docs)} documents")
        for i, doc in enumerate(docs):
            reason = length_drop(doc, self.cfg)
            if reason is None and doc.id in exact_drops:
                reason = DUPLICATE_TEXT
            if reason is None and self.rule is not None:
                known = line_hashes[i] if line_hashes is not None else None
                doc, reason = self._dedup_lines(doc, duplicated, out.stats, known)
            if reason:
                out.dropped[reason] += 1
            else:
                survivors.append(doc)
        if self.scorer is not None and survivors:
            scored = self.scorer.score([d.text for d in survivors])
            out.stats.update(self.scorer.stats)
            self.scorer.stats.clear()
            kept = []
            for doc, (meta, reason) in zip(survivors, scored, strict=True):
                if reason:
                    out.dropped[reason] += 1
                    continue
                kept.append(Document(doc.id, doc.source, doc.text, {**doc.meta, **meta}))
            survivors = kept
        out.kept = survivors
        if self.hasher is not None and survivors:
            from filters.minhash import band_digests

            sigs = self.hasher.signatures([d.text for d in survivors])
            out.band_keys = band_digests(sigs, self.bands, self.rows)
        return out

    def _dedup_lines(
        self,
        doc: Document,
        duplicated: Sequence[DuplicatedLines],
        stats: Counter[str],
        hashes: list[int] | None = None,
    ) -> tuple[Document, str | None]:
        import numpy as np

        assert self.rule is not None
        if hashes is None:
            hashes = document_line_hashes(doc.text, self.rule)
        own = c4_page_key(doc.meta.get("url"), doc.id) if self.rule is DedupRule.TFDS else None
        arr = np.asarray(hashes, dtype=np.uint64)
        remove: set[int] = set()
        for part in duplicated:
            remove |= part.to_remove(arr, own)
        result = remove_duplicate_lines(doc.text, remove, hashes)
        stats["lines"] += len(hashes)
        stats["lines_removed"] += result.lines_removed
        stats["lines_removed_in_document"] += result.local_duplicates
        stats["chars_removed"] += result.chars_removed
        if not result.text.strip():
            return doc, "line_dedup_empty"
        if self.rule is DedupRule.TFDS and not enough_sentences(result.text):
            return doc, REASON_TOO_FEW_SENTENCES_AFTER_DEDUP
        meta = {**doc.meta, "original_nlines": len(hashes), "original_length": len(doc.text)}
        meta.update(nlines=result.lines_kept, length=len(result.text))
        return Document(doc.id, doc.source, result.text, meta), None
