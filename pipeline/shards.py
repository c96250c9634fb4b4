"""`corral shards` / `python -m pipeline.shards`: the corpus → tokenized Arrow shards of the token mixture.

Two Beam jobs, Beam wiring only (every decision is a function of `filters/mixture.py`):

1. **tokenize** (only for sources whose cache is stale): each Parquet row group of the corpus is one unit
   (spread over workers by a reshuffle) → `filters.encode.BatchEncoder` → one tokenized Arrow file per
   row group under `<shards>/tokenized/<source>/`, then `tokenized.json` (written last). The cache is
   reused while the corpus manifest's sha256 and the tokenizer's sha256 are unchanged; a new tokenizer
   re-tokenizes, so tokens of two tokenizers are never mixed (every tokenized file is stamped too).
2. **mix**: per-document statistics (id hash, tokens, validation split) → per-source totals → the plan
   (epochs, whole repeats) → a token histogram over the fractional sample's key bins → the boundary bin's
   documents gathered per source → the cut → every row (document, repeat) gets a shuffle key and goes to
   the shard owning its key range → each shard sorted by key and written with its lineage part →
   `manifest.json` last. Changing weights, `total_tokens` or the seed reruns only this job.

`--drop-ids FILE` (a takedown) rewrites only the shard files whose lineage holds one of the ids, their
lineage parts and the manifest; the ids are kept in `dropped_ids.txt`, so later mixes leave them out too.

Runner handling is the build job's (`pipeline/options.py`): FnApiRunner by default,
`--direct_num_workers N` for N local processes, any other Beam flag passed through.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import pipeline  # noqa: F401  (the package registers Beam's filesystems for gs:// paths)
from filters import mixture
from filters.encode import BatchEncoder
from manifests import storage
from manifests.corpus import CorpusManifest, is_complete
from manifests.corpus import manifest_sha256 as corpus_manifest_sha256
from manifests.schema import HARD_MAX_EPOCHS, Manifest, ManifestError, load_manifest
from manifests.shards import (
    DROPPED_IDS,
    LINEAGE,
    MANIFEST,
    TOKENIZED,
    TOKENIZED_INDEX,
    TRAIN,
    VALIDATION,
    ShardFile,
    ShardManifest,
    SourceMix,
    TokenizedFile,
    TokenizedSource,
    TokenizerRef,
    list_lengths,
    read_tokenized,
    shard_name,
    token_type,
    tokenized_name,
    write_lineage,
    write_shard,
    write_tokenized,
)
from manifests.tokenizer import TokenizerCard, model_path
from pipeline.options import is_dry_run, make_runner, pipeline_options

log = logging.getLogger("corral.shards")
TMP = "_tmp"
FORMAT = 1


class ShardsError(RuntimeError):
    """The shards job cannot run; the message names the file, key or source."""


# ------------------------------------------------------------------------------------ the job


@dataclass
class Job:
    """Everything the two Beam jobs need, resolved and checked in the launcher."""

    manifest: Manifest
    out: str
    names: list[str]  # sources, sorted: the dictionary order of the shards' `source` column
    weights: dict[str, float]
    corpus_dirs: dict[str, str]
    corpus_shas: dict[str, str]
    tokenizer_dir: str
    model: str
    tokenizer_sha: str
    vocab_size: int
    bos_id: int
    eos_id: int
    seed: int
    total_tokens: int
    validation_fraction: float
    max_epochs: float
    shard_tokens: int
    dropped_ids: set[str] = field(default_factory=set)

    def tokenized_dir(self, source: str) -> str:
        return storage.join(self.out, TOKENIZED, source)


def prepare(manifest: Manifest) -> Job:
    """Resolve and check the settings, the tokenizer and the corpus; refuse bad input by key."""
    s = manifest.shards
    if s.total_tokens is None:
        raise ManifestError(
            manifest.path,
            "shards.total_tokens",
            "required by `corral shards` (tokens of the training stream)",
        )
    tok_dir = manifest.resolve(s.tokenizer) if s.tokenizer else manifest.tokenizer_dir()
    try:
        card = TokenizerCard.read_from(tok_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise ShardsError(str(exc)) from None
    model = model_path(tok_dir)
    if not storage.exists(model):
        raise ShardsError(f"{model}: missing (the tokenizer card is there but not the model)")
    actual = storage.sha256_of(model)
    if actual != card.sha256:
        raise ShardsError(f"{model}: sha256 {actual} differs from {tok_dir}/card.json's {card.sha256}")
    names = sorted(manifest.sources)
    corpus_dirs, corpus_shas = {}, {}
    for name in names:
        folder = storage.join(manifest.output_dir(), name)
        if not is_complete(folder):
            raise ManifestError(
                manifest.path, f"sources.{name}", f"no built corpus at {folder}: run `corral build` first"
            )
        kept = CorpusManifest.read_from(folder).kept
        if kept == 0:
            raise ManifestError(
                manifest.path,
                f"sources.{name}.weight",
                f"weight {manifest.sources[name].weight:g} on a source with no documents ({folder} kept 0)",
            )
        corpus_dirs[name] = folder
        corpus_shas[name] = corpus_manifest_sha256(folder)
    out = manifest.shards_dir()
    return Job(
        manifest=manifest,
        out=out,
        names=names,
        weights={n: manifest.sources[n].weight for n in names},
        corpus_dirs=corpus_dirs,
        corpus_shas=corpus_shas,
        tokenizer_dir=tok_dir,
        model=model,
        tokenizer_sha=card.sha256,
        vocab_size=card.vocab_size,
        bos_id=card.bos_id,
        eos_id=card.eos_id,
        seed=manifest.seed if s.seed is None else s.seed,
        total_tokens=s.total_tokens,
        validation_fraction=s.validation_fraction,
        max_epochs=s.max_epochs,
        shard_tokens=s.shard_tokens,
        dropped_ids=read_dropped_ids(out),
    )


def read_ids_file(path: str) -> set[str]:
    """One document id per line; blank lines and `#` comments ignored."""
    try:
        text = storage.read_text(path)
    except FileNotFoundError:
        raise ShardsError(f"{path}: no such file of document ids") from None
    except UnicodeDecodeError as exc:
        raise ShardsError(f"{path}: not UTF-8 at byte {exc.start}") from None
    return {line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")}


def read_dropped_ids(out: str) -> set[str]:
    path = storage.join(out, DROPPED_IDS)
    return read_ids_file(path) if storage.exists(path) else set()


def ids_sha256(ids: set[str]) -> str:
    return hashlib.sha256("".join(i + "\n" for i in sorted(ids)).encode()).hexdigest()


# ------------------------------------------------------------------------------ step 1: tokenize


class RowGroupsFn(beam.DoFn):
    """A corpus part → one unit per Parquet row group (the tokenize step's grain)."""

    def process(self, part: tuple[str, int, str, str]) -> Iterator[tuple[str, int, str, str, int]]:
        source, index, path, name = part
        with storage.open_read(path) as f:
            groups = pq.ParquetFile(f).metadata.num_row_groups
        for rg in range(groups):
            yield source, index, path, name, rg


class TokenizeFn(beam.DoFn):
    """One row group → one tokenized Arrow file; yields its `TokenizedFile` entry."""

    def __init__(self, model: str, tokenizer_sha: str, vocab_size: int, out_dirs: dict[str, str]) -> None:
        self.model = model
        self.tokenizer_sha = tokenizer_sha
        self.vocab_size = vocab_size
        self.out_dirs = out_dirs
        self.encoder: BatchEncoder | None = None

    def setup(self) -> None:
        dtype = np.uint16 if token_type(self.vocab_size) == pa.uint16() else np.uint32
        self.encoder = BatchEncoder(storage.local_copy(self.model), dtype=dtype)

    def process(self, unit: tuple[str, int, str, str, int]) -> Iterator[tuple[str, dict[str, Any]]]:
        assert self.encoder is not None
        source, index, path, name, rg = unit
        with storage.open_read(path) as f:
            table = pq.ParquetFile(f).read_row_group(rg, columns=["id", "text"])
        ids = table.column("id").to_pylist()
        texts = [t or "" for t in table.column("text").to_pylist()]
        del table
        enc = self.encoder.encode(texts)
        kept_ids = [i for i, k in zip(ids, enc.kept, strict=True) if k]
        file = tokenized_name(name, rg)
        sha = write_tokenized(
            storage.join(self.out_dirs[source], file),
            kept_ids,
            enc.values,
            enc.offsets,
            self.vocab_size,
            self.tokenizer_sha,
            source,
        )
        lengths = enc.lengths
        beam.metrics.Metrics.counter("corral.shards", f"{source}.tokens").inc(int(enc.offsets[-1]))
        yield (
            source,
            {
                "order": (index, rg),
                "file": file,
                "sha256": sha,
                "rows": len(kept_ids),
                "tokens": int(enc.offsets[-1]),
                "skipped_empty": int(len(ids) - len(kept_ids)),
                "max_document_tokens": int(lengths.max()) if len(lengths) else 0,
                "corpus_part": name,
                "row_group": rg,
            },
        )


class FinalizeTokenizedFn(beam.DoFn):
    """All of a source's tokenized files exist → `tokenized.json` (the cache's completeness marker)."""

    def __init__(self, job: Job) -> None:
        self.out_dirs = {n: job.tokenized_dir(n) for n in job.names}
        self.corpus_shas = job.corpus_shas
        self.tokenizer_sha = job.tokenizer_sha
        self.vocab_size = job.vocab_size

    def process(self, item: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[str]:
        source, entries = item
        ordered = sorted(entries, key=lambda e: tuple(e["order"]))
        files = [TokenizedFile(**{k: v for k, v in e.items() if k != "order"}) for e in ordered]
        TokenizedSource(
            source=source,
            corpus_manifest_sha256=self.corpus_shas[source],
            tokenizer_sha256=self.tokenizer_sha,
            vocab_size=self.vocab_size,
            token_type=str(token_type(self.vocab_size)),
            documents=sum(f.rows for f in files),
            tokens=sum(f.tokens for f in files),
            skipped_empty=sum(f.skipped_empty for f in files),
            max_document_tokens=max((f.max_document_tokens for f in files), default=0),
            files=files,
        ).write(self.out_dirs[source])
        yield source


def cached_sources(job: Job, force: bool) -> tuple[dict[str, TokenizedSource], list[str]]:
    """Sources whose tokenized cache is valid, and those to tokenize (again)."""
    cached, stale = {}, []
    for name in job.names:
        folder = job.tokenized_dir(name)
        if not force and storage.exists(storage.join(folder, TOKENIZED_INDEX)):
            try:
                index = TokenizedSource.read_from(folder)
            except ValueError:
                index = None
            if index is not None and index.matches(job.corpus_shas[name], job.tokenizer_sha):
                cached[name] = index
                continue
            why = "the corpus or the tokenizer changed" if index is not None else "unreadable index"
            print(f"{name}: tokenized cache is stale ({why}); re-tokenizing")
        stale.append(name)
    return cached, stale


def run_tokenize(job: Job, sources: list[str], beam_args: list[str]) -> bool:
    """Tokenize `sources` into their cache folders; False when `--dry_run` only translated the job (the
    caches are then left as they were)."""
    opts = pipeline_options(beam_args)
    dry = is_dry_run(opts)
    parts = []
    for name in sources:
        folder = job.tokenized_dir(name)
        if not dry:
            storage.delete(storage.join(folder, TOKENIZED_INDEX))  # never 'complete' while half rewritten
            storage.delete(folder)
        corpus = CorpusManifest.read_from(job.corpus_dirs[name])
        for i, part in enumerate(corpus.parts):
            parts.append((name, i, storage.join(job.corpus_dirs[name], part.file), part.file))
    out_dirs = {n: job.tokenized_dir(n) for n in job.names}
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        _ = (
            p
            | "Parts" >> beam.Create(parts, reshuffle=False)
            | "RowGroups" >> beam.ParDo(RowGroupsFn())
            | "Spread" >> beam.Reshuffle()
            | "Tokenize" >> beam.ParDo(TokenizeFn(job.model, job.tokenizer_sha, job.vocab_size, out_dirs))
            | "BySource" >> beam.GroupByKey()
            | "FinalizeTokenized" >> beam.ParDo(FinalizeTokenizedFn(job))
        )
    return not dry


# ----------------------------------------------------------------------------------- step 2: mix


@dataclass
class DocStats:
    """Per-document facts of one tokenized file (the mix step's small working set)."""

    source: int
    doc_ids: list[str]
    hashes: np.ndarray  # uint64 id hashes
    lengths: np.ndarray  # int64 tokens, EOS included
    validation: np.ndarray  # bool
    dropped: np.ndarray  # bool: removed by a takedown

    @property
    def train(self) -> np.ndarray:
        return ~self.validation & ~self.dropped


def _doc_facts(
    table: pa.Table, fraction: float, dropped_ids: set[str]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    doc_ids = table.column("doc_id").to_pylist()
    hashes = mixture.doc_hashes(doc_ids)
    lengths = list_lengths(table.column("tokens"))
    validation = mixture.validation_mask(hashes, fraction)
    dropped = np.fromiter((d in dropped_ids for d in doc_ids), dtype=bool, count=len(doc_ids))
    return doc_ids, hashes, lengths, validation & ~dropped, dropped


class DocStatsFn(beam.DoFn):
    def __init__(self, tokenizer_sha: str, fraction: float, dropped_ids: set[str]) -> None:
        self.tokenizer_sha = tokenizer_sha
        self.fraction = fraction
        self.dropped_ids = dropped_ids

    def process(self, ref: tuple[int, str]) -> Iterator[DocStats]:
        source, path = ref
        table = read_tokenized(path, self.tokenizer_sha).select(["doc_id", "tokens"])
        yield DocStats(source, *_doc_facts(table, self.fraction, self.dropped_ids))


_TOTAL_KEYS = ("documents", "tokens", "validation_documents", "validation_tokens", "dropped", "max_tokens")


def source_totals(stats: DocStats) -> tuple[int, dict[str, int]]:
    train = stats.train
    return stats.source, {
        "documents": int(train.sum()),
        "tokens": int(stats.lengths[train].sum()),
        "validation_documents": int(stats.validation.sum()),
        "validation_tokens": int(stats.lengths[stats.validation].sum()),
        "dropped": int(stats.dropped.sum()),
        "max_tokens": int(stats.lengths[train].max()) if train.any() else 0,
    }


class MergeTotalsFn(beam.CombineFn):
    def create_accumulator(self) -> dict[str, int]:
        return dict.fromkeys(_TOTAL_KEYS, 0)

    def add_input(self, acc: dict[str, int], value: dict[str, int]) -> dict[str, int]:
        return self.merge_accumulators([acc, value])

    def merge_accumulators(self, accs: Iterable[dict[str, int]]) -> dict[str, int]:
        out = dict.fromkeys(_TOTAL_KEYS, 0)
        for a in accs:
            for k in _TOTAL_KEYS:
                out[k] = max(out[k], a[k]) if k == "max_tokens" else out[k] + a[k]
        return out

    def extract_output(self, acc: dict[str, int]) -> dict[str, int]:
        return acc


class SumArraysFn(beam.CombineFn):
    def create_accumulator(self) -> np.ndarray | None:
        return None

    def add_input(self, acc: np.ndarray | None, value: np.ndarray) -> np.ndarray:
        return value.copy() if acc is None else acc + value

    def merge_accumulators(self, accs: Iterable[np.ndarray | None]) -> np.ndarray | None:
        out = None
        for a in accs:
            if a is not None:
                out = a.copy() if out is None else out + a
        return out

    def extract_output(self, acc: np.ndarray | None) -> np.ndarray | None:
        return acc


@dataclass
class Plan:
    """The mixture as decided: per-source plans, cuts and totals; shard counts."""

    names: list[str]
    plans: dict[str, mixture.SourcePlan]
    totals: dict[str, dict[str, int]]
    warnings: list[str]
    cuts: dict[str, mixture.Cut] = field(default_factory=dict)
    train_shards: int = 0
    validation_shards: int = 0

    def train_tokens(self, name: str) -> int:
        p = self.plans[name]
        cut = self.cuts.get(name)
        return p.whole * p.unique_tokens + (cut.sample_tokens if cut else 0)


def make_plan(totals: list[tuple[int, dict[str, int]]], job_view: dict[str, Any]) -> Plan:
    names = job_view["names"]
    by_name = {names[i]: t for i, t in totals}
    for n in names:
        by_name.setdefault(n, dict.fromkeys(_TOTAL_KEYS, 0))
    try:
        plans, warnings = mixture.plan_mixture(
            job_view["weights"],
            {n: t["tokens"] for n, t in by_name.items()},
            {n: t["documents"] for n, t in by_name.items()},
            job_view["total_tokens"],
            job_view["max_epochs"],
            HARD_MAX_EPOCHS,
        )
    except mixture.MixtureError as exc:
        key = f"sources.{exc.source}.weight" if exc.source else "shards.total_tokens"
        why = ""
        if exc.source and by_name[exc.source]["validation_documents"]:
            why = (
                f" (all {by_name[exc.source]['validation_documents']} of its documents fell in the validation"
                " split: lower shards.validation_fraction)"
            )
        raise ValueError(f"corral shards: {job_view['manifest']}: {key}: {exc}{why}") from None
    return Plan(names, plans, by_name, warnings)


def histograms(stats: DocStats, plan: Plan, seed: int) -> Iterator[tuple[int, np.ndarray]]:
    p = plan.plans[plan.names[stats.source]]
    train = stats.train
    if p.fraction_tokens > 0 and train.any():
        keys = mixture.sample_keys(stats.hashes[train], seed, p.whole)
        yield stats.source, mixture.token_histogram(keys, stats.lengths[train])


def boundary_candidates(
    stats: DocStats, plan: Plan, boundaries: dict[int, mixture.Boundary], seed: int
) -> Iterator[tuple[int, tuple[int, str, int]]]:
    b = boundaries.get(stats.source)
    if b is None:
        return
    p = plan.plans[plan.names[stats.source]]
    idx = np.flatnonzero(stats.train)
    keys = mixture.sample_keys(stats.hashes[idx], seed, p.whole)
    for j in np.flatnonzero(mixture.key_bins(keys) == b.bin):
        i = idx[j]
        yield stats.source, (int(keys[j]), stats.doc_ids[i], int(stats.lengths[i]))


def finish_plan(plan: Plan, cuts: dict[int, mixture.Cut], validation_tokens: int, shard_tokens: int) -> Plan:
    """The plan with its cuts and shard counts (a new object: side inputs are never mutated)."""
    done = dataclasses.replace(plan, cuts={plan.names[i]: c for i, c in cuts.items()})
    train = sum(done.train_tokens(n) for n in done.names)
    done.train_shards = mixture.num_shards(train, shard_tokens)
    done.validation_shards = mixture.num_shards(validation_tokens, shard_tokens)
    return done


@dataclass
class RowBatch:
    """Rows of one tokenized file bound for one shard."""

    source: int
    keys: np.ndarray  # uint64 shuffle keys
    repeats: np.ndarray  # int64
    table: pa.Table  # doc_id, tokens


class EmitRowsFn(beam.DoFn):
    """A tokenized file → its rows (document × repeat), keyed by (split, shard)."""

    def __init__(self, tokenizer_sha: str, fraction: float, dropped_ids: set[str], seed: int) -> None:
        self.tokenizer_sha = tokenizer_sha
        self.fraction = fraction
        self.dropped_ids = dropped_ids
        self.seed = seed

    def process(self, ref: tuple[int, str], plan: Plan) -> Iterator[tuple[tuple[str, int], RowBatch]]:
        source, path = ref
        table = read_tokenized(path, self.tokenizer_sha).select(["doc_id", "tokens"])
        doc_ids, hashes, _, validation, dropped = _doc_facts(table, self.fraction, self.dropped_ids)
        name = plan.names[source]
        p, cut = plan.plans[name], plan.cuts.get(name)
        train_idx = np.flatnonzero(~validation & ~dropped)
        sampled = np.zeros(len(train_idx), dtype=bool)
        if cut is not None:
            keys = mixture.sample_keys(hashes[train_idx], self.seed, p.whole)
            sampled = mixture.in_sample(keys, [doc_ids[i] for i in train_idx], cut)
        local, repeats = mixture.repeats_of(p.whole, sampled)
        rows = train_idx[local]
        yield from self._route(TRAIN, plan.train_shards, source, table, hashes, rows, repeats)
        val_idx = np.flatnonzero(validation)
        zeros = np.zeros(len(val_idx), dtype=np.int64)
        yield from self._route(VALIDATION, plan.validation_shards, source, table, hashes, val_idx, zeros)

    def _route(
        self,
        split: str,
        shards: int,
        source: int,
        table: pa.Table,
        hashes: np.ndarray,
        rows: np.ndarray,
        repeats: np.ndarray,
    ) -> Iterator[tuple[tuple[str, int], RowBatch]]:
        if len(rows) == 0:
            return
        keys = mixture.shuffle_keys(hashes[rows], repeats, self.seed)
        shard = mixture.shard_of(keys, shards)
        order = np.argsort(shard, kind="stable")
        bounds = np.flatnonzero(np.diff(shard[order])) + 1
        for group in np.split(order, bounds):
            sel = rows[group]
            yield (
                (split, int(shard[group[0]])),
                RowBatch(source, keys[group], repeats[group], table.take(pa.array(sel))),
            )


class WriteShardFn(beam.DoFn):
    """All rows of one shard → sorted by shuffle key → the shard file and its lineage part."""

    def __init__(self, job_view: dict[str, Any], tmp: str) -> None:
        self.view = job_view
        self.tmp = tmp

    def process(self, item: tuple[tuple[str, int], Iterable[RowBatch]]) -> Iterator[dict[str, Any]]:
        (split, index), batches = item
        batches = list(batches)
        names = self.view["names"]
        keys = np.concatenate([b.keys for b in batches])
        repeats = np.concatenate([b.repeats for b in batches])
        sources = np.concatenate([np.full(len(b.keys), b.source, dtype=np.int16) for b in batches])
        doc_ids: list[str] = []
        tokens: list[np.ndarray] = []
        for b in batches:
            doc_ids.extend(b.table.column("doc_id").to_pylist())
            for chunk in b.table.column("tokens").chunks:
                offsets = np.asarray(chunk.offsets, dtype=np.int64)
                values = chunk.values.to_numpy(zero_copy_only=False)
                tokens.extend(values[offsets[i] : offsets[i + 1]] for i in range(len(chunk)))
        order = mixture.shuffle_order(keys, doc_ids, repeats)
        ids_sorted = [doc_ids[i] for i in order]
        relative = f"{split}/{shard_name(index)}"
        entry = write_shard(
            self.tmp,
            relative,
            [tokens[i] for i in order],
            sources[order],
            ids_sorted,
            self.view["vocab_size"],
            names,
            tokenizer_sha256=self.view["tokenizer_sha"],
        )
        lineage, lineage_sha = write_lineage(
            self.tmp, relative, ids_sorted, [names[s] for s in sources[order]], repeats[order]
        )
        entry.lineage, entry.lineage_sha256 = lineage, lineage_sha
        rows = Counter(names[s] for s in sources.tolist())
        yield {"split": split, "entry": entry.model_dump(), "rows_per_source": dict(rows)}


def source_mix(
    plan: Plan,
    name: str,
    train: list[ShardFile],
    rows: dict[str, int],
    validation: list[ShardFile],
    skipped: int,
) -> SourceMix:
    p, t, cut = plan.plans[name], plan.totals[name], plan.cuts.get(name)
    tokens = sum(f.tokens_per_source.get(name, 0) for f in train)
    all_tokens = sum(f.tokens for f in train)
    return SourceMix(
        weight=p.weight,
        target=p.target,
        tokens=tokens,
        achieved=tokens / all_tokens if all_tokens else 0.0,
        epochs=tokens / p.unique_tokens,
        unique_tokens=p.unique_tokens,
        documents=p.documents,
        rows=rows.get(name, 0),
        validation_tokens=sum(f.tokens_per_source.get(name, 0) for f in validation),
        validation_documents=t["validation_documents"],
        skipped_empty=skipped,
        max_document_tokens=t["max_tokens"],
        boundary_document_tokens=cut.boundary_tokens if cut else 0,
        dropped_documents=t["dropped"],
    )


def replace_outputs(out: str, tmp: str, files: list[ShardFile]) -> None:
    """Old shards out (manifest first, so the folder is never 'complete' half-replaced), new ones in."""
    storage.delete(storage.join(out, MANIFEST))
    for folder in (TRAIN, VALIDATION, LINEAGE):
        storage.delete(storage.join(out, folder))
    for f in files:
        for rel in (f.file, f.lineage):
            storage.rename(storage.join(tmp, *rel.split("/")), storage.join(out, *rel.split("/")))
    storage.delete(tmp)


class FinalizeMixFn(beam.DoFn):
    """Every shard written → files moved into place, `manifest.json` last."""

    def __init__(self, out: str, tmp: str, header: dict[str, Any], skipped: dict[str, int]) -> None:
        self.out = out
        self.tmp = tmp
        self.header = header
        self.skipped = skipped

    def process(self, _: Any, written: list[dict[str, Any]], plan: Plan) -> Iterator[str]:
        train = sorted(
            (ShardFile(**w["entry"]) for w in written if w["split"] == TRAIN), key=lambda f: f.file
        )
        validation = sorted(
            (ShardFile(**w["entry"]) for w in written if w["split"] == VALIDATION), key=lambda f: f.file
        )
        rows: Counter[str] = Counter()
        for w in written:
            if w["split"] == TRAIN:
                rows.update(w["rows_per_source"])
        sources = {n: source_mix(plan, n, train, rows, validation, self.skipped[n]) for n in plan.names}
        header = {k: v for k, v in self.header.items() if k != "notes"}
        notes = [*self.header["notes"], *plan.warnings, *granularity_notes(sources, train)]
        manifest = ShardManifest(**header, sources=sources, train=train, validation=validation, notes=notes)
        replace_outputs(self.out, self.tmp, [*train, *validation])
        manifest.write(self.out)
        yield self.out


def granularity_notes(sources: dict[str, SourceMix], train: list[ShardFile]) -> list[str]:
    """Say where a share misses its target by more than 0.5 pp, and why."""
    total = sum(f.tokens for f in train)
    notes = []
    for name, m in sources.items():
        note = mixture.explain_share_error(
            name, m.tokens, m.target, m.weight, m.boundary_document_tokens, total
        )
        if note:
            notes.append(note)
    return notes


def run_mix(
    job: Job, header: dict[str, Any], indexes: dict[str, TokenizedSource], beam_args: list[str]
) -> None:
    refs = [
        (i, storage.join(job.tokenized_dir(name), f.file))
        for i, name in enumerate(job.names)
        for f in indexes[name].files
    ]
    view = {
        "names": job.names,
        "weights": job.weights,
        "total_tokens": job.total_tokens,
        "max_epochs": job.max_epochs,
        "vocab_size": job.vocab_size,
        "tokenizer_sha": job.tokenizer_sha,
        "manifest": job.manifest.path,
    }
    seed, tmp, shard_tokens = job.seed, storage.join(job.out, TMP), job.shard_tokens
    storage.delete(tmp)
    skipped = {n: indexes[n].skipped_empty for n in job.names}
    opts = pipeline_options(beam_args)
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        files = p | "Files" >> beam.Create(refs, reshuffle=False) | "SpreadFiles" >> beam.Reshuffle()
        stats = files | "DocStats" >> beam.ParDo(
            DocStatsFn(job.tokenizer_sha, job.validation_fraction, job.dropped_ids)
        )
        totals = (
            stats
            | "Totals" >> beam.Map(source_totals)
            | "SumTotals" >> beam.CombinePerKey(MergeTotalsFn())
            | "AllTotals" >> beam.combiners.ToList()
        )
        plan0 = totals | "Plan" >> beam.Map(make_plan, view)
        hist = (
            stats
            | "Histogram" >> beam.FlatMap(histograms, beam.pvalue.AsSingleton(plan0), seed)
            | "SumHistogram" >> beam.CombinePerKey(SumArraysFn())
        )
        bounds = hist | "Boundary" >> beam.Map(
            lambda kv, plan: (
                kv[0],
                mixture.find_boundary(kv[1], plan.plans[plan.names[kv[0]]].fraction_tokens),
            ),
            beam.pvalue.AsSingleton(plan0),
        )
        cuts = (
            stats
            | "Candidates"
            >> beam.FlatMap(
                boundary_candidates, beam.pvalue.AsSingleton(plan0), beam.pvalue.AsDict(bounds), seed
            )
            | "GroupCandidates" >> beam.GroupByKey()
            | "Cut"
            >> beam.Map(
                lambda kv, b: (kv[0], mixture.choose_cut(b[kv[0]], list(kv[1]))), beam.pvalue.AsDict(bounds)
            )
        )
        val_tokens = totals | "ValidationTokens" >> beam.Map(
            lambda ts: sum(t["validation_tokens"] for _, t in ts)
        )
        plan = (
            p
            | "Once" >> beam.Create([None])
            | "FinishPlan"
            >> beam.Map(
                lambda _, plan, c, v: finish_plan(plan, c, v, shard_tokens),
                beam.pvalue.AsSingleton(plan0),
                beam.pvalue.AsDict(cuts),
                beam.pvalue.AsSingleton(val_tokens),
            )
        )
        written = (
            files
            | "EmitRows"
            >> beam.ParDo(
                EmitRowsFn(job.tokenizer_sha, job.validation_fraction, job.dropped_ids, seed),
                beam.pvalue.AsSingleton(plan),
            )
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteShardFn(view, tmp))
        )
        _ = (
            p
            | "Last" >> beam.Create([None])
            | "FinalizeMix"
            >> beam.ParDo(
                FinalizeMixFn(job.out, tmp, header, skipped),
                beam.pvalue.AsList(written),
                beam.pvalue.AsSingleton(plan),
            )
        )


# ------------------------------------------------------------------------------------ takedowns


class DropFn(beam.DoFn):
    """One shard file: if its lineage holds a dropped id, rewrite it (and its lineage part) without
    those rows under the temporary folder; yields what was removed."""

    def __init__(self, out: str, tmp: str, ids: set[str], names: list[str], vocab: int, sha: str) -> None:
        self.out, self.tmp, self.ids = out, tmp, ids
        self.names, self.vocab, self.sha = names, vocab, sha

    def process(self, entry_dict: dict[str, Any]) -> Iterator[dict[str, Any]]:
        entry = ShardFile(**entry_dict)
        with storage.open_read(storage.join(self.out, *entry.lineage.split("/"))) as f:
            lineage = pq.read_table(f, columns=["doc_id", "repeat"])
        doc_ids = lineage.column("doc_id").to_pylist()
        hit = np.fromiter((d in self.ids for d in doc_ids), dtype=bool, count=len(doc_ids))
        if not hit.any():
            return
        path = storage.join(self.out, *entry.file.split("/"))
        data = pa.py_buffer(storage.read_bytes(path))
        table = pa.ipc.open_file(data).read_all()
        keep = np.flatnonzero(~hit)
        tokens_col = table.column("tokens").combine_chunks()
        offsets = np.asarray(tokens_col.offsets, dtype=np.int64)
        values = tokens_col.values.to_numpy(zero_copy_only=False)
        source_ids = np.asarray(table.column("source").combine_chunks().indices, dtype=np.int16)
        lengths = np.diff(offsets)
        repeats = np.asarray(lineage.column("repeat"), dtype=np.int32)
        new = write_shard(
            self.tmp,
            entry.file,
            [values[offsets[i] : offsets[i + 1]] for i in keep],
            source_ids[keep],
            [doc_ids[i] for i in keep],
            self.vocab,
            self.names,
            tokenizer_sha256=self.sha,
        )
        new.lineage, new.lineage_sha256 = write_lineage(
            self.tmp,
            entry.file,
            [doc_ids[i] for i in keep],
            [self.names[s] for s in source_ids[keep]],
            repeats[keep],
        )
        removed = [
            (doc_ids[i], self.names[source_ids[i]], int(lengths[i]), int(repeats[i]))
            for i in np.flatnonzero(hit)
        ]
        yield {"entry": new.model_dump(), "removed": removed}


class FinalizeDropFn(beam.DoFn):
    """Rewritten files moved into place; the manifest's counts, the ids file and the key updated."""

    def __init__(self, out: str, tmp: str, ids: set[str], inputs: dict[str, Any], asked: int) -> None:
        self.out, self.tmp, self.ids, self.inputs, self.asked = out, tmp, ids, inputs, asked

    def process(self, _: Any, results: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        manifest = ShardManifest.read_from(self.out)
        new_entries = {r["entry"]["file"]: ShardFile(**r["entry"]) for r in results}
        removed_train: dict[str, dict[str, int]] = defaultdict(dict)  # source → doc id → tokens
        removed_val: dict[str, dict[str, int]] = defaultdict(dict)
        removed_rows: Counter[str] = Counter()
        for r in results:
            split = r["entry"]["file"].split("/", 1)[0]
            for doc_id, source, length, _repeat in r["removed"]:
                (removed_train if split == TRAIN else removed_val)[source][doc_id] = length
                if split == TRAIN:
                    removed_rows[source] += 1
        storage.delete(storage.join(self.out, MANIFEST))  # incomplete while files are swapped
        for _, entry in sorted(new_entries.items()):
            for r in (entry.file, entry.lineage):
                storage.rename(storage.join(self.tmp, *r.split("/")), storage.join(self.out, *r.split("/")))
        storage.delete(self.tmp)
        manifest.train = [new_entries.get(f.file, f) for f in manifest.train]
        manifest.validation = [new_entries.get(f.file, f) for f in manifest.validation]
        all_tokens = manifest.train_tokens
        for name, m in manifest.sources.items():
            gone = removed_train.get(name, {})
            m.tokens = sum(f.tokens_per_source.get(name, 0) for f in manifest.train)
            m.rows -= removed_rows[name]
            m.documents -= len(gone)
            m.unique_tokens -= sum(gone.values())
            m.validation_tokens = sum(f.tokens_per_source.get(name, 0) for f in manifest.validation)
            m.validation_documents -= len(removed_val.get(name, {}))
            m.dropped_documents += len(gone) + len(removed_val.get(name, {}))
            m.achieved = m.tokens / all_tokens if all_tokens else 0.0
            m.epochs = m.tokens / m.unique_tokens if m.unique_tokens else 0.0
        storage.write_text_atomic(
            storage.join(self.out, DROPPED_IDS), "".join(i + "\n" for i in sorted(self.ids))
        )
        manifest.dropped_ids = DROPPED_IDS
        manifest.mix_key = mix_key(self.inputs)
        manifest.extra = {
            **manifest.extra,
            "mix_inputs": self.inputs,
            "dropped_ids_sha256": ids_sha256(self.ids),
        }
        found = {d for r in results for d, *_ in r["removed"]}
        manifest.notes = [
            *manifest.notes,
            f"takedown: {self.asked} ids asked for, {len(found)} documents found and removed, "
            f"{len(new_entries)} shard files rewritten ({', '.join(sorted(new_entries)) or 'none'})",
        ]
        manifest.write(self.out)
        yield self.out


def run_drop(job: Job, ids_file: str, beam_args: list[str]) -> int:
    try:
        manifest = ShardManifest.read_from(job.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"corral shards: {exc}", file=sys.stderr)
        return 2
    new_ids = read_ids_file(ids_file)
    if not new_ids:
        print(f"corral shards: {ids_file}: no document ids", file=sys.stderr)
        return 2
    ids = job.dropped_ids | new_ids
    inputs = dict(manifest.extra.get("mix_inputs", {}), dropped_ids=ids_sha256(ids))
    tmp = storage.join(job.out, TMP)
    storage.delete(tmp)
    entries = [f.model_dump() for f in [*manifest.train, *manifest.validation]]
    opts = pipeline_options(beam_args)
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        results = (
            p
            | "Shards" >> beam.Create(entries, reshuffle=False)
            | "Spread" >> beam.Reshuffle()
            | "Drop"
            >> beam.ParDo(
                DropFn(
                    job.out,
                    tmp,
                    new_ids,
                    manifest.source_names,
                    manifest.tokenizer.vocab_size,
                    manifest.tokenizer.sha256,
                )
            )
        )
        _ = (
            p
            | "Once" >> beam.Create([None])
            | "FinalizeDrop"
            >> beam.ParDo(
                FinalizeDropFn(job.out, tmp, ids, inputs, len(new_ids)), beam.pvalue.AsList(results)
            )
        )
    print(ShardManifest.read_from(job.out).notes[-1])
    return 0


# ---------------------------------------------------------------------------------------- launcher


def mix_key(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def mix_inputs(job: Job, indexes: dict[str, TokenizedSource]) -> dict[str, Any]:
    shares, _ = mixture.normalise_weights(job.weights)
    return {
        "format": FORMAT,
        "tokenizer": job.tokenizer_sha,
        "tokenized": {
            n: storage.sha256_of(storage.join(job.tokenized_dir(n), TOKENIZED_INDEX)) for n in job.names
        },
        "weights": shares,
        "total_tokens": job.total_tokens,
        "seed": job.seed,
        "validation_fraction": job.validation_fraction,
        "max_epochs": job.max_epochs,
        "shard_tokens": job.shard_tokens,
        "dropped_ids": ids_sha256(job.dropped_ids),
    }


def precheck(job: Job, indexes: dict[str, TokenizedSource]) -> None:
    """Refuse, before the mix runs, what the tokenized counts already show: a source with no token, or
    epochs far above the hard limit (the exact plan, after the validation split, is made in the job)."""
    est = {n: round(indexes[n].tokens * (1 - job.validation_fraction)) for n in job.names}
    docs = {n: indexes[n].documents for n in job.names}
    try:
        mixture.plan_mixture(job.weights, est, docs, job.total_tokens, job.max_epochs, HARD_MAX_EPOCHS)
    except mixture.MixtureError as exc:
        key = f"sources.{exc.source}.weight" if exc.source else "shards.total_tokens"
        raise ManifestError(job.manifest.path, key, str(exc)) from None


def header_of(job: Job, inputs: dict[str, Any], note: str | None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "tokenizer": TokenizerRef(
            sha256=job.tokenizer_sha,
            vocab_size=job.vocab_size,
            bos_id=job.bos_id,
            eos_id=job.eos_id,
            path=job.tokenizer_dir,
        ),
        "token_type": str(token_type(job.vocab_size)),
        "eos_appended": True,
        "bos_prepended": False,
        "seed": job.seed,
        "total_tokens": job.total_tokens,
        "validation_fraction": job.validation_fraction,
        "max_epochs": job.max_epochs,
        "shard_tokens": job.shard_tokens,
        "source_names": job.names,
        "corpus_manifests": job.corpus_shas,
        "mix_key": mix_key(inputs),
        "tokenized": inputs["tokenized"],
        "dropped_ids": DROPPED_IDS if job.dropped_ids else "",
        "notes": [note] if note else [],
        "extra": {"mix_inputs": inputs, "dropped_ids_sha256": inputs["dropped_ids"]},
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corral shards",
        description="Tokenize the corpus and write Arrow shards of the token mixture (Apache Beam). "
        "`corral shards inspect DIR` checks and summarises a shards folder.",
    )
    p.add_argument("--manifest", required=True, help="TOML job description with a [shards] table")
    p.add_argument("--drop-ids", dest="drop_ids", help="file of document ids (one a line) to take down")
    p.add_argument("--force", action="store_true", help="re-tokenize and re-mix even when up to date")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "inspect":
        from pipeline.inspect_shards import main as inspect_main

        return inspect_main(argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = build_parser().parse_known_args(argv)
    try:
        job = prepare(load_manifest(args.manifest))
        if args.drop_ids:
            return run_drop(job, args.drop_ids, beam_args)
        indexes, stale = cached_sources(job, args.force)
        if stale:
            print(
                f"tokenizing {', '.join(stale)} with {job.tokenizer_dir} (sha256 {job.tokenizer_sha[:12]}…)"
            )
            if not run_tokenize(job, stale, beam_args):
                print("dry run: the tokenize job translated; the mix reads its output, so it stops here")
                return 0
            indexes.update({n: TokenizedSource.read_from(job.tokenized_dir(n)) for n in stale})
        for n in job.names:
            if n not in stale:
                print(f"{n}: tokenized cache reused ({indexes[n].tokens:,} tokens)")
        precheck(job, indexes)
        inputs = mix_inputs(job, indexes)
        _, note = mixture.normalise_weights(job.weights)
        if not args.force and storage.exists(storage.join(job.out, MANIFEST)):
            try:
                existing = ShardManifest.read_from(job.out)
            except ValueError:
                existing = None
            if existing is not None and existing.mix_key == mix_key(inputs):
                print(f"shards: complete ({storage.join(job.out, MANIFEST)}); nothing changed")
                return 0
        run_mix(job, header_of(job, inputs, note), indexes, beam_args)
    except (ManifestError, ShardsError) as exc:
        print(f"corral shards: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a refusal raised inside the job (the exact plan) comes back wrapped by Beam
        refusal = next((ln for ln in str(exc).splitlines() if "corral shards: " in ln), None)
        if refusal is None:
            raise
        print(refusal[refusal.index("corral shards: ") :], file=sys.stderr)
        return 2
    if is_dry_run(pipeline_options(beam_args)):
        print("dry run: the mix job translated; nothing was written")
        return 0
    from pipeline.inspect_shards import summary

    manifest = ShardManifest.read_from(job.out)
    print(summary(manifest))
    return 0


if __name__ == "__main__":
    # Run the module's own copy, not `__main__`'s: Beam pickles DoFns and their element classes by
    # module path, and workers cannot import `__main__`.
    from pipeline.shards import main as _main

    sys.exit(_main())
