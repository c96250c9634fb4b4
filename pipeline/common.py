"""Shared Beam plumbing: counted drops per reason, and Beam's `FileSystems` as the storage backend for URLs.

Every stage that drops a document says why: it bumps a Beam `Metrics` counter (logged at the end of a
run) and emits `(key, n)` on the `counts` output, which the writer sums into the source's
`manifest.json`. Counts travel as data rather than as metrics because metrics are not exact on every
runner, and the manifest's `read = kept + Σ dropped` must be exact.
"""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from filters.document import Document
from manifests import storage
from manifests.corpus import KEPT, READ, dropped

COUNTS = "counts"
DEAD = "dead"
__all__ = ["COUNTS", "DEAD", "KEPT", "READ", "dropped"]


class CountingDoFn(beam.DoFn):
    """A DoFn that counts per bundle and emits the totals on the `counts` output in `finish_bundle`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._counts: Counter[str] = Counter()

    def start_bundle(self) -> None:
        self._counts = Counter()

    def count(self, key: str, n: int = 1) -> None:
        if n:
            self._counts[key] += n

    def drop(self, reason: str, n: int = 1) -> None:
        self.count(dropped(reason), n)

    def finish_bundle(self) -> Iterator[Any]:
        for key, n in sorted(self._counts.items()):
            Metrics.counter(f"corral.{self.source}", key).inc(n)
            yield beam.pvalue.TaggedOutput(COUNTS, GlobalWindows.windowed_value((key, n)))
        self._counts = Counter()


class BeamFileSystems:
    """`manifests.storage` backend for URL paths (gs://, s3://, …) through Beam's `FileSystems`."""

    def open_read(self, path: str) -> Any:
        return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def open_write(self, path: str) -> Any:
        return FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)

    def exists(self, path: str) -> bool:
        return FileSystems.exists(path)

    def rename(self, src: str, dst: str) -> None:
        FileSystems.rename([src], [dst])

    def delete(self, path: str) -> None:
        FileSystems.delete([path])

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        found = FileSystems.match([prefix + "*"])[0].metadata_list
        return [m.path[len(prefix) :].split("/", 1)[0] for m in found]


storage.register_backend(BeamFileSystems())


class DocBatch(list):
    """A list of documents (or of `(document, extra)` tuples) that travels through Beam as ONE element.

    Its coder pickles the whole list in one call and estimates its size without encoding it: Beam's
    default coder would pickle every document separately, and sample sizes by encoding whole batches.
    """


def _estimate(value: Any) -> int:
    if isinstance(value, Document):
        return 64 + len(value.id) + len(value.text) + 32 * len(value.meta)
    if isinstance(value, tuple):
        return sum(_estimate(v) for v in value)
    nbytes = getattr(value, "nbytes", None)
    return int(nbytes) if nbytes is not None else 16


def estimate_docs(docs: list[Document]) -> int:
    """Approximate bytes of some documents (Beam's size metrics), without encoding them."""
    return sum(64 + len(d.id) + len(d.text) + 32 * len(d.meta) for d in docs)


def doc_columns(docs: list[Document]) -> tuple[list[str], list[str], list[str], list[dict[str, Any]]]:
    """Documents as four plain lists: pickled in C, with no per-document `__getstate__` call."""
    return [d.id for d in docs], [d.source for d in docs], [d.text for d in docs], [d.meta for d in docs]


def docs_from_columns(
    columns: tuple[list[str], list[str], list[str], list[dict[str, Any]]],
) -> list[Document]:
    """The inverse of `doc_columns`."""
    return [Document(i, s, t, m) for i, s, t, m in zip(*columns, strict=True)]


_COLUMNS, _ROWS = 0, 1


class DocBatchCoder(beam.coders.Coder):
    """Whole-batch pickling (protocol 5), column-wise when the batch holds only Documents.

    Column-wise, a batch pickles as four lists of strings and dicts, about twice as fast both ways as
    a list of dataclass instances. Not deterministic, so never used for keys.
    """

    def encode(self, value: DocBatch) -> bytes:
        if all(type(v) is Document for v in value):
            return pickle.dumps((_COLUMNS, doc_columns(value)), protocol=pickle.HIGHEST_PROTOCOL)
        return pickle.dumps((_ROWS, list(value)), protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> DocBatch:
        kind, payload = pickle.loads(encoded)
        return DocBatch(docs_from_columns(payload) if kind == _COLUMNS else payload)

    def estimate_size(self, value: DocBatch) -> int:
        if all(type(v) is Document for v in value):
            return 8 + estimate_docs(value)
        return 8 + sum(_estimate(v) for v in value)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self) -> type:
        return DocBatch


beam.coders.registry.register_coder(DocBatch, DocBatchCoder)


class BatchDocsFn(beam.DoFn):
    """Groups a bundle's documents into `DocBatch`es of `size` (the last one of a bundle may be shorter).

    Beam's `BatchElements` would do, but its output is a plain list (encoded document by document).
    Batches never cross bundles, so nothing waits for more input; global window only (batch job).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer: list[Any] = []

    def start_bundle(self) -> None:
        self._buffer = []

    def process(self, element: Any) -> Iterator[DocBatch]:
        self._buffer.append(element)
        if len(self._buffer) >= self.size:
            yield DocBatch(self._buffer)
            self._buffer = []

    def finish_bundle(self) -> Iterator[Any]:
        if self._buffer:
            yield GlobalWindows.windowed_value(DocBatch(self._buffer))
        self._buffer = []


def batch_docs(size: int) -> beam.ParDo:
    """`docs → DocBatch`es, typed so that Beam picks `DocBatchCoder`."""
    return beam.ParDo(BatchDocsFn(size)).with_output_types(DocBatch)
