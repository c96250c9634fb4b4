"""The corpus on disk: `corpus/<source>/part-*.parquet`, `dead_letters.jsonl` and `manifest.json`.

One owner for the format, so that the build job writes it and the tokenizer, shards and report stages
read it with pyarrow alone. A source folder is complete when its `manifest.json` exists: the build
writes it last, after every part is in place and the balance `read = kept + Σ dropped` holds.

Rows: the columns of `SCHEMA`; a document's meta keys that have a column of their own (`url`, `title`,
`lang`, …) live in that column, every other key in the `meta` JSON string. Parts are written with fixed
settings (sorted by id, zstd level 3, fixed row groups, no timestamps), so the same documents give the
same bytes whatever the number of workers.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from manifests import storage

MANIFEST = "manifest.json"
DEAD_LETTERS = "dead_letters.jsonl"
ROW_GROUP_ROWS = 8192
ROW_GROUP_TEXT_BYTES = 16 << 20  # bounds the writer's memory (a row group of books would hold gigabytes)

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("text", pa.string()),
        ("url", pa.string()),
        ("title", pa.string()),
        ("lang", pa.string()),
        ("lang_score", pa.float64()),
        ("perplexity", pa.float64()),
        ("bucket", pa.string()),
        ("meta", pa.string()),
    ]
)
COLUMNS_FROM_META = ("url", "title", "lang", "lang_score", "perplexity", "bucket")
_FLOAT_COLUMNS = ("lang_score", "perplexity")

# Keys of the counts every stage emits; the manifest's sections are built from their prefixes.
READ = "read"
KEPT = "kept"
_DROPPED, _REPAIRED, _STAT = "dropped.", "repaired.", "stat."


def dropped(reason: str) -> str:
    """The counts key for documents dropped for `reason`."""
    return _DROPPED + reason


def repaired(what: str) -> str:
    return _REPAIRED + what


def stat(name: str) -> str:
    return _STAT + name


class DocumentLike(Protocol):
    id: str
    source: str
    text: str
    meta: dict[str, Any]


def part_name(group: int, seq: int = 0) -> str:
    """`part-GGGGG-SSS.parquet`: the output group (input files it comes from) and its sequence within it."""
    return f"part-{group:05d}-{seq:03d}.parquet"


def _column_value(key: str, value: Any) -> Any:
    if value is None:
        return None
    return float(value) if key in _FLOAT_COLUMNS else str(value)


def to_table(docs: Iterable[DocumentLike], sort: bool = True) -> pa.Table:
    """Documents as a table of `SCHEMA`, sorted by id (in the given order with `sort=False`)."""
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for d in sorted(docs, key=lambda d: d.id) if sort else docs:
        cols["id"].append(d.id)
        cols["source"].append(d.source)
        cols["text"].append(d.text)
        for key in COLUMNS_FROM_META:
            cols[key].append(_column_value(key, d.meta.get(key)))
        rest = {k: v for k, v in d.meta.items() if k not in COLUMNS_FROM_META}
        cols["meta"].append(json.dumps(rest, sort_keys=True, ensure_ascii=False, default=str))
    return pa.table(cols, schema=SCHEMA)


_PARQUET_SETTINGS: dict[str, Any] = {"compression": "zstd", "compression_level": 3}


def parquet_bytes(docs: Iterable[DocumentLike], row_group_rows: int = ROW_GROUP_ROWS) -> bytes:
    """A Parquet part of documents sorted by id, written with fixed settings (same rows → same bytes).

    Readers hold one row group at a time: a file several readers stream side by side (the build's
    sorted runs) wants small ones.
    """
    buf = io.BytesIO()
    pq.write_table(to_table(docs), buf, row_group_size=row_group_rows, **_PARQUET_SETTINGS)
    return buf.getvalue()


def run_bytes(docs: Iterable[DocumentLike], batch_rows: int) -> bytes:
    """A build's temporary sorted run: the documents sorted by id as an Arrow IPC stream of `batch_rows`-row
    batches, LZ4-compressed. Runs are written and read once by the same job, so Parquet's encoding buys
    nothing there: measured on 25k pages, writing and reading a run costs 0.47 CPU-s as IPC + LZ4 and 1.21
    as Parquet + zstd."""
    return _ipc_lz4_bytes(to_table(docs), batch_rows)


def _ipc_lz4_bytes(table: pa.Table, batch_rows: int) -> bytes:
    """A table as an Arrow IPC stream of `batch_rows`-row batches, LZ4-compressed (the build's temporary
    files: written and read once by the same job)."""
    buf = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.ipc.new_stream(buf, table.schema, options=options) as writer:
        for batch in table.to_batches(max_chunksize=batch_rows):
            writer.write_batch(batch)
    return buf.getvalue()


def iter_run_batches(stream: Any) -> Iterator[pa.RecordBatch]:
    """The batches of a run written by `run_bytes`, one at a time (memory: one batch)."""
    yield from pa.ipc.open_stream(stream)


LINE_HASHES = "line_hashes"
_READ_CHUNK_SCHEMA = SCHEMA.append(pa.field(LINE_HASHES, pa.list_(pa.uint64())))


def read_chunk_bytes(docs: list[DocumentLike], line_hashes: list[list[int]] | None, batch_rows: int) -> bytes:
    """A build's temporary read chunk: documents as pass 1 of the build read them, in input order, with
    each one's line hashes (an empty list when the source does not dedup lines), so that pass 2 neither
    parses the input again nor hashes its lines twice. Arrow IPC stream + LZ4, like the sorted runs."""
    if line_hashes is not None and len(line_hashes) != len(docs):
        raise ValueError(f"got line hashes for {len(line_hashes)} of {len(docs)} documents")
    table = to_table(docs, sort=False)
    hashes = pa.array(line_hashes if line_hashes is not None else [[]] * len(docs), pa.list_(pa.uint64()))
    return _ipc_lz4_bytes(table.append_column(_READ_CHUNK_SCHEMA.field(LINE_HASHES), hashes), batch_rows)


def iter_read_chunk(stream: Any) -> Iterator[tuple[list[dict[str, Any]], list[list[int]]]]:
    """The batches of a read chunk (`read_chunk_bytes`) as (rows of `SCHEMA`'s columns, line hashes per
    row); `row_meta` rebuilds a row's meta. Memory: one batch."""
    reader = pa.ipc.open_stream(stream)
    if reader.schema != _READ_CHUNK_SCHEMA:
        raise ValueError(f"not a read chunk: schema {reader.schema}")
    for batch in reader:
        hashes = batch.column(LINE_HASHES)
        offsets = hashes.offsets.to_numpy()
        values = hashes.values.to_numpy()
        per_row = [values[offsets[i] : offsets[i + 1]].tolist() for i in range(batch.num_rows)]
        yield batch.drop_columns([LINE_HASHES]).to_pylist(), per_row


