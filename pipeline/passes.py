"""The three passes over a source's input files; only small records travel between them.

1. `HashFileFn` parses a file — the only pass that does — and emits what must be counted across the
   source: line-hash records per hash shard, text digests for whole-text exact dedup, and how many
   documents it admitted. The admitted documents, with their line hashes, go to temporary read chunks of
   the file's own (`read/FFFFF-CCCC.arrow`), its dead letters to a file of its own.
2. `MineFileFn` reads the file's read chunks with its verdicts (the duplicated hashes it contains, its exact
   duplicates), runs the chain (`filters.ccnet.Miner`), spills the survivors to sorted runs of its own, and
   emits MinHash band keys and per-file counts. A source without a counting pass (no line or exact dedup)
   starts here, parsing the file itself.
3. `WritePartFn` reads the spills of one output part, drops the near-duplicates and the second copies of
   an id (the same page in two dumps: the first file's copy is kept), sorts by id and writes the part under
   the staging folder.

cc_net parses every file twice (hashes, then mining); re-reading our own LZ4 chunks instead costs a
fraction of parsing WET, XML or LaTeX again, and the line hashes are computed once. Documents still never
cross a shuffle: the runner's buffers and Dataflow's shuffle carry hashes, digests, band keys and ids — not
text. Every pass checks that it saw what the previous one did and fails naming the file otherwise (a read
chunk or a spill missing or short).
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from filters.ccnet import HashPass, Miner, length_drop, text_digest
from filters.dedup import DuplicatedLines, LineRecords, merge_line_records, split_by_shard
from filters.document import Document
from filters.sources.source_file import SourceFile
from manifests import storage
from manifests.corpus import (
    KEPT,
    READ,
    PartWriter,
    dropped,
    iter_read_chunk,
    iter_run_batches,
    read_chunk_bytes,
    repaired,
    row_meta,
    run_bytes,
    stat,
)
from manifests.schema import SourceConfig
from pipeline.dedup import NodePacker, Packed
from pipeline.linededup import scope_key
from pipeline.read import InputFile, node_id, parse_node

SPILL = "spill"
READ_DIR = "read"
DEAD = "dead"
PARTS = "parts"

# Tags of the passes' side outputs.
LINES = "lines"
DIGESTS = "digests"
ADMITTED = "admitted"
BANDS = "bands"
IDS = "ids"

# Drops pass 3 applies, by the name of their input in its join (the drop reason is the same).
PART_DROPS = ("duplicate_id", "near_duplicate")
COUNTS = "counts"
SPILLED = "spilled"

# What travels between the passes, in payload bytes (without the runner's framing): a line record is an
# 8-byte hash, an 8-byte document key and a flag; counted into the manifest's stats for the cost model.
LINE_RECORD_BYTES = 17
SMALL_RECORD_BYTES = stat("small_record_bytes")

RUN_TEXT_BYTES = 32 << 20  # survivors a worker sorts in memory before writing a sorted run
READ_CHUNK_TEXT_BYTES = 16 << 20  # documents pass 1 buffers before writing a read chunk
MERGE_BATCH_ROWS = 64  # rows read at a time from each run while merging a part


def sent(kind: str) -> str:
    """Counts key: records of `kind` a pass emitted for a file (checked against what arrived)."""
    return f"sent.{kind}"


def received(kind: str) -> str:
    return f"received.{kind}"


class CountReceived(beam.PTransform):
    """Counts, per input file, the records of `kind` that reached the next stage: `(file, {received.kind: n})`
    (line records one an element; digests, ids and band keys packed, `pipeline.dedup.NodePacker`).

    Next to the producers' own counts (`sent.kind`) this turns records lost between stages — a worker's
    output cut short, a bundle retried without its outputs — into a loud failure instead of weaker dedup.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        key = received(self.kind)
        count = _line_record_count if self.kind == LINES else _packed_count
        return (
            records
            | "File" >> beam.Map(count)
            | "Sum" >> beam.CombinePerKey(sum)
            | "AsCounts" >> beam.MapTuple(lambda index, n: (index, {key: n}))
        )


def _line_record_count(record: tuple[int, tuple[int, Any]]) -> tuple[int, int]:
    return record[1][0], 1


