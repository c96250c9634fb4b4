"""The training shards `corral shards` writes and the trainer memory-maps.

Layout of a shards folder: `train/shard-NNNNN.arrow`, `validation/shard-NNNNN.arrow`, `lineage.parquet`
(doc id → where it landed) and `manifest.json`, written last. `lineage.parquet` is a Parquet dataset
folder with one part per shard file (`lineage.parquet/train-shard-NNNNN.parquet`: `doc_id, source, file,
row, repeat`), so `pyarrow.parquet.read_table("…/lineage.parquet")` reads it whole and a takedown
rewrites only the parts of the shards it touches. `tokenized/<source>/` holds the per-source token cache
(`tokenized.json` + Arrow files, see `TokenizedSource`) that every mixture of the same corpus and
tokenizer reuses.

Shard files are Arrow IPC *file* format, uncompressed (compressed IPC cannot be memory-mapped without a
copy), with three columns: `tokens: list<uint16>` (`uint32` when the vocabulary has more than 65,535
pieces), `source: dictionary<int16, string>` whose dictionary is the manifest's `source_names` in that
order in every batch (so a row's source id is its dictionary index, the same in every file), and
`doc_id: string`. Record batches hold at most `MAX_BATCH_TOKENS` tokens, far below the 2^31 a list's
int32 offsets allow. Each row is one document (or one repeat of it) and ends with EOS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from manifests import storage

MANIFEST = "manifest.json"
LINEAGE = "lineage.parquet"
TOKENIZED = "tokenized"
TOKENIZED_INDEX = "tokenized.json"
DROPPED_IDS = "dropped_ids.txt"
TRAIN = "train"
VALIDATION = "validation"
MAX_BATCH_TOKENS = 1 << 26
UINT16_MAX_VOCAB = 65535
TOKENIZER_METADATA_KEY = "corral.tokenizer_sha256"  # schema metadata of a shard file


def token_type(vocab_size: int) -> pa.DataType:
    """uint16 ids while the vocabulary fits (≤ 65,535 pieces), else uint32."""
    return pa.uint16() if vocab_size <= UINT16_MAX_VOCAB else pa.uint32()


def shard_schema(vocab_size: int) -> pa.Schema:
    return pa.schema(
        [
            ("tokens", pa.list_(token_type(vocab_size))),
            ("source", pa.dictionary(pa.int16(), pa.string())),
            ("doc_id", pa.string()),
        ]
    )


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.arrow"


class ShardFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str  # relative to the shards folder, e.g. "train/shard-00000.arrow"
    sha256: str
    rows: int
    tokens: int
    tokens_per_source: dict[str, int]
    lineage: str = ""  # its part of the lineage index, relative to the shards folder
    lineage_sha256: str = ""


def _batches(
    tokens: Sequence[np.ndarray],
    source_ids: np.ndarray,
    doc_ids: Sequence[str],
    vocab_size: int,
    source_names: Sequence[str],
) -> list[pa.RecordBatch]:
    schema = shard_schema(vocab_size)
    value_type = np.uint16 if vocab_size <= UINT16_MAX_VOCAB else np.uint32
    dictionary = pa.array(list(source_names), pa.string())
    out: list[pa.RecordBatch] = []
    start = 0
    n = len(tokens)
    while start < n:
        stop, total = start, 0
        while stop < n and (stop == start or total + len(tokens[stop]) <= MAX_BATCH_TOKENS):
            total += len(tokens[stop])
            stop += 1
        lengths = np.fromiter((len(t) for t in tokens[start:stop]), dtype=np.int64, count=stop - start)
        offsets = np.zeros(stop - start + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.concatenate([np.asarray(t, dtype=value_type) for t in tokens[start:stop]])
        token_col = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))
        source_col = pa.DictionaryArray.from_arrays(
            pa.array(np.asarray(source_ids[start:stop], dtype=np.int16)), dictionary
        )
        out.append(
            pa.RecordBatch.from_arrays(
                [token_col, source_col, pa.array(list(doc_ids[start:stop]), pa.string())], schema=schema
            )
        )
        start = stop
    return out


def write_shard(
    folder: str,
    relative: str,
    tokens: Sequence[np.ndarray],
    source_ids: np.ndarray,
    doc_ids: Sequence[str],
    vocab_size: int,
    source_names: Sequence[str],
    tokenizer_sha256: str | None = None,
) -> ShardFile:
    """Write one shard file atomically; returns its manifest entry (sha256, rows, tokens per source).

    `tokenizer_sha256`, when given, is stamped into the file's schema metadata, so a shard file that
    strays into another tokenizer's folder is recognised on its own (the trainer checks it)."""
    if not (len(tokens) == len(source_ids) == len(doc_ids)):
        raise ValueError(f"{len(tokens)} token rows, {len(source_ids)} sources, {len(doc_ids)} ids")
    sink = pa.BufferOutputStream()
    schema = shard_schema(vocab_size)
    if tokenizer_sha256 is not None:
        schema = schema.with_metadata({TOKENIZER_METADATA_KEY: tokenizer_sha256})
    with pa.ipc.new_file(sink, schema, options=pa.ipc.IpcWriteOptions(compression=None)) as writer:
        for batch in _batches(tokens, source_ids, doc_ids, vocab_size, source_names):
            writer.write_batch(batch)
    data = sink.getvalue().to_pybytes()
    storage.write_atomic(storage.join(folder, *relative.split("/")), data)
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    per_source = np.bincount(
        np.asarray(source_ids, dtype=np.int64), weights=lengths, minlength=len(source_names)
    )
    return ShardFile(
        file=relative,
        sha256=storage.sha256_bytes(data),
        rows=len(tokens),
        tokens=int(lengths.sum()),
        tokens_per_source={name: int(per_source[i]) for i, name in enumerate(source_names) if per_source[i]},
    )