class PartWriter:
    """Rows of `SCHEMA` (one-row views of record batches, already in id order) streamed into the parts
    `part-GGGGG-SSS.parquet` of a group.

    Row groups of `ROW_GROUP_ROWS` rows, fewer when they reach `ROW_GROUP_TEXT_BYTES` of text; a new part
    starts once the current one holds `max_text_bytes` of text (checked at row-group boundaries), so the cuts
    depend on the rows only and the same rows give the same files. A row group is assembled from slices of
    the batches the rows came from (consecutive rows of one batch are one slice) and copied once, at its
    final size: no Python objects per row, and no growing buffers left behind in the allocator. Each part
    is written to a local temporary file and moved to `folder` atomically. Memory: one row group.
    """

    def __init__(self, folder: str, group: int, max_text_bytes: int) -> None:
        self.folder = folder
        self.group = group
        self.max_text_bytes = max_text_bytes
        self.entries: list[dict[str, Any]] = []
        self._slices: list[list[Any]] = []  # [batch, offset, length]
        self._rows = 0
        self._writer: pq.ParquetWriter | None = None
        self._local = ""
        self._part_rows = 0
        self._part_text = 0
        self._group_text = 0

    def add(self, batch: pa.RecordBatch, row: int, text_bytes: int) -> None:
        last = self._slices[-1] if self._slices else None
        if last is not None and last[0] is batch and last[1] + last[2] == row:
            last[2] += 1
        else:
            self._slices.append([batch, row, 1])
        self._rows += 1
        self._part_text += text_bytes
        self._group_text += text_bytes
        if self._rows >= ROW_GROUP_ROWS or self._group_text >= ROW_GROUP_TEXT_BYTES:
            self._write_group()
            if self._part_text >= self.max_text_bytes:
                self._close_part()

    def _write_group(self) -> None:
        if not self._slices:
            return
        if self._writer is None:
            fd, self._local = tempfile.mkstemp(prefix="corral-part-", suffix=".parquet")
            os.close(fd)
            self._writer = pq.ParquetWriter(self._local, SCHEMA, **_PARQUET_SETTINGS)
        table = pa.Table.from_batches([b.slice(o, n) for b, o, n in self._slices], schema=SCHEMA)
        self._writer.write_table(table.combine_chunks(), row_group_size=ROW_GROUP_ROWS)
        self._part_rows += self._rows
        self._slices, self._rows, self._group_text = [], 0, 0
        del table
        pa.default_memory_pool().release_unused()

    def _close_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        name = part_name(self.group, len(self.entries))
        self.entries.append(
            {
                "file": name,
                "rows": self._part_rows,
                "bytes": os.path.getsize(self._local),
                "sha256": storage.sha256_of(self._local),
                "text_bytes": self._part_text,
            }
        )
        storage.copy_atomic(self._local, storage.join(self.folder, name))
        os.remove(self._local)
        self._writer, self._part_rows, self._part_text = None, 0, 0

    def close(self) -> list[dict[str, Any]]:
        """Flush the last row group and part; returns the parts' manifest entries."""
        self._write_group()
        self._close_part()
        return self.entries


