"""Beam's `FileSystems` as the `manifests.storage` backend for URL paths (gs://, s3://, …).

Registered when the `pipeline` package is imported, so every Beam stage (and every worker, which imports
the DoFns' modules) reads and writes gs:// through the same functions the Beam-free stages use locally.
"""

from __future__ import annotations

from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from manifests import storage


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


def register() -> None:
    storage.register_backend(BeamFileSystems())