def open_shard(path: str) -> pa.ipc.RecordBatchFileReader:
    """A memory-mapped reader of a local shard file (zero-copy: the file is uncompressed)."""
    return pa.ipc.open_file(pa.memory_map(os.fspath(path), "r"))


def shard_tokenizer_sha256(reader: pa.ipc.RecordBatchFileReader) -> str | None:
    """The tokenizer sha256 stamped into a shard file by `write_shard`, or None for an unstamped file."""
    value = (reader.schema.metadata or {}).get(TOKENIZER_METADATA_KEY.encode())
    return value.decode() if value is not None else None


class SourceMix(BaseModel):
    """One source in the mixture: the weight asked for and what the training stream holds."""

    model_config = ConfigDict(extra="forbid")

    weight: float  # the manifest's weight, normalised: the token share asked for (LLaMA Table 1)
    target: int  # tokens of this source the training stream should hold (weight × total_tokens)
    tokens: int  # tokens of this source the training stream holds
    achieved: float  # tokens / all training tokens: the share reached
    epochs: float  # tokens / unique_tokens: how often the stream goes over the source
    unique_tokens: int  # tokens of the source's training documents, each counted once (EOS included)
    documents: int  # training documents of the source, each counted once
    rows: int = 0  # rows in the training stream (whole repeats + the fractional sample)
    validation_tokens: int = 0
    validation_documents: int = 0
    skipped_empty: int = 0  # documents that encoded to zero tokens
    max_document_tokens: int = 0  # the longest training document (EOS included)
    # Tokens of the document where the fractional sample stops: the token error of this source is at
    # most half of it (whole documents cannot do better), 0 when the epochs are a whole number.
    boundary_document_tokens: int = 0
    dropped_documents: int = 0  # training documents removed by takedowns (`--drop-ids`)


class TokenizerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str
    vocab_size: int
    bos_id: int = 1
    eos_id: int = 2
    path: str = ""  # the tokenizer folder the shards were made with (for `corral shards inspect`)


