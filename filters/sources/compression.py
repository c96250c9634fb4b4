"""Transparent decompression by magic bytes, with truncation reported as a `ReaderError` at a byte offset.

Dumps arrive as gzip (often multi-member, as WET files are), bz2 (Wikipedia), xz, or plain. The
format is sniffed from the first bytes, not trusted from the file name.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from typing import BinaryIO

from filters.sources.base import ReaderError, ReplayStream

_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
}


def sniff_compression(head: bytes) -> str:
    """Return 'gzip', 'bz2', 'xz' or 'plain' for the first bytes of a stream."""
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return kind
    return "plain"


class DecompressedStream(io.RawIOBase):
    """A readable binary stream of decompressed bytes; truncation or corruption raise `ReaderError`.

    `compressed_offset` is how many bytes of the original file were consumed when the error occurred.
    """

    def __init__(self, raw: BinaryIO, name: str) -> None:
        head = raw.read(6)
        self.kind = sniff_compression(head)
        self.name = name
        self._counter = ReplayStream(raw, head)  # `pos`: compressed bytes consumed, for error offsets
        buffered = io.BufferedReader(self._counter, buffer_size=1 << 16)
        if self.kind == "gzip":
            self._inner: BinaryIO = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
        elif self.kind == "bz2":
            self._inner = bz2.BZ2File(buffered, mode="rb")  # type: ignore[assignment]
        elif self.kind == "xz":
            self._inner = lzma.LZMAFile(buffered, mode="rb")  # type: ignore[assignment]
        else:
            self._inner = buffered  # type: ignore[assignment]
        self.decompressed_offset = 0

    @property
    def compressed_offset(self) -> int:
        return self._counter.pos

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        try:
            # read1: at most one underlying read, so the bytes decompressed before a truncation are
            # returned (read(n) loops to fill n and loses them when the stream breaks mid-buffer)
            data = self._inner.read1(len(b))
        except (EOFError, OSError, zlib.error, lzma.LZMAError, ValueError) as exc:
            raise ReaderError(
                self.name,
                f"byte {self.compressed_offset} (decompressed byte {self.decompressed_offset})",
                f"{self.kind} stream is truncated or corrupt: {exc}",
            ) from exc
        n = len(data)
        b[:n] = data
        self.decompressed_offset += n
        return n


def open_decompressed(raw: BinaryIO, name: str) -> io.BufferedReader:
    """Wrap an open binary stream so reads return decompressed bytes (buffered)."""
    return io.BufferedReader(DecompressedStream(raw, name), buffer_size=1 << 16)