def _packed_count(packed: Packed) -> tuple[int, int]:
    return packed[1][0], len(packed[1][2])


def run_path(tmp_dir: str, file_index: int, run: int) -> str:
    return storage.join(tmp_dir, SPILL, f"{file_index:05d}-{run:04d}.arrow")


def dead_path(tmp_dir: str, file_index: int) -> str:
    return storage.join(tmp_dir, DEAD, f"{file_index:05d}.jsonl")


def use_system_allocator() -> None:
    """Arrow buffers from the C library's malloc instead of pyarrow's default mimalloc, which keeps the pages
    of freed batches (the spilled runs, the merge) in its heaps: measured with `benchmarks.scale`, the
    160k-page build's peak RSS fell from 722 to 612 MiB at the same speed. `ARROW_DEFAULT_MEMORY_POOL`, when
    set, wins."""
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ and pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def _source_file(cfg: SourceConfig, item: InputFile) -> SourceFile:
    return SourceFile(cfg.reader, item.path, item.is_dir, c4_rules=cfg.c4.rules, opener=storage.open_read)


class _Spill:
    """Documents of one input file buffered up to `limit` bytes of text, then written by `encode` as the next
    numbered file `path_of(n)` of the staging folder. Memory: one file's worth, whatever the input's size."""

    def __init__(
        self, limit: int, path_of: Callable[[int], str], encode: Callable[[list[Document], list], bytes]
    ) -> None:
        self.limit, self.path_of, self.encode = limit, path_of, encode
        self.files = 0
        self.rows = 0
        self._docs: list[Document] = []
        self._extra: list[Any] = []  # per document, what `encode` stores beside it (line hashes)
        self._text = 0

    def add(self, docs: list[Document], extra: list[Any] | None = None) -> None:
        self._docs.extend(docs)
        self._extra.extend(extra if extra is not None else [None] * len(docs))
        self._text += sum(len(d.text) for d in docs)
        if self._text >= self.limit:
            self._flush()

    def _flush(self) -> None:
        if not self._docs:
            return
        storage.write_atomic(self.path_of(self.files), self.encode(self._docs, self._extra))
        self.files += 1
        self.rows += len(self._docs)
        self._docs, self._extra, self._text = [], [], 0
        pa.default_memory_pool().release_unused()  # the table's buffers grew by doubling: give them back

    def close(self) -> None:
        self._flush()


def _read_chunks(tmp_dir: str, file_index: int, batch_rows: int) -> _Spill:
    """Pass 1's admitted documents with their line hashes, in input order (`read/FFFFF-CCCC.arrow`,
    `manifests.corpus.read_chunk_bytes`)."""

    def encode(docs: list[Document], hashes: list[Any]) -> bytes:
        return read_chunk_bytes(docs, [h if h is not None else [] for h in hashes], batch_rows)

    return _Spill(READ_CHUNK_TEXT_BYTES, lambda n: read_chunk_path(tmp_dir, file_index, n), encode)


def _sorted_runs(tmp_dir: str, file_index: int) -> _Spill:
    """Pass 2's survivors as runs sorted by id (`spill/FFFFF-RRRR.arrow`, `manifests.corpus.run_bytes`), in
    batches as small as the merge reads, so that merging many runs holds a few rows of each."""
    return _Spill(
        RUN_TEXT_BYTES,
        lambda n: run_path(tmp_dir, file_index, n),
        lambda docs, _: run_bytes(docs, MERGE_BATCH_ROWS),
    )


def read_chunk_path(tmp_dir: str, file_index: int, chunk: int) -> str:
    return storage.join(tmp_dir, READ_DIR, f"{file_index:05d}-{chunk:04d}.arrow")


def _read_chunk_documents(
    tmp_dir: str, file_index: int, chunks: int
) -> Iterator[tuple[list[Document], list[list[int]]]]:
    """Pass 2's input when pass 1 ran: the file's read chunks, a batch at a time."""
    for chunk in range(chunks):
        path = read_chunk_path(tmp_dir, file_index, chunk)
        if not storage.exists(path):
            raise RuntimeError(f"{path}: pass 1's read chunk is missing; refusing to build without it")
        with storage.open_read(path) as f:
            for rows, hashes in iter_read_chunk(f):
                docs = [Document(r["id"], r["source"], r["text"], row_meta(r)) for r in rows]
                yield docs, hashes


