"""The CCNet chain as Beam stages (SPEC §3): length filter → global line dedup → LID → perplexity → wiki-ref.

Text logic is in `filters/`; this module decides where each step runs and how its results meet.

Batches: documents are grouped once (`batch_docs`, `batch_size`) right after reading, and every step
of the chain processes a list of documents; the batches are split again only at the end. Per-element
overhead (and the encoding of the one PCollection that must be materialised, between the two passes of
line dedup) is paid per batch instead of per document.

Line dedup across the whole source, with hot keys impossible by construction: each batch hashes its
lines once, pre-counts them (`np.unique`), and emits one `(shard, (hashes, counts))` element per hash
shard (`hash mod dedup_shards`). A `CombinePerKey` (lifted: partial sums on every worker) merges them
per shard with numpy; a boilerplate line present in 100k documents arrives at its shard as one count
per batch, and the shards are uniform because the keys are hash residues, not lines. The hashes seen
≥ 2 times (one array per shard) are broadcast to every worker as a list side input and merged there
into ONE sorted int64 array (8 bytes per duplicated line hash); each batch looks its hashes up with one
`searchsorted`. Documents are never grouped by line. Memory bounds: a shard's accumulator, 9 bytes ×
its distinct hashes (raise `dedup_shards` for very large sources), and the side input (100M duplicated
lines → 800 MB per worker, twice while it is being merged).

Encoding: the chain materialises one PCollection (the hashed batches, between the two passes of line
dedup). `HashedBatch` and `DocBatch` pickle column-wise (lists of ids, texts, metas; one flat hash
array), so a batch costs a few C-level pickle calls, not one `__reduce__` per document and array.

Scoring (LID, perplexity, wiki-ref) runs on the batches in one DoFn whose models are loaded once per
worker in `setup`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import apache_beam as beam
import numpy as np

from filters.dedup import document_line_hashes, remove_duplicate_lines
from filters.document import Document
from manifests import storage
from manifests.lm_index import LMIndex
from manifests.schema import CCNetSettings
from pipeline.common import (
    COUNTS,
    CountingDoFn,
    DocBatch,
    batch_docs,
    doc_columns,
    docs_from_columns,
    estimate_docs,
)

NO_HASHES = np.empty(0, dtype=np.int64)


class LengthFilterFn(CountingDoFn):
    """cc_net drops documents shorter than `min_length` characters on read (a batch in, a batch out)."""

    def __init__(self, source: str, min_length: int) -> None:
        super().__init__(source)
        self.min_length = min_length

    def process(self, batch: list[Document]) -> Iterator[Any]:
        kept = [d for d in batch if len(d.text) >= self.min_length]
        self.drop("too_short", len(batch) - len(kept))
        if kept:
            yield DocBatch(kept)


class HashedBatch:
    """A batch of documents with the hashes of their normalised lines, computed once for both passes.

    The hashes are ONE flat int64 array (document after document) plus the number of lines of each
    document: the batch's lookups are single numpy calls, and the batch pickles as a few plain lists and
    two arrays (this is the one PCollection the chain materialises, between the two passes of dedup).
    """

    __slots__ = ("docs", "hashes", "lines")

    def __init__(self, docs: list[Document], hashes: np.ndarray, lines: np.ndarray) -> None:
        if int(lines.sum()) != len(hashes) or len(lines) != len(docs):
            raise ValueError(f"{len(docs)} documents, {len(lines)} line counts, {len(hashes)} hashes")
        self.docs = docs
        self.hashes = hashes
        self.lines = lines

    def __len__(self) -> int:
        return len(self.docs)


class HashedBatchCoder(beam.coders.Coder):
    """Column-wise pickling of a `HashedBatch` (not deterministic: never a key)."""

    def encode(self, value: HashedBatch) -> bytes:
        return pickle.dumps(
            (doc_columns(value.docs), value.hashes, value.lines), protocol=pickle.HIGHEST_PROTOCOL
        )

    def decode(self, encoded: bytes) -> HashedBatch:
        columns, hashes, lines = pickle.loads(encoded)
        return HashedBatch(docs_from_columns(columns), hashes, lines)

    def estimate_size(self, value: HashedBatch) -> int:
        return 16 + estimate_docs(value.docs) + value.hashes.nbytes + value.lines.nbytes

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> type:
        return HashedBatch


beam.coders.registry.register_coder(HashedBatch, HashedBatchCoder)


def hash_batch(batch: list[Document]) -> HashedBatch:
    """Every document of a batch with its normalised-line hashes (computed once, used by both passes)."""
    docs = list(batch)
    per_doc = [document_line_hashes(d.text) for d in docs]
    lines = np.fromiter(map(len, per_doc), dtype=np.int64, count=len(per_doc))
    flat = np.fromiter(chain.from_iterable(per_doc), dtype=np.uint64, count=int(lines.sum()))
    return HashedBatch(docs, flat.view(np.int64), lines)


def _merge_counts(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sum counts per hash over several (hashes, counts) pairs; counts saturate at 2 (all dedup needs)."""
    if len(parts) == 1:
        return parts[0]
    hashes = np.concatenate([h for h, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    uniq, inverse = np.unique(hashes, return_inverse=True)
    summed = np.bincount(inverse, weights=counts, minlength=len(uniq))
    return uniq, np.minimum(summed, 2).astype(np.int8)


def shard_counts(batch: HashedBatch, shards: int) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """`(shard, (hashes, counts))` for a batch: its line hashes pre-counted, split by `hash mod shards`."""
    if not len(batch.hashes):
        return
    uniq, counts = np.unique(batch.hashes, return_counts=True)
    counts = np.minimum(counts, 2).astype(np.int8)
    shard = np.remainder(uniq, shards)
    order = np.argsort(shard, kind="stable")
    uniq, counts, shard = uniq[order], counts[order], shard[order]
    keys, starts = np.unique(shard, return_index=True)
    ends = [*starts[1:].tolist(), len(uniq)]
    for key, lo, hi in zip(keys.tolist(), starts.tolist(), ends, strict=True):
        yield key, (uniq[lo:hi], counts[lo:hi])


class ShardCountsFn(beam.CombineFn):
    """Per shard: hash → occurrences (saturating at 2); outputs the shard's hashes seen ≥ 2 times."""

    def create_accumulator(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return []

    def add_input(self, acc: list, value: tuple[np.ndarray, np.ndarray]) -> list:
        acc.append(value)
        if len(acc) >= 64:
            acc = [_merge_counts(acc)]
        return acc

    def merge_accumulators(self, accs: Iterable[list]) -> list:
        parts = [p for acc in accs for p in acc]
        return [_merge_counts(parts)] if parts else []

    def compact(self, acc: list) -> list:
        return [_merge_counts(acc)] if len(acc) > 1 else acc

    def extract_output(self, acc: list) -> np.ndarray:
        if not acc:
            return np.empty(0, dtype=np.int64)
        hashes, counts = _merge_counts(acc)
        return hashes[counts >= 2]


class RemoveDuplicateLinesFn(CountingDoFn):
    """Removes every line whose hash is in the duplicated set; drops documents left empty.

    The side input is the shards' duplicated hashes, one array per shard (disjoint sets); they are merged
    into one sorted array once per side-input value (per bundle), not per batch.
    """

    def setup(self) -> None:
        self._parts: list[np.ndarray] | None = None
        self._sorted = NO_HASHES

    def sorted_duplicates(self, parts: list[np.ndarray]) -> np.ndarray:
        if parts is not self._parts:
            self._sorted = np.sort(np.concatenate(parts)) if parts else NO_HASHES
            self._parts = parts
        return self._sorted

    def process(self, batch: HashedBatch, shard_duplicates: list[np.ndarray]) -> Iterator[Any]:
        if not len(batch):
            return
        duplicated = self.sorted_duplicates(shard_duplicates)
        arr = batch.hashes
        dup: set[int] = set()  # this batch's duplicated hashes: one searchsorted for the whole batch
        if len(duplicated) and len(arr):
            idx = np.minimum(np.searchsorted(duplicated, arr), len(duplicated) - 1)
            hits = duplicated[idx] == arr
            if hits.any():
                dup = set(arr[hits].tolist())
        flat = arr.tolist()
        out: list[Document] = []
        pos = 0
        lines_removed = chars_removed = 0
        for doc, n in zip(batch.docs, batch.lines.tolist(), strict=True):
            result = remove_duplicate_lines(doc.text, dup, flat[pos : pos + n])
            pos += n
            lines_removed += result.lines_removed
            chars_removed += result.chars_removed
            if not result.text.strip():
                self.drop("line_dedup_empty")
                continue
            meta = {**doc.meta, "original_nlines": n, "original_length": len(doc.text)}
            meta.update(nlines=result.lines_kept, length=len(result.text))
            # A new Document: Beam may hand the same input object to several consumers.
            out.append(Document(doc.id, doc.source, result.text, meta))
        self.count("stat.lines_removed", lines_removed)
        self.count("stat.chars_removed", chars_removed)
        if out:
            yield DocBatch(out)


class LineDedup(beam.PTransform):
    """Global line dedup over one source (SPEC §3): a line hash seen ≥ 2 times is removed everywhere.

    Input and main output: batches (lists) of documents.
    """

    def __init__(self, source: str, shards: int = 256) -> None:
        super().__init__()
        self.source = source
        self.shards = shards

    def expand(self, batches: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        shards = self.shards
        hashed = batches | "HashLines" >> beam.Map(hash_batch).with_output_types(HashedBatch)
        duplicated = (
            hashed
            | "ShardCounts" >> beam.FlatMap(shard_counts, shards)
            | "CountLines" >> beam.CombinePerKey(ShardCountsFn())
            | "Duplicated" >> beam.Values()
        )
        # One array per shard as a list side input, merged by each worker: a global combine into one
        # array would add a stage (and its start-up) to every run for no less data on the wire.
        return hashed | "RemoveLines" >> beam.ParDo(
            RemoveDuplicateLinesFn(self.source), shard_duplicates=beam.pvalue.AsList(duplicated)
        ).with_output_types(DocBatch).with_outputs(COUNTS, main="docs")


class ScoreFn(CountingDoFn):
    """Language ID, perplexity bucket and wiki-ref probability for a batch; models loaded once in setup."""

    def __init__(self, source: str, settings: CCNetSettings, lm_dir: str | None) -> None:
        super().__init__(source)
        self.settings = settings
        self.lm_dir = lm_dir

    def setup(self) -> None:
        from filters.langid import LanguageIdentifier

        s = self.settings
        self._lid = LanguageIdentifier(storage.local_copy(s.langid_model) if s.langid_model else None)
        self._index = LMIndex.read_from(self.lm_dir) if self.lm_dir and (s.perplexity or s.wikiref) else None
        self._scorers: dict[str, Any] = {}
        self._wikiref = None
        if s.wikiref:
            from filters.wikiref import WikiRefClassifier

            model = self._index.wikiref.model
            self._wikiref = WikiRefClassifier.load(storage.local_copy(storage.join(self.lm_dir, model)))

    def _scorer(self, lang: str) -> tuple[Any, Any] | None:
        if lang not in self._scorers:
            entry = self._index.languages.get(lang) if self._index else None
            if entry is None:
                self._scorers[lang] = None
            else:
                from filters.perplexity import BucketCutoffs, PerplexityScorer

                scorer = PerplexityScorer(
                    storage.local_copy(storage.join(self.lm_dir, entry.sp_model)),
                    storage.local_copy(storage.join(self.lm_dir, entry.kenlm_model)),
                )
                self._scorers[lang] = (scorer, BucketCutoffs(entry.p30, entry.p60))
        return self._scorers[lang]

    def process(self, batch: list[Document]) -> Iterator[Any]:
        from filters.langid import passes_threshold

        s = self.settings
        kept: list[Document] = []
        batch = [Document(d.id, d.source, d.text, dict(d.meta)) for d in batch]
        for doc, (lang, score) in zip(batch, self._lid.predict_batch([d.text for d in batch]), strict=True):
            doc.meta["lang"] = lang
            doc.meta["lang_score"] = score
            reason = passes_threshold(lang, score, s.lang_threshold, s.languages or None)
            if reason:
                self.drop(reason)
            else:
                kept.append(doc)
        if s.perplexity:
            kept = self._perplexity(kept)
        if self._wikiref is not None and kept:
            survivors = []
            probs = self._wikiref.predict_proba_batch([d.text for d in kept])
            for doc, prob in zip(kept, probs, strict=True):
                doc.meta["wikiref_prob"] = round(float(prob), 4)
                if prob < s.wikiref_threshold:
                    self.drop("wikiref")
                else:
                    survivors.append(doc)
            kept = survivors
        if kept:
            yield DocBatch(kept)

    def _perplexity(self, docs: list[Document]) -> list[Document]:
        by_lang: dict[str, list[Document]] = {}
        for doc in docs:
            by_lang.setdefault(doc.meta["lang"], []).append(doc)
        keep = set(self.settings.keep_buckets)
        out: list[Document] = []
        for lang, group in by_lang.items():
            model = self._scorer(lang)
            if model is None:
                if self.settings.missing_lm == "drop":
                    self.drop("no_lm", len(group))
                else:
                    self.count("stat.no_lm", len(group))
                    out.extend(group)
                continue
            scorer, cutoffs = model
            for doc, pp in zip(group, scorer.perplexity_batch([d.text for d in group]), strict=True):
                bucket = cutoffs.bucket(pp)
                doc.meta["perplexity"] = round(float(pp), 1)
                doc.meta["bucket"] = bucket
                if bucket in keep:
                    out.append(doc)
                else:
                    self.drop(f"bucket_{bucket}")
        return out


class CCNet(beam.PTransform):
    """The whole chain for one source; outputs: main (Documents) and a list of `counts` PCollections."""

    def __init__(self, source: str, settings: CCNetSettings, lm_dir: str | None) -> None:
        super().__init__()
        self.source = source
        self.settings = settings
        self.lm_dir = lm_dir

    def expand(self, docs: beam.PCollection) -> tuple[beam.PCollection, list[beam.PCollection]]:
        s = self.settings
        batches = docs | "Batch" >> batch_docs(s.batch_size)
        length = batches | "MinLength" >> beam.ParDo(
            LengthFilterFn(self.source, s.min_length)
        ).with_output_types(DocBatch).with_outputs(COUNTS, main="docs")
        batches, counts = length.docs, [length[COUNTS]]
        if s.line_dedup:
            dedup = batches | "LineDedup" >> LineDedup(self.source, s.dedup_shards)
            batches = dedup.docs
            counts.append(dedup[COUNTS])
        scored = batches | "Score" >> beam.ParDo(ScoreFn(self.source, s, self.lm_dir)).with_output_types(
            DocBatch
        ).with_outputs(COUNTS, main="docs")
        counts.append(scored[COUNTS])
        return scored.docs | "Unbatch" >> beam.FlatMap(lambda batch: batch), counts
