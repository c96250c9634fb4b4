"""A source's input files: listed on the launcher, numbered, grouped into output parts.

Files are listed with `FileSystems.match` (so `gs://` globs work) and numbered in path order; the number
travels with every small record that must find its way back to the file (verdicts, drops), and the file
is read where it is — documents never cross a shuffle. Output parts follow the inputs: consecutive files
are grouped while their input bytes stay within `shard_bytes` (one file at least), so the layout depends
on the inputs only, never on the number of workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from filters.sources.registry import get_reader
from manifests.schema import Manifest, ManifestError


@dataclass(frozen=True)
class InputFile:
    """One matched input: its number in the source, path, size in bytes, and whether it is a directory."""

    index: int
    path: str
    size: int
    is_dir: bool = False
    part: int = 0  # the output part this file's documents go to


def match_inputs(manifest: Manifest, source: str) -> list[InputFile]:
    """Expand a source's globs; a glob that matches nothing is refused, naming its manifest key."""
    cfg = manifest.sources[source]
    spec = get_reader(cfg.reader)
    found: dict[str, tuple[int, bool]] = {}
    for i, pattern in enumerate(manifest.inputs(source)):
        key = f"sources.{source}.inputs[{i}]"
        if "://" not in pattern and os.path.isdir(pattern):
            matched = [(pattern, 0, True)]
        else:
            try:
                result = FileSystems.match([pattern])[0]
            except Exception as exc:  # noqa: BLE001 - Beam raises BeamIOError / ValueError per scheme
                raise ManifestError(manifest.path, key, f"cannot list {pattern!r}: {exc}") from None
            matched = []
            for meta in result.metadata_list:
                is_dir = "://" not in meta.path and os.path.isdir(meta.path)
                matched.append((meta.path, 0 if is_dir else meta.size_in_bytes, is_dir))
        if not matched:
            raise ManifestError(manifest.path, key, f"no file matches {pattern!r}")
        for path, size, is_dir in matched:
            if is_dir and spec.dir_reader is None:
                raise ManifestError(
                    manifest.path, key, f"{path} is a directory and reader {cfg.reader!r} reads files only"
                )
            found[path] = (size, is_dir)
    return assign_parts([(p, *found[p]) for p in sorted(found)], cfg.shard_bytes)


def assign_parts(files: list[tuple[str, int, bool]], shard_bytes: int) -> list[InputFile]:
    """Number the files and group consecutive ones into parts of at most `shard_bytes` input bytes."""
    out: list[InputFile] = []
    part, used = 0, 0
    for index, (path, size, is_dir) in enumerate(files):
        if used and used + size > shard_bytes:
            part, used = part + 1, 0
        used += max(size, 1)
        out.append(InputFile(index, path, size, is_dir, part))
    return out


def node_id(doc_id: str, file_index: int) -> str:
    """A document as a graph node: its id first (so string order is id order), then its file number."""
    return f"{doc_id}\x00{file_index}"


def parse_node(node: str) -> tuple[str, int]:
    doc_id, _, index = node.rpartition("\x00")
    return doc_id, int(index)