class HashFileFn(beam.DoFn):
    """Pass 1 over one input file: the only pass that parses it (pass 2 reads its read chunks)."""

    def __init__(self, cfg: SourceConfig, tmp_dir: str, chunk_docs: int = 2048) -> None:
        self.cfg = cfg
        self.tmp_dir = tmp_dir
        self.chunk_docs = chunk_docs

    def setup(self) -> None:
        use_system_allocator()

    def _records(self, item: InputFile, records: LineRecords) -> Iterator[Any]:
        cc = self.cfg.ccnet
        for shard, recs in split_by_shard(records, cc.dedup_shards):
            key = scope_key(item.index, shard, cc.dedup_shards, cc.dedup_scope)
            self._bytes += 16 + LINE_RECORD_BYTES * len(recs)
            self._sent[LINES] += 1
            yield beam.pvalue.TaggedOutput(LINES, (key, (item.index, recs)))

    def process(self, item: InputFile) -> Iterator[Any]:
        hp = HashPass(self.cfg)
        sf = _source_file(self.cfg, item)
        spill = _read_chunks(self.tmp_dir, item.index, self.cfg.ccnet.batch_size)
        chunk: list[Document] = []
        dead: list[Document] = []
        counts: Counter[str] = Counter()
        admitted = 0
        self._bytes = 0
        self._sent: Counter[str] = Counter()
        merged = LineRecords.empty()  # the file's records, merged as they come: one record per shard
        digests = NodePacker(item.index, self.cfg.clusters.key_shards)

        def hash_chunk() -> None:
            nonlocal merged, chunk
            per_doc = hp.line_hashes(chunk) if hp.rule is not None else None
            if hp.rule is not None and chunk:
                merged = merge_line_records([merged, hp.line_records(chunk, per_doc)])
            spill.add(chunk, per_doc)
            chunk = []

        for doc in sf:
            reason = length_drop(doc, self.cfg)
            if reason is not None:
                counts[dropped(reason)] += 1
                continue
            admitted += 1
            if self.cfg.exact_dedup:
                node = node_id(doc.id, item.index)
                self._bytes += 20 + len(node)
                self._sent[DIGESTS] += 1
                for packed in digests.add(text_digest(doc.text), node):
                    yield beam.pvalue.TaggedOutput(DIGESTS, packed)
            chunk.append(doc)
            if len(chunk) >= self.chunk_docs:
                hash_chunk()
                dead.extend(sf.take_dead_letters())
        hash_chunk()
        spill.close()
        dead.extend(sf.take_dead_letters())
        write_dead_letters(self.tmp_dir, item.index, dead)
        counts.update(reading_counts(sf))
        if hp.rule is not None:
            yield from self._records(item, merged)
        for packed in digests.flush():
            yield beam.pvalue.TaggedOutput(DIGESTS, packed)
        reading = (admitted, self._bytes, dict(self._sent), dict(counts), spill.files)
        yield beam.pvalue.TaggedOutput(ADMITTED, (item.index, reading))


def reading_counts(sf: SourceFile) -> Counter[str]:
    """What reading a file counted: records read, drops and repairs by reason."""
    counts: Counter[str] = Counter({READ: sf.read})
    for reason, n in sf.dropped.items():
        counts[dropped(reason)] += n
    for what, n in sf.repaired.items():
        counts[repaired(what)] += n
    return counts


def write_dead_letters(tmp_dir: str, file_index: int, dead: list[Document]) -> None:
    lines = "".join(json.dumps(d.to_json_dict(), sort_keys=True, ensure_ascii=False) + "\n" for d in dead)
    storage.write_text_atomic(dead_path(tmp_dir, file_index), lines)


