"""The CCNet chain as Beam stages (SPEC §3): length filter → global line dedup → LID → perplexity → wiki-ref.

Text logic is in `filters/`; this module decides where each step runs and how its results meet.

Line dedup across the whole source, with hot keys handled: every document emits `(line_hash, n)`; a
`CombinePerKey(sum)` with combiner lifting and `with_hot_key_fanout` counts them, so a boilerplate line
present in 100k documents reaches the final combine as a handful of partial sums, never as 100k
elements on one worker. Only the hashes seen ≥ 2 times are kept, as ONE sorted int64 numpy array (8
bytes per duplicated line hash) broadcast to every worker as a side input; each document looks its
own hashes up with `searchsorted`. Documents are never grouped by line, so no document travels to the
worker that owns a hot line. Memory bound: the side input, 8 bytes × distinct duplicated hashes
(100M duplicated lines → 800 MB per worker).

Scoring (LID, perplexity, wiki-ref) runs on batches (`BatchElements`) in one DoFn whose models are
loaded once per worker in `setup`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from filters.dedup import document_line_hashes, remove_duplicate_lines
from filters.document import Document
from manifests.schema import CCNetSettings
from pipeline.common import COUNTS, CountingDoFn, localize, read_bytes

LM_INDEX = "lm.json"


def signed64(values: Iterable[int]) -> np.ndarray:
    """uint64 line hashes as int64 (Beam's integer coder is signed 64-bit)."""
    return np.fromiter(values, dtype=np.uint64).view(np.int64)


class LengthFilterFn(CountingDoFn):
    """cc_net drops documents shorter than `min_length` characters on read."""

    def __init__(self, source: str, min_length: int) -> None:
        super().__init__(source)
        self.min_length = min_length

    def process(self, doc: Document) -> Iterator[Any]:
        if len(doc.text) < self.min_length:
            self.drop("too_short")
            return
        yield doc


def line_hash_counts(doc: Document) -> Iterator[tuple[int, int]]:
    """`(hash, occurrences)` for every distinct normalised line of a document."""
    counts = Counter(signed64(document_line_hashes(doc.text)).tolist())
    yield from counts.items()


class SortedHashesFn(beam.CombineFn):
    """Gathers the duplicated hashes into one sorted, unique int64 array (the side input)."""

    def create_accumulator(self) -> list[np.ndarray]:
        return []

    def add_input(self, acc: list[np.ndarray], value: int) -> list[np.ndarray]:
        acc.append(np.array([value], dtype=np.int64))
        if len(acc) > 4096:
            acc = [np.unique(np.concatenate(acc))]
        return acc

    def merge_accumulators(self, accs: Iterable[list[np.ndarray]]) -> list[np.ndarray]:
        parts = [a for acc in accs for a in acc]
        return [np.unique(np.concatenate(parts))] if parts else []

    def compact(self, acc: list[np.ndarray]) -> list[np.ndarray]:
        return [np.unique(np.concatenate(acc))] if acc else []

    def extract_output(self, acc: list[np.ndarray]) -> np.ndarray:
        return np.unique(np.concatenate(acc)) if acc else np.empty(0, dtype=np.int64)


class RemoveDuplicateLinesFn(CountingDoFn):
    """Removes every line whose hash is in the duplicated set; drops documents left empty."""

    def process(self, doc: Document, duplicated: np.ndarray) -> Iterator[Any]:
        hashes = document_line_hashes(doc.text)
        dup: set[int] = set()
        if len(duplicated):
            arr = signed64(hashes)
            idx = np.minimum(np.searchsorted(duplicated, arr), len(duplicated) - 1)
            hit = duplicated[idx] == arr
            dup = {h for h, found in zip(hashes, hit.tolist(), strict=True) if found}
        result = remove_duplicate_lines(doc.text, dup, hashes)
        self.count("stat.lines_removed", result.lines_removed)
        self.count("stat.chars_removed", result.chars_removed)
        if not result.text.strip():
            self.drop("line_dedup_empty")
            return
        meta = {**doc.meta, "original_nlines": len(hashes), "original_length": len(doc.text)}
        meta.update(nlines=result.lines_kept, length=len(result.text))
        # A new Document: Beam may hand the same input object to several consumers.
        yield Document(doc.id, doc.source, result.text, meta)


class LineDedup(beam.PTransform):
    """Global line dedup over one source (SPEC §3): a line hash seen ≥ 2 times is removed everywhere."""

    def __init__(self, source: str, hot_key_fanout: int = 16) -> None:
        super().__init__()
        self.source = source
        self.fanout = hot_key_fanout

    def expand(self, docs: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        duplicated = (
            docs
            | "LineHashes" >> beam.FlatMap(line_hash_counts)
            | "CountLines" >> beam.CombinePerKey(sum).with_hot_key_fanout(self.fanout)
            | "SeenTwice" >> beam.Filter(lambda kv: kv[1] >= 2)
            | "Hashes" >> beam.Keys()
            | "SortedSet" >> beam.CombineGlobally(SortedHashesFn())
        )
        return docs | "RemoveLines" >> beam.ParDo(
            RemoveDuplicateLinesFn(self.source), duplicated=beam.pvalue.AsSingleton(duplicated)
        ).with_outputs(COUNTS, main="docs")


def read_lm_index(lm_dir: str) -> dict[str, Any]:
    """The index `corral lm` writes: per-language model files and cut-offs, the wiki-ref model."""
    return json.loads(read_bytes(os.path.join(lm_dir, LM_INDEX)).decode("utf-8"))


class ScoreFn(CountingDoFn):
    """Language ID, perplexity bucket and wiki-ref probability for a batch; models loaded once in setup."""

    def __init__(self, source: str, settings: CCNetSettings, lm_dir: str | None) -> None:
        super().__init__(source)
        self.settings = settings
        self.lm_dir = lm_dir

    def setup(self) -> None:
        from filters.langid import LanguageIdentifier

        s = self.settings
        self._lid = LanguageIdentifier(localize(s.langid_model) if s.langid_model else None)
        self._index = read_lm_index(self.lm_dir) if self.lm_dir and (s.perplexity or s.wikiref) else {}
        self._scorers: dict[str, Any] = {}
        self._wikiref = None
        if s.wikiref:
            from filters.wikiref import WikiRefClassifier

            model = self._index["wikiref"]["model"]
            self._wikiref = WikiRefClassifier.load(localize(os.path.join(self.lm_dir, model)))

    def _scorer(self, lang: str) -> tuple[Any, Any] | None:
        if lang not in self._scorers:
            entry = self._index.get("languages", {}).get(lang)
            if entry is None:
                self._scorers[lang] = None
            else:
                from filters.perplexity import BucketCutoffs, PerplexityScorer

                scorer = PerplexityScorer(
                    localize(os.path.join(self.lm_dir, entry["sp_model"])),
                    localize(os.path.join(self.lm_dir, entry["kenlm_model"])),
                )
                self._scorers[lang] = (scorer, BucketCutoffs(entry["p30"], entry["p60"]))
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
        if self._wikiref is not None:
            survivors = []
            for doc in kept:
                prob = float(self._wikiref.predict_proba(doc.text))
                doc.meta["wikiref_prob"] = round(prob, 4)
                if prob < s.wikiref_threshold:
                    self.drop("wikiref")
                else:
                    survivors.append(doc)
            kept = survivors
        yield from kept

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
        counts = []
        length = docs | "MinLength" >> beam.ParDo(LengthFilterFn(self.source, s.min_length)).with_outputs(
            COUNTS, main="docs"
        )
        docs, counts = length.docs, [length[COUNTS]]
        if s.line_dedup:
            dedup = docs | "LineDedup" >> LineDedup(self.source)
            docs = dedup.docs
            counts.append(dedup[COUNTS])
        scored = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=s.batch_size)
            | "Score" >> beam.ParDo(ScoreFn(self.source, s, self.lm_dir)).with_outputs(COUNTS, main="docs")
        )
        counts.append(scored[COUNTS])
        return scored.docs, counts
