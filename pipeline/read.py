"""Read transforms: one composite transform per source that runs its reader (and recipe) on each file.

Files are listed on the launcher with `FileSystems.match` (so `gs://` globs work), reshuffled so that
workers split them, and each file is streamed by the reader from `filters/sources/`. A file that breaks
mid-stream (`ReaderError`) keeps the documents read before the break; the break itself becomes a dead
letter with the file and position, and the job goes on with the other files.

Counting: `read` is every record a reader looked at: documents it emitted plus records it dropped or
dead-lettered, plus one per file that broke. The recipe's drops are counted after that, like any stage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from filters.document import Document
from filters.sources.base import DeadLetter, ReaderError, ReadStats
from filters.sources.registry import get_reader
from manifests.schema import Manifest, ManifestError
from pipeline.common import COUNTS, DEAD, READ, CountingDoFn


@dataclass(frozen=True)
class InputFile:
    """One matched input: its path, size in bytes, and whether it is a local directory (dir readers)."""

    path: str
    size: int
    is_dir: bool = False


def match_inputs(manifest: Manifest, source: str) -> list[InputFile]:
    """Expand a source's globs; a glob that matches nothing is refused, naming its manifest key."""
    cfg = manifest.sources[source]
    spec = get_reader(cfg.reader)
    found: dict[str, InputFile] = {}
    for i, pattern in enumerate(manifest.inputs(source)):
        key = f"sources.{source}.inputs[{i}]"
        if "://" not in pattern and os.path.isdir(pattern):
            matched = [InputFile(pattern, 0, True)]
        else:
            try:
                result = FileSystems.match([pattern])[0]
            except Exception as exc:  # noqa: BLE001 - Beam raises BeamIOError / ValueError per scheme
                raise ManifestError(manifest.path, key, f"cannot list {pattern!r}: {exc}") from None
            matched = []
            for meta in result.metadata_list:
                is_dir = "://" not in meta.path and os.path.isdir(meta.path)
                matched.append(InputFile(meta.path, 0 if is_dir else meta.size_in_bytes, is_dir))
        if not matched:
            raise ManifestError(manifest.path, key, f"no file matches {pattern!r}")
        for item in matched:
            if item.is_dir and spec.dir_reader is None:
                raise ManifestError(
                    manifest.path,
                    key,
                    f"{item.path} is a directory and reader {cfg.reader!r} reads files only",
                )
            found[item.path] = item
    return [found[p] for p in sorted(found)]


class ReadFileFn(CountingDoFn):
    """Runs one reader (+ the source's recipe) over one file; emits documents, counts and dead letters."""

    def __init__(self, source: str, reader: str, flush_every: int = 1000) -> None:
        super().__init__(source)
        self.reader_name = reader
        self.flush_every = flush_every

    def setup(self) -> None:
        spec = get_reader(self.reader_name)
        self._spec = spec
        self._read = spec.load_reader()
        self._recipe = spec.load_recipe()
        self._read_dir = spec.load_dir_reader()

    def _flush_dead(self, stats: ReadStats) -> Iterator[Any]:
        for dl in stats.dead_letters:
            yield beam.pvalue.TaggedOutput(DEAD, dl.to_json_dict())
        stats.dead_letters.clear()

    def _documents(self, item: InputFile, stats: ReadStats) -> Iterator[Document]:
        if item.is_dir:
            assert self._read_dir is not None
            yield from self._read_dir(item.path, stats)
            return
        with FileSystems.open(item.path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
            yield from self._read(stream, item.path, stats)

    def process(self, item: InputFile) -> Iterator[Any]:
        stats = ReadStats()
        recipe_stats = ReadStats()
        n = 0
        try:
            for doc in self._documents(item, stats):
                doc.source = self._spec.source
                if self._recipe is not None:
                    doc = self._recipe(doc, recipe_stats)
                if doc is not None:
                    yield doc
                n += 1
                if n % self.flush_every == 0:
                    yield from self._flush_dead(stats)
                    yield from self._flush_dead(recipe_stats)
        except ReaderError as exc:
            broken = DeadLetter(exc.name, exc.position, "reader_error", exc.message)
            yield beam.pvalue.TaggedOutput(DEAD, broken.to_json_dict())
            self.count(READ)
            self.drop("reader_error")
        except (OSError, ValueError, UnicodeError, EOFError) as exc:
            # A failure a reader did not turn into a ReaderError: still a dead letter, never a lost file.
            broken = DeadLetter(item.path, None, "reader_crash", f"{type(exc).__name__}: {exc}")
            yield beam.pvalue.TaggedOutput(DEAD, broken.to_json_dict())
            self.count(READ)
            self.drop("reader_crash")
        yield from self._flush_dead(stats)
        yield from self._flush_dead(recipe_stats)
        if stats.emitted != n:
            raise RuntimeError(
                f"reader {self.reader_name!r} yielded {n} documents from {item.path} but counted "
                f"stats.emitted={stats.emitted}: the reader breaks the counting contract"
            )
        self.count(READ, stats.emitted + sum(stats.dropped.values()))
        for reason, k in stats.dropped.items():
            self.drop(reason, k)
        for reason, k in recipe_stats.dropped.items():
            self.drop(reason, k)
        for what, k in (stats.repaired + recipe_stats.repaired).items():
            self.count(f"repaired.{what}", k)


class ReadSource(beam.PTransform):
    """`files → documents` for one source; outputs: main (Documents), `counts`, `dead` (dead letters)."""

    def __init__(self, source: str, reader: str, files: list[InputFile]) -> None:
        super().__init__(label=f"Read[{source}]")
        self.source = source
        self.reader = reader
        self.files = files

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.pvalue.DoOutputsTuple:
        return (
            pbegin
            | "Files" >> beam.Create(self.files)
            | "Spread" >> beam.Reshuffle()
            | "Read"
            >> beam.ParDo(ReadFileFn(self.source, self.reader)).with_outputs(COUNTS, DEAD, main="docs")
        )
