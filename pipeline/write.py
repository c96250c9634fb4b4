"""Outputs of a source: Parquet parts, dead letters, and `manifest.json` written last.

Layout of `<output>/<source>/`: `part-00000-of-00002.parquet` … (rows sorted by id), `dead_letters.jsonl`
(sorted), `manifest.json`. The presence of `manifest.json` means the source is complete: parts are first
written under `_tmp/`, then a single finalize step (which runs only after every part, count and dead
letter exists, because it takes them all as side inputs) renames the parts into place and writes the
manifest atomically. A killed build leaves no manifest, and the launcher clears such a folder before
building it again.

Determinism: the number of parts is derived from the source's total text bytes (`shard_bytes`), a
document's part from the SHA1 of its id, rows within a part are sorted by id, and Parquet is written with
fixed settings and no timestamps, so 1 or N workers give the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from filters.document import Document
from pipeline.common import COUNTS, KEPT, READ, CountingDoFn, write_atomic

MANIFEST = "manifest.json"
DEAD_LETTERS = "dead_letters.jsonl"
TMP = "_tmp"
ROW_GROUP_ROWS = 8192

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
_COLUMNS_FROM_META = ("url", "title", "lang", "lang_score", "perplexity", "bucket")


def num_parts(total_bytes: int, shard_bytes: int) -> int:
    """Parts for a source: from its data size only (never from the number of workers)."""
    return max(1, math.ceil(total_bytes / shard_bytes))


def part_of(doc_id: str, parts: int) -> int:
    return int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little") % parts


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def parquet_bytes(docs: list[Document]) -> bytes:
    """A Parquet file of documents sorted by id, written with fixed settings (same rows → same bytes)."""
    docs = sorted(docs, key=lambda d: d.id)
    cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for d in docs:
        cols["id"].append(d.id)
        cols["source"].append(d.source)
        cols["text"].append(d.text)
        for key in _COLUMNS_FROM_META:
            value = d.meta.get(key)
            cols[key].append(_float(value) if key in ("lang_score", "perplexity") else value)
        rest = {k: v for k, v in d.meta.items() if k not in _COLUMNS_FROM_META}
        cols["meta"].append(json.dumps(rest, sort_keys=True, ensure_ascii=False, default=str))
    table = pa.table(cols, schema=SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=ROW_GROUP_ROWS, compression="zstd", compression_level=3)
    return buf.getvalue()


class WritePartFn(CountingDoFn):
    """Writes one part (all documents hashed to it) under `_tmp/`; returns its description."""

    def __init__(self, source: str, tmp_dir: str) -> None:
        super().__init__(source)
        self.tmp_dir = tmp_dir

    def process(self, item: tuple[tuple[int, int], Iterable[Document]]) -> Iterator[Any]:
        (index, parts), docs = item
        rows = list(docs)
        data = parquet_bytes(rows)
        name = f"part-{index:05d}-of-{parts:05d}.parquet"
        write_atomic(FileSystems.join(self.tmp_dir, name), data)
        self.count(KEPT, len(rows))
        yield {
            "file": name,
            "rows": len(rows),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }


def _position_key(dl: dict[str, Any]) -> tuple[str, int, str, str, str]:
    pos = dl.get("position")
    return (
        str(dl.get("file")),
        pos if isinstance(pos, int) else -1,
        str(pos),
        dl["reason"],
        dl.get("detail", ""),
    )


class FinalizeFn(beam.DoFn):
    """Moves parts into place, writes dead letters and, last, `manifest.json` (with the balance checked)."""

    def __init__(self, source: str, out_dir: str, header: dict[str, Any]) -> None:
        self.source = source
        self.out_dir = out_dir
        self.header = header

    def process(self, _: Any, parts: list[dict], counts: dict[str, int], dead: list[dict]) -> Iterator[str]:
        tmp_dir = FileSystems.join(self.out_dir, TMP)
        parts = sorted(parts, key=lambda p: p["file"])
        for p in parts:
            FileSystems.rename(
                [FileSystems.join(tmp_dir, p["file"])], [FileSystems.join(self.out_dir, p["file"])]
            )
        dead_sorted = sorted(dead, key=_position_key)
        lines = "".join(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n" for d in dead_sorted)
        write_atomic(FileSystems.join(self.out_dir, DEAD_LETTERS), lines.encode("utf-8"))
        read = counts.get(READ, 0)
        kept = counts.get(KEPT, 0)
        drops = {k.removeprefix("dropped."): v for k, v in sorted(counts.items()) if k.startswith("dropped.")}
        if read != kept + sum(drops.values()):
            raise RuntimeError(
                f"accounting does not balance for source {self.source!r}: read={read} kept={kept} "
                f"dropped={drops} (sum {sum(drops.values())}); refusing to write {MANIFEST}"
            )
        manifest = {
            "source": self.source,
            **self.header,
            "read": read,
            "kept": kept,
            "dropped": drops,
            "repaired": {
                k.removeprefix("repaired."): v for k, v in sorted(counts.items()) if k.startswith("repaired.")
            },
            "stats": {k.removeprefix("stat."): v for k, v in sorted(counts.items()) if k.startswith("stat.")},
            "dead_letters": {"file": DEAD_LETTERS, "count": len(dead_sorted)},
            "parts": parts,
        }
        if FileSystems.exists(tmp_dir):
            FileSystems.delete([tmp_dir])
        data = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        write_atomic(FileSystems.join(self.out_dir, MANIFEST), data.encode("utf-8"))
        yield self.source


class WriteSource(beam.PTransform):
    """Documents + counts + dead letters of one source → its output folder, manifest last."""

    def __init__(self, source: str, out_dir: str, shard_bytes: int, header: dict[str, Any]) -> None:
        super().__init__()
        self.source = source
        self.out_dir = out_dir
        self.shard_bytes = shard_bytes
        self.header = header

    def expand(self, inputs: dict[str, Any]) -> beam.PCollection:
        docs: beam.PCollection = inputs["docs"]
        counts: beam.PCollection = inputs["counts"]
        dead: beam.PCollection = inputs["dead"]
        shard_bytes = self.shard_bytes
        total = (
            docs
            | "TextBytes" >> beam.Map(lambda d: len(d.text.encode("utf-8", errors="replace")))
            | "TotalBytes" >> beam.CombineGlobally(sum)
        )
        written = (
            docs
            | "AssignPart"
            >> beam.Map(
                lambda d, t: ((part_of(d.id, num_parts(t, shard_bytes)), num_parts(t, shard_bytes)), d),
                t=beam.pvalue.AsSingleton(total),
            )
            | "GroupPart" >> beam.GroupByKey()
            | "WritePart"
            >> beam.ParDo(WritePartFn(self.source, FileSystems.join(self.out_dir, TMP))).with_outputs(
                COUNTS, main="parts"
            )
        )
        summed = (
            (counts, written[COUNTS]) | "AllCounts" >> beam.Flatten() | "SumCounts" >> beam.CombinePerKey(sum)
        )
        return (
            docs.pipeline
            | "Once" >> beam.Create([None])
            | "Finalize"
            >> beam.ParDo(
                FinalizeFn(self.source, self.out_dir, self.header),
                parts=beam.pvalue.AsList(written.parts),
                counts=beam.pvalue.AsDict(summed),
                dead=beam.pvalue.AsList(dead),
            )
        )


def is_complete(out_dir: str) -> bool:
    return FileSystems.exists(FileSystems.join(out_dir, MANIFEST))


def clear_output(out_dir: str) -> None:
    """Remove a source's folder, manifest first (so it is never 'complete' while half deleted)."""
    manifest = FileSystems.join(out_dir, MANIFEST)
    if FileSystems.exists(manifest):
        FileSystems.delete([manifest])
    if FileSystems.exists(out_dir):
        FileSystems.delete([out_dir])
    if "://" not in out_dir:
        os.makedirs(out_dir, exist_ok=True)