def row_meta(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's meta again as one dict: the `meta` JSON plus the non-null meta columns."""
    meta = json.loads(row["meta"]) if row.get("meta") else {}
    for key in COLUMNS_FROM_META:
        if row.get(key) is not None:
            meta[key] = row[key]
    return meta


class InputEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    bytes: int
    read: int | None = None  # records the readers counted in this file (None: not measured per file)


class PartEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str
    rows: int
    bytes: int
    sha256: str
    text_bytes: int | None = None


class DeadLetterEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = DEAD_LETTERS
    count: int = 0


class CorpusManifest(BaseModel):
    """`corpus/<source>/manifest.json`: what was read, what was kept, why the rest was dropped."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    source: str
    reader: str
    weight: float
    seed: int
    inputs: list[InputEntry]
    settings: dict[str, Any]  # the effective stage settings (recipe defaults + the manifest's own keys)
    models: dict[str, str] = Field(default_factory=dict)  # sha256 of every model file the stages used
    versions: dict[str, str] = Field(default_factory=dict)
    read: int
    kept: int
    dropped: dict[str, int] = Field(default_factory=dict)
    repaired: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, int] = Field(default_factory=dict)
    dead_letters: DeadLetterEntry = Field(default_factory=DeadLetterEntry)
    parts: list[PartEntry] = Field(default_factory=list)
    paths: dict[str, str] = Field(default_factory=dict)  # which implementation ran where there is a choice
    near_duplicate_clusters: dict[str, int] = Field(default_factory=dict)  # cluster size → clusters

    @classmethod
    def from_counts(
        cls, header: Mapping[str, Any], counts: Mapping[str, int], parts: list[dict], dead_letters: int
    ) -> CorpusManifest:
        """Build a manifest from summed counts; refuses one whose balance does not hold."""
        read = int(counts.get(READ, 0))
        kept = int(counts.get(KEPT, 0))

        def section(prefix: str) -> dict[str, int]:
            return {
                k.removeprefix(prefix): int(v)
                for k, v in sorted(counts.items())
                if k.startswith(prefix) and v
            }

        drops = section(_DROPPED)
        if read != kept + sum(drops.values()):
            raise BalanceError(
                f"accounting does not balance for source {header.get('source')!r}: read={read} kept={kept} "
                f"dropped={drops} (sum {sum(drops.values())})"
            )
        return cls(
            **header,
            read=read,
            kept=kept,
            dropped=drops,
            repaired=section(_REPAIRED),
            stats=section(_STAT),
            dead_letters=DeadLetterEntry(count=dead_letters),
            parts=sorted((PartEntry(**p) for p in parts), key=lambda p: p.file),
        )

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self, folder: str) -> None:
        storage.write_text_atomic(storage.join(folder, MANIFEST), self.to_json())

    @classmethod
    def read_from(cls, folder: str) -> CorpusManifest:
        path = storage.join(folder, MANIFEST)
        try:
            return cls.model_validate_json(storage.read_bytes(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no corpus manifest (is the source built?)") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not a corpus manifest: {exc}") from None


class BalanceError(RuntimeError):
    """`read != kept + Σ dropped` for a source: documents were lost or counted twice."""


def is_complete(folder: str) -> bool:
    return storage.exists(storage.join(folder, MANIFEST))


def manifest_sha256(folder: str) -> str:
    return storage.sha256_of(storage.join(folder, MANIFEST))


def part_paths(folder: str, manifest: CorpusManifest | None = None) -> list[str]:
    """The source's Parquet parts in manifest order."""
    manifest = manifest or CorpusManifest.read_from(folder)
    return [storage.join(folder, p.file) for p in manifest.parts]


def iter_batches(
    folder: str, columns: list[str] | None = None, batch_rows: int = 1024
) -> Iterator[pa.RecordBatch]:
    """Record batches of a complete source, part after part, rows in id order (streamed, bounded memory)."""
    for path in part_paths(folder):
        with storage.open_read(path) as f:
            pf = pq.ParquetFile(f)
            yield from pf.iter_batches(batch_size=batch_rows, columns=columns)


def row_groups(folder: str, manifest: CorpusManifest | None = None) -> list[tuple[str, int, int]]:
    """`(part path, row-group index, rows)` of every row group of a complete source, in manifest order
    (footers only), for readers that visit a subset of a source (the tokenizer's sample)."""
    out = []
    for path in part_paths(folder, manifest):
        with storage.open_read(path) as f:
            meta = pq.ParquetFile(f).metadata
        out += [(path, i, meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
    return out


def iter_row_group(
    path: str, index: int, columns: list[str] | None = None, batch_rows: int = 1024
) -> Iterator[pa.RecordBatch]:
    """Record batches of one row group of a part (streamed)."""
    with storage.open_read(path) as f:
        yield from pq.ParquetFile(f).iter_batches(batch_size=batch_rows, row_groups=[index], columns=columns)


def iter_rows(folder: str, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a complete source as dicts (see `row_meta` to rebuild a document's meta)."""
    for batch in iter_batches(folder, columns):
        yield from batch.to_pylist()