def _run_rows(path: str, file_index: int) -> Iterator[tuple[str, int, pa.RecordBatch, int, int]]:
    """`(id, file, batch, row, text bytes)` of a sorted run, read a few rows at a time (no row is converted
    to Python objects: only the ids, which the merge compares)."""
    with storage.open_read(path) as f:
        for batch in iter_run_batches(f):
            ids = batch.column("id").to_pylist()
            sizes = pc.binary_length(batch.column("text")).to_pylist()
            for row, (doc_id, size) in enumerate(zip(ids, sizes, strict=True)):
                yield doc_id, file_index, batch, row, size


class MineFileFn(beam.DoFn):
    """Pass 2 over one input file, with its verdicts (see the module docstring)."""

    def __init__(self, source: str, cfg: SourceConfig, tmp_dir: str, models: dict[str, Any]) -> None:
        self.source = source
        self.cfg = cfg
        self.tmp_dir = tmp_dir
        self.models = (
            models  # paths: "langid", "lms" {lang: {sp_model, kenlm_model, p30, p60}}, "wikiref", "badwords"
        )

    def setup(self) -> None:
        from filters.scoring import DocumentScorer, LanguageModelFiles, ScoringModels

        use_system_allocator()

        cc = self.cfg.ccnet
        scorer = None
        if cc.enabled and (cc.langid or cc.perplexity or cc.wikiref):
            m = self.models
            lms = {
                lang: LanguageModelFiles(
                    storage.local_copy(e["sp_model"]),
                    storage.local_copy(e["kenlm_model"]),
                    e["p30"],
                    e["p60"],
                )
                for lang, e in m.get("lms", {}).items()
            }
            loaded = ScoringModels.load(
                langid=cc.langid,
                lid_model=storage.local_copy(m["langid"]) if m.get("langid") else None,
                lms=lms if cc.perplexity else None,
                wikiref_model=storage.local_copy(m["wikiref"]) if cc.wikiref else None,
                badword_files=m.get("badwords") or None,
            )
            scorer = DocumentScorer(cc, loaded)
        hasher = None
        if self.cfg.minhash.enabled:
            from filters.minhash import MinHasher

            mh = self.cfg.minhash
            hasher = MinHasher(
                num_perm=mh.num_perm, ngram=mh.ngram, seed=mh.seed, shingle_hash=mh.shingle_hash
            )
        self._miner = Miner(self.cfg, scorer, hasher)
        self._broadcast_parts: list | None = None
        self._broadcast = DuplicatedLines.union([])

    def _broadcast_set(self, parts: list[DuplicatedLines]) -> DuplicatedLines:
        if parts is not self._broadcast_parts:  # merged once per side-input value, not once per file
            self._broadcast = DuplicatedLines.union(list(parts))
            self._broadcast_parts = parts
        return self._broadcast

    def process(
        self, element: tuple[int, dict[str, list]], broadcast: list[DuplicatedLines]
    ) -> Iterator[Any]:
        index, joined = element
        item: InputFile = joined["file"][0]
        exact = set(joined.get("exact", []))
        duplicated = [self._broadcast_set(broadcast), DuplicatedLines.union(list(joined.get("lines", [])))]
        pass1 = joined.get("admitted")
        spill = _sorted_runs(self.tmp_dir, index)
        counts: Counter[str] = Counter()
        ids = NodePacker(index, self.cfg.clusters.key_shards)
        bands = NodePacker(index, self.cfg.clusters.key_shards)

        def mine(docs: list[Document], hashes: list[list[int]] | None) -> Iterator[Any]:
            mined = self._miner.mine(docs, exact, duplicated, hashes)
            for reason, n in mined.dropped.items():
                counts[dropped(reason)] += n
            for name, n in mined.stats.items():
                counts[stat(name)] += n
            spill.add(mined.kept)
            for doc in mined.kept:
                node = node_id(doc.id, index)
                counts[SMALL_RECORD_BYTES] += len(doc.id) + len(node)
                counts[sent(IDS)] += 1
                for packed in ids.add(doc.id, node):
                    yield beam.pvalue.TaggedOutput(IDS, packed)
            for doc, keys in zip(mined.kept, mined.band_keys, strict=False):
                node = node_id(doc.id, index)
                counts[SMALL_RECORD_BYTES] += len(keys) * (16 + len(node))
                counts[sent(BANDS)] += len(keys)
                for key in keys:
                    for packed in bands.add(key, node):
                        yield beam.pvalue.TaggedOutput(BANDS, packed)

        if pass1:
            # Pass 1 parsed the file and counted what reading dropped; its read chunks hold the rest.
            expected, pass1_bytes, pass1_sent, reading, chunks = pass1[0]
            seen = 0
            for docs, hashes in _read_chunk_documents(self.tmp_dir, index, chunks):
                seen += len(docs)
                yield from mine(docs, hashes if self._miner.rule is not None else None)
            if seen != expected:
                raise RuntimeError(
                    f"{item.path}: pass 1 admitted {expected} documents, its read chunks hold {seen}; "
                    "refusing to build from them"
                )
            counts.update(reading)
            counts[SMALL_RECORD_BYTES] += pass1_bytes
            for kind, n in pass1_sent.items():
                counts[sent(kind)] += n
        else:
            # No counting pass for this source: this pass reads the file itself.
            sf = _source_file(self.cfg, item)
            dead: list[Document] = []
            chunk: list[Document] = []
            for doc in sf:
                chunk.append(doc)
                if len(chunk) >= self.cfg.ccnet.batch_size:
                    yield from mine(chunk, None)
                    chunk = []
                    dead.extend(sf.take_dead_letters())
            if chunk:
                yield from mine(chunk, None)
            dead.extend(sf.take_dead_letters())
            write_dead_letters(self.tmp_dir, index, dead)
            counts.update(reading_counts(sf))
        for packed in ids.flush():
            yield beam.pvalue.TaggedOutput(IDS, packed)
        for packed in bands.flush():
            yield beam.pvalue.TaggedOutput(BANDS, packed)
        spill.close()
        yield beam.pvalue.TaggedOutput(COUNTS, (index, dict(counts)))
        yield beam.pvalue.TaggedOutput(SPILLED, (item.part, (index, spill.files, spill.rows)))


