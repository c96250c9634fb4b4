"""The one read path: a reader, its source recipe and the C4 page rules over one input, with counts.

`corral read`, `corral lm` and both passes of the build job read inputs through `SourceFile`, so they
make the same documents of the same file and count the same drops.

Counting: `read` is every record the reader looked at (documents it emitted + records it dropped or
dead-lettered) plus one for a file that broke; every drop after that (recipe, C4 rules) is counted by
reason, so `read = documents yielded + Σ dropped` for the file, exactly. A file that breaks mid-way
(`ReaderError`) keeps the documents read before the break; the break is a dead letter naming the file and
position. An error a reader did not turn into a `ReaderError` becomes a `reader_crash` dead letter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import BinaryIO

from filters.document import Document
from filters.sources.base import DeadLetter, ReaderError, ReadStats
from filters.sources.c4 import clean_c4
from filters.sources.registry import get_reader

Opener = Callable[[str], BinaryIO]


def _open_local(path: str) -> BinaryIO:
    return open(path, "rb")  # noqa: SIM115 - closed by SourceFile


class SourceFile:
    """Documents of one input (file, or directory for the github/arxiv readers), counted.

    Iterate it once; afterwards (or while iterating) `read`, `dropped`, `repaired` and `dead_letters`
    hold the counts. `take_dead_letters()` hands over the dead letters collected so far (to stream them).
    """

    def __init__(
        self,
        reader: str,
        path: str,
        is_dir: bool = False,
        *,
        recipe: bool = True,
        c4_rules: bool = False,
        opener: Opener = _open_local,
    ) -> None:
        self.spec = get_reader(reader)
        self.path = path
        self.is_dir = is_dir
        self.recipe = recipe
        self.c4_rules = c4_rules
        self.opener = opener
        self._reader_stats = ReadStats()
        self._recipe_stats = ReadStats()
        self.broken: DeadLetter | None = None
        self._broken_handed_over = False
        self.yielded = 0

    def _reader_documents(self) -> Iterator[Document]:
        if self.is_dir:
            read_dir = self.spec.load_dir_reader()
            if read_dir is None:
                raise ValueError(f"{self.path} is a directory and reader {self.spec.name!r} reads files only")
            yield from read_dir(self.path, self._reader_stats)
            return
        with self.opener(self.path) as stream:
            yield from self.spec.load_reader()(stream, self.path, self._reader_stats)

    def __iter__(self) -> Iterator[Document]:
        recipe = self.spec.load_recipe() if self.recipe else None
        c4 = clean_c4 if self.c4_rules and self.recipe else None
        emitted = 0
        try:
            for doc in self._reader_documents():
                emitted += 1
                doc.source = self.spec.source
                if recipe is not None:
                    doc = recipe(doc, self._recipe_stats)
                if doc is not None and c4 is not None:
                    doc = c4(doc, self._recipe_stats)
                if doc is not None:
                    self.yielded += 1
                    yield doc
        except ReaderError as exc:
            self.broken = DeadLetter(exc.name, exc.position, "reader_error", exc.message)
        except (OSError, ValueError, UnicodeError, EOFError) as exc:
            self.broken = DeadLetter(self.path, None, "reader_crash", f"{type(exc).__name__}: {exc}")
        if self._reader_stats.emitted != emitted:
            raise RuntimeError(
                f"reader {self.spec.name!r} yielded {emitted} documents from {self.path} but counted "
                f"stats.emitted={self._reader_stats.emitted}: the reader breaks the counting contract"
            )

    @property
    def read(self) -> int:
        r = self._reader_stats
        return r.emitted + sum(r.dropped.values()) + (1 if self.broken else 0)

    @property
    def dropped(self) -> Counter[str]:
        out = self._reader_stats.dropped + self._recipe_stats.dropped
        if self.broken:
            out[self.broken.reason] += 1
        return out

    @property
    def repaired(self) -> Counter[str]:
        return self._reader_stats.repaired + self._recipe_stats.repaired

    def take_dead_letters(self) -> list[DeadLetter]:
        out = self._reader_stats.dead_letters + self._recipe_stats.dead_letters
        self._reader_stats.dead_letters = []
        self._recipe_stats.dead_letters = []
        if self.broken is not None and not self._broken_handed_over:
            out.append(self.broken)
            self._broken_handed_over = True
        return out
