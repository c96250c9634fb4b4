"""What every reader shares: counted drops, dead letters, and errors that name the file and position.

A reader is a generator `read(stream, name, stats) -> Iterator[Document]` over an already-open binary
stream, so `pipeline/` can hand it a Beam `FileSystems` stream (gs:// works) while tests hand it a
local file. Nothing is dropped silently: every drop goes through `ReadStats.drop` with a reason, and
every record that could not be parsed through `ReadStats.dead_letter`.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, BinaryIO


class ReaderError(Exception):
    """An input that cannot be read further; names the file and the byte offset (or record) where it broke."""

    def __init__(self, name: str, position: int | str | None, message: str) -> None:
        self.name = name
        self.position = position
        self.message = message
        where = f"{name}" if position is None else f"{name} at {position}"
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class DeadLetter:
    """A record that could not be turned into a document, kept for inspection instead of lost."""

    file: str
    position: int | str | None
    reason: str
    detail: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        return {"file": self.file, "position": self.position, "reason": self.reason, "detail": self.detail}


@dataclass
class ReadStats:
    """Counts what a reader saw: documents emitted, drops by reason, repaired text, dead letters."""

    emitted: int = 0
    dropped: Counter = field(default_factory=Counter)
    repaired: Counter = field(default_factory=Counter)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] += n

    def repair(self, what: str, n: int = 1) -> None:
        self.repaired[what] += n

    def dead_letter(self, file: str, position: int | str | None, reason: str, detail: str = "") -> None:
        self.dropped[reason] += 1
        self.dead_letters.append(DeadLetter(file, position, reason, detail[:2000]))

    def merge(self, other: ReadStats) -> None:
        self.emitted += other.emitted
        self.dropped.update(other.dropped)
        self.repaired.update(other.repaired)
        self.dead_letters.extend(other.dead_letters)


def decode_utf8(data: bytes, stats: ReadStats) -> str:
    """UTF-8 with U+FFFD for invalid bytes, counting one `invalid_utf8` repair per decoded unit that needed it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        stats.repair("invalid_utf8")
        return data.decode("utf-8", errors="replace")


def basename(name: str) -> str:
    """The last path component of a local path or `gs://` name, the prefix of document ids."""
    return os.path.basename(name.rstrip("/")) or name


class ReplayStream(io.RawIOBase):
    """A readable stream that first hands back bytes already taken from `raw` (sniffed magic bytes, an XML
    prolog, a line pushed back with `unread`), then goes on with `raw`.

    `pos` counts the bytes handed out (so a reader can name an offset); with `limit`, handing out more than
    that many bytes raises `ReaderError` naming `name` (the tar-bomb guard of the arXiv reader).
    """

    def __init__(self, raw: BinaryIO, head: bytes = b"", *, limit: int | None = None, name: str = "") -> None:
        self._raw = raw
        self._head = head
        self.pos = 0
        self.limit = limit
        self.name = name

    def readable(self) -> bool:
        return True

    def _count(self, data: bytes) -> bytes:
        self.pos += len(data)
        if self.limit is not None and self.pos > self.limit:
            raise ReaderError(
                self.name, f"decompressed byte {self.pos}", f"input exceeds the {self.limit}-byte size cap"
            )
        return data

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            data, self._head = self._head + self._raw.read(), b""
        elif self._head:
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._raw.read(n - len(data))
        else:
            data = self._raw.read(n)
        return self._count(data)

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        if self._head:
            nl = self._head.find(b"\n")
            if nl >= 0:
                line, self._head = self._head[: nl + 1], self._head[nl + 1 :]
            else:
                line, self._head = self._head + self._raw.readline(), b""
        else:
            line = self._raw.readline()
        return self._count(line)

    def unread(self, data: bytes) -> None:
        """Push bytes back: the next reads return them first."""
        self._head = data + self._head
        self.pos -= len(data)
