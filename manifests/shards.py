"""The training shards `corral shards` writes and the trainer memory-maps.

Layout of a shards folder: `train/shard-NNNNN.arrow`, `validation/shard-NNNNN.arrow`, `lineage.parquet`
(doc id → where it landed) and `manifest.json`, written last.

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
from pydantic import BaseModel, ConfigDict, Field

from manifests import storage

MANIFEST = "manifest.json"
LINEAGE = "lineage.parquet"
TRAIN = "train"
VALIDATION = "validation"
MAX_BATCH_TOKENS = 1 << 26
UINT16_MAX_VOCAB = 65535


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
) -> ShardFile:
    """Write one shard file atomically; returns its manifest entry (sha256, rows, tokens per source)."""
    if not (len(tokens) == len(source_ids) == len(doc_ids)):
        raise ValueError(f"{len(tokens)} token rows, {len(source_ids)} sources, {len(doc_ids)} ids")
    sink = pa.BufferOutputStream()
    schema = shard_schema(vocab_size)
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


class TokenizerRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str
    vocab_size: int
    bos_id: int = 1
    eos_id: int = 2


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