class ShardManifest(BaseModel):
    """`shards/manifest.json`."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    tokenizer: TokenizerRef
    token_type: str  # "uint16" or "uint32"
    eos_appended: bool = True
    bos_prepended: bool = False
    seed: int
    total_tokens: int
    validation_fraction: float
    max_epochs: float
    shard_tokens: int
    source_names: list[str]  # dictionary order of the `source` column
    sources: dict[str, SourceMix]
    train: list[ShardFile]
    validation: list[ShardFile] = Field(default_factory=list)
    corpus_manifests: dict[str, str] = Field(default_factory=dict)  # source → sha256 of its manifest.json
    lineage: str = LINEAGE
    notes: list[str] = Field(default_factory=list)
    mix_key: str = ""  # sha256 of every input of the mix: a rerun with the same key changes nothing
    tokenized: dict[str, str] = Field(default_factory=dict)  # source → sha256 of its tokenized.json
    dropped_ids: str = ""  # file of the ids removed by takedowns (relative), "" when none
    extra: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self, folder: str) -> None:
        storage.write_text_atomic(storage.join(folder, MANIFEST), self.to_json())

    @classmethod
    def read_from(cls, folder: str) -> ShardManifest:
        path = storage.join(folder, MANIFEST)
        try:
            return cls.model_validate_json(storage.read_bytes(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no shard manifest; run `corral shards --manifest …`") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not a shard manifest: {exc}") from None

    @property
    def train_tokens(self) -> int:
        return sum(f.tokens for f in self.train)


def manifest_sha256(folder: str) -> str:
    return storage.sha256_of(storage.join(folder, MANIFEST))


# ------------------------------------------------------------------------------- lineage index

LINEAGE_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("file", pa.string()),  # the shard file, relative to the shards folder
        ("row", pa.int64()),  # row in that file
        ("repeat", pa.int32()),  # 0 for the first copy of a document, 1 for the second, …
    ]
)


def lineage_name(shard_relative: str) -> str:
    """`train/shard-00003.arrow` → `lineage.parquet/train-shard-00003.parquet`."""
    stem = shard_relative.removesuffix(".arrow").replace("/", "-")
    return f"{LINEAGE}/{stem}.parquet"


def write_lineage(
    folder: str, shard_relative: str, doc_ids: Sequence[str], sources: Sequence[str], repeats: np.ndarray
) -> tuple[str, str]:
    """Write the lineage part of one shard (rows in shard order); returns (relative path, sha256)."""
    table = pa.table(
        {
            "doc_id": pa.array(list(doc_ids), pa.string()),
            "source": pa.array(list(sources), pa.string()),
            "file": pa.array([shard_relative] * len(doc_ids), pa.string()),
            "row": pa.array(np.arange(len(doc_ids), dtype=np.int64)),
            "repeat": pa.array(np.asarray(repeats, dtype=np.int32)),
        },
        schema=LINEAGE_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=3, row_group_size=1 << 20)
    data = sink.getvalue().to_pybytes()
    relative = lineage_name(shard_relative)
    storage.write_atomic(storage.join(folder, *relative.split("/")), data)
    return relative, storage.sha256_bytes(data)


def read_lineage(
    folder: str, manifest: ShardManifest | None = None, columns: list[str] | None = None
) -> pa.Table:
    """The whole lineage index of a shards folder (every part the manifest lists), in manifest order."""
    manifest = manifest or ShardManifest.read_from(folder)
    tables = []
    for entry in [*manifest.train, *manifest.validation]:
        if entry.lineage:
            with storage.open_read(storage.join(folder, *entry.lineage.split("/"))) as f:
                tables.append(pq.read_table(f, columns=columns))
    if not tables:
        return (
            LINEAGE_SCHEMA.empty_table() if columns is None else LINEAGE_SCHEMA.empty_table().select(columns)
        )
    return pa.concat_tables(tables)


# ------------------------------------------------------------------- tokenized documents (the cache)


def tokenized_schema(vocab_size: int, tokenizer_sha256: str = "", source: str = "") -> pa.Schema:
    """One source's documents as token ids, in corpus order (EOS included): `doc_id, tokens`. The
    schema metadata names the tokenizer, so tokens of two tokenizers are never mixed."""
    meta = {TOKENIZER_METADATA_KEY.encode(): tokenizer_sha256.encode(), b"corral.source": source.encode()}
    return pa.schema([("doc_id", pa.string()), ("tokens", pa.list_(token_type(vocab_size)))], metadata=meta)


class TokenizedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str  # relative to the source's tokenized folder
    sha256: str
    rows: int  # documents (those with at least one token)
    tokens: int  # EOS included
    skipped_empty: int  # documents of this piece that encoded to zero tokens
    max_document_tokens: int = 0
    corpus_part: str  # the corpus Parquet part it was made from
    row_group: int


class TokenizedSource(BaseModel):
    """`tokenized/<source>/tokenized.json`, written last: the cache is valid while the corpus manifest
    and the tokenizer keep these checksums."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    source: str
    corpus_manifest_sha256: str
    tokenizer_sha256: str
    vocab_size: int
    token_type: str
    eos_appended: bool = True
    bos_prepended: bool = False
    documents: int
    tokens: int
    skipped_empty: int
    max_document_tokens: int
    files: list[TokenizedFile]

    def write(self, folder: str) -> None:
        text = json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        storage.write_text_atomic(storage.join(folder, TOKENIZED_INDEX), text)

    @classmethod
    def read_from(cls, folder: str) -> TokenizedSource:
        path = storage.join(folder, TOKENIZED_INDEX)
        try:
            return cls.model_validate_json(storage.read_bytes(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no tokenized source") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not a tokenized source index: {exc}") from None

    def matches(self, corpus_manifest_sha256: str, tokenizer_sha256: str) -> bool:
        return (
            self.corpus_manifest_sha256 == corpus_manifest_sha256
            and self.tokenizer_sha256 == tokenizer_sha256
        )


def tokenized_name(corpus_part: str, row_group: int) -> str:
    return f"{corpus_part.removesuffix('.parquet')}-rg{row_group:05d}.arrow"


def write_tokenized(
    path: str,
    doc_ids: Sequence[str],
    values: np.ndarray,
    offsets: np.ndarray,
    vocab_size: int,
    tokenizer_sha256: str,
    source: str,
) -> str:
    """Write one tokenized Arrow IPC file (uncompressed, batches ≤ `MAX_BATCH_TOKENS`); returns sha256."""
    schema = tokenized_schema(vocab_size, tokenizer_sha256, source)
    value_type = np.uint16 if vocab_size <= UINT16_MAX_VOCAB else np.uint32
    values = np.asarray(values, dtype=value_type)
    offsets = np.asarray(offsets, dtype=np.int64)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, schema, options=pa.ipc.IpcWriteOptions(compression=None)) as writer:
        n, start = len(doc_ids), 0
        while start < n:
            limit = offsets[start] + MAX_BATCH_TOKENS
            stop = max(start + 1, int(np.searchsorted(offsets, limit, side="right")) - 1)
            stop = min(stop, n)
            base = offsets[start]
            local = (offsets[start : stop + 1] - base).astype(np.int32)
            tokens = pa.ListArray.from_arrays(pa.array(local), pa.array(values[base : offsets[stop]]))
            writer.write_batch(
                pa.RecordBatch.from_arrays(
                    [pa.array(list(doc_ids[start:stop]), pa.string()), tokens], schema=schema
                )
            )
            start = stop
    data = sink.getvalue().to_pybytes()
    storage.write_atomic(path, data)
    return storage.sha256_bytes(data)


def read_tokenized(path: str, tokenizer_sha256: str | None = None) -> pa.Table:
    """A tokenized file as a table (memory-mapped when local); refuses one made with another tokenizer."""
    if storage.is_url(path):
        reader = pa.ipc.open_file(pa.py_buffer(storage.read_bytes(path)))
    else:
        reader = pa.ipc.open_file(pa.memory_map(os.fspath(path), "r"))
    stamped = (reader.schema.metadata or {}).get(TOKENIZER_METADATA_KEY.encode(), b"").decode()
    if tokenizer_sha256 is not None and stamped != tokenizer_sha256:
        raise ValueError(f"{path}: tokens of tokenizer {stamped or '?'}, expected {tokenizer_sha256}")
    return reader.read_all()


def list_lengths(column: pa.ChunkedArray | pa.ListArray) -> np.ndarray:
    """Lengths of the lists of a list column without touching the values (int64)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.diff(np.asarray(c.offsets, dtype=np.int64)) for c in chunks]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
