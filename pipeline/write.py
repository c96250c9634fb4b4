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
import json
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam

from filters.document import Document
from manifests import storage
from manifests.corpus import DEAD_LETTERS, MANIFEST, BalanceError, CorpusManifest, parquet_bytes, part_name
from pipeline.common import COUNTS, KEPT, CountingDoFn

TMP = "_tmp"


def num_parts(total_bytes: int, shard_bytes: int) -> int:
    """Parts for a source: from its data size only (never from the number of workers)."""
    return max(1, math.ceil(total_bytes / shard_bytes))


def part_of(doc_id: str, parts: int) -> int:
    return int.from_bytes(hashlib.sha1(doc_id.encode("utf-8")).digest()[:8], "little") % parts


class WritePartFn(CountingDoFn):
    """Writes one part (all documents hashed to it) under `_tmp/`; returns its description."""

    def __init__(self, source: str, tmp_dir: str) -> None:
        super().__init__(source)
        self.tmp_dir = tmp_dir

    def process(self, item: tuple[tuple[int, int], Iterable[Document]]) -> Iterator[Any]:
        (index, parts), docs = item
        rows = list(docs)
        data = parquet_bytes(rows)
        name = part_name(index, parts)
        storage.write_atomic(storage.join(self.tmp_dir, name), data)
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
        dead_sorted = sorted(dead, key=_position_key)
        try:
            manifest = CorpusManifest.from_counts(
                {"source": self.source, **self.header}, counts, parts, len(dead_sorted)
            )
        except BalanceError as exc:
            raise RuntimeError(f"{exc}; refusing to write {MANIFEST}") from None
        tmp_dir = storage.join(self.out_dir, TMP)
        for p in manifest.parts:
            storage.rename(storage.join(tmp_dir, p.file), storage.join(self.out_dir, p.file))
        lines = "".join(json.dumps(d, sort_keys=True, ensure_ascii=False) + "\n" for d in dead_sorted)
        storage.write_text_atomic(storage.join(self.out_dir, DEAD_LETTERS), lines)
        storage.delete(tmp_dir)
        manifest.write(self.out_dir)
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
            >> beam.ParDo(WritePartFn(self.source, storage.join(self.out_dir, TMP))).with_outputs(
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


def clear_output(out_dir: str) -> None:
    """Remove a source's folder, manifest first (so it is never 'complete' while half deleted)."""
    storage.delete(storage.join(out_dir, MANIFEST))
    storage.delete(out_dir)
    if not storage.is_url(out_dir):
        os.makedirs(out_dir, exist_ok=True)