class WritePartFn(beam.DoFn):
    """Pass 3: the parts of one output group, merged from the sorted runs of its files (near-duplicates and
    second copies of an id dropped), streamed into `PartWriter` — memory: a few rows per run."""

    def __init__(
        self, source: str, tmp_dir: str, part_files: dict[int, list[int]], max_text_bytes: int
    ) -> None:
        self.source = source
        self.tmp_dir = tmp_dir
        self.part_files = part_files
        self.max_text_bytes = max_text_bytes

    def setup(self) -> None:
        use_system_allocator()

    def process(self, element: tuple[int, dict[str, list]]) -> Iterator[Any]:
        group, joined = element
        spilled = {index: (runs, rows) for index, runs, rows in joined.get("spills", [])}
        expected = self.part_files[group]
        missing = [i for i in expected if i not in spilled]
        if missing:
            raise RuntimeError(
                f"source {self.source!r}, part group {group}: no pass-2 output for input file(s) {missing}; "
                "refusing to write parts that would lose their documents"
            )
        drops: dict[tuple[str, int], str] = {}
        for reason in PART_DROPS:
            for node in joined.get(reason, []):
                doc_id, file_index = parse_node(node)
                drops.setdefault((doc_id, file_index), reason)
        runs = [_run_rows(run_path(self.tmp_dir, i, r), i) for i in expected for r in range(spilled[i][0])]
        counts: dict[int, Counter[str]] = {i: Counter() for i in expected}
        writer = PartWriter(storage.join(self.tmp_dir, PARTS), group, self.max_text_bytes)
        for doc_id, index, batch, row, size in heapq.merge(*runs, key=lambda t: (t[0], t[1])):
            reason = drops.get((doc_id, index))
            if reason:
                counts[index][dropped(reason)] += 1
            else:
                counts[index][KEPT] += 1
                writer.add(batch, row, size)
        for index in expected:
            seen = sum(counts[index].values())
            if seen != spilled[index][1]:
                raise RuntimeError(
                    f"source {self.source!r}: the runs of input file {index} hold {seen} rows, "
                    f"pass 2 wrote {spilled[index][1]}"
                )
            yield beam.pvalue.TaggedOutput(COUNTS, (index, dict(counts[index])))
        yield from writer.close()
