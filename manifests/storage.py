"""Reading and writing the files every stage shares: atomic writes, streamed checksums, any filesystem.

Why here: the tokenizer stage and the trainer must read corpus and shard manifests without importing
Beam, while the Beam jobs must write the same files to `gs://`. So the functions below work on local
paths with the standard library, and a path with a scheme (`gs://…`, `s3://…`) goes to a backend
registered for it: `pipeline/` registers Beam's `FileSystems` for every scheme when it is imported, and
a stage without Beam uses pyarrow's filesystems (GCS, S3, HDFS), or gets a clear error naming the path.

Atomic: `write_atomic` writes a temporary sibling and renames it over the target, so a reader sees the
old file or the new one, never half of one (POSIX `rename`; on object stores Beam's rename is a copy
and delete, and the file appears whole).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.fs as pafs

BLOCK = 1 << 20


class Backend(Protocol):
    """What a non-local filesystem must provide (Beam's `FileSystems` fits, see `pipeline/filesystems.py`)."""

    def open_read(self, path: str) -> BinaryIO: ...

    def open_write(self, path: str) -> BinaryIO: ...

    def exists(self, path: str) -> bool: ...

    def rename(self, src: str, dst: str) -> None: ...

    def delete(self, path: str) -> None: ...

    def listdir(self, path: str) -> list[str]: ...


_BACKENDS: dict[str, Backend] = {}
_ANY = "*"


def register_backend(backend: Backend, scheme: str = _ANY) -> None:
    """Use `backend` for paths of `scheme` (`"gs"`), or for every URL scheme (`"*"`)."""
    _BACKENDS[scheme] = backend


def is_url(path: str) -> bool:
    return "://" in path


class ArrowFileSystems:
    """The backend of the stages without Beam (tokenizer, trainer): pyarrow's own filesystems
    (`pyarrow.fs.FileSystem.from_uri`: gs:// through GcsFileSystem, s3://, hdfs://, file://), with the
    credentials those libraries find in the environment."""

    def _fs(self, path: str) -> tuple[Any, str]:
        try:
            return pafs.FileSystem.from_uri(path)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise OSError(
                f"{path}: no filesystem for this URL in this process ({exc}); copy the files to a local "
                "folder, or run the stage where Beam is installed (importing `pipeline` registers Beam's "
                "filesystems)"
            ) from None

    def open_read(self, path: str) -> BinaryIO:
        fs, p = self._fs(path)
        return fs.open_input_file(p)

    def open_write(self, path: str) -> BinaryIO:
        fs, p = self._fs(path)
        parent = p.rsplit("/", 1)[0]
        if fs.get_file_info(parent).type == pafs.FileType.NotFound:  # local and HDFS need the folder
            fs.create_dir(parent, recursive=True)
        return fs.open_output_stream(p)

    def exists(self, path: str) -> bool:
        fs, p = self._fs(path)
        return fs.get_file_info(p).type != pafs.FileType.NotFound

    def rename(self, src: str, dst: str) -> None:
        fs, p = self._fs(src)
        fs.move(p, self._fs(dst)[1])

    def delete(self, path: str) -> None:
        fs, p = self._fs(path)
        if fs.get_file_info(p).type == pafs.FileType.Directory:
            fs.delete_dir(p)
        else:
            fs.delete_file(p)

    def listdir(self, path: str) -> list[str]:
        fs, p = self._fs(path)
        if fs.get_file_info(p).type != pafs.FileType.Directory:
            return []
        return [info.base_name for info in fs.get_file_info(pafs.FileSelector(p))]


_ARROW = ArrowFileSystems()


def _backend(path: str) -> Backend:
    """The backend registered for the URL's scheme, else the one for every scheme (Beam's, once `pipeline`
    is imported), else pyarrow's filesystems."""
    scheme = path.split("://", 1)[0]
    return _BACKENDS.get(scheme) or _BACKENDS.get(_ANY) or _ARROW


def join(base: str, *parts: str) -> str:
    """`base/part/...` for local paths and URLs alike."""
    if is_url(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)


def open_read(path: str) -> BinaryIO:
    return _backend(path).open_read(path) if is_url(path) else open(path, "rb")  # noqa: SIM115


def exists(path: str) -> bool:
    return _backend(path).exists(path) if is_url(path) else os.path.exists(path)


def read_bytes(path: str) -> bytes:
    with open_read(path) as f:
        return f.read()


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8")


def listdir(path: str) -> list[str]:
    """Names in a folder, sorted; an empty list when it does not exist."""
    if is_url(path):
        return sorted(_backend(path).listdir(path))
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def _tmp_name(path: str) -> str:
    tag = hashlib.sha1(f"{path}:{os.getpid()}".encode()).hexdigest()[:8]
    return f"{path}.tmp-{os.getpid()}-{tag}"


def write_atomic(path: str, data: bytes) -> None:
    """Write `data` to a temporary sibling, then rename it over `path`."""
    tmp = _tmp_name(path)
    if is_url(path):
        backend = _backend(path)
        with backend.open_write(tmp) as f:
            f.write(data)
        if backend.exists(path):
            backend.delete(path)
        backend.rename(tmp, path)
        return
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text_atomic(path: str, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def copy_atomic(src: str, dst: str) -> None:
    """Copy a file (local or URL on either side) so that `dst` appears whole."""
    if not is_url(src) and not is_url(dst):
        tmp = _tmp_name(dst)
        os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
        return
    write_atomic(dst, read_bytes(src))


def rename(src: str, dst: str) -> None:
    """Move a file into place (atomic on POSIX; a copy and delete on object stores)."""
    if is_url(src):
        _backend(src).rename(src, dst)
    else:
        os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
        os.replace(src, dst)


def delete(path: str) -> None:
    """Remove a file or a folder tree; nothing happens when it does not exist."""
    if is_url(path):
        backend = _backend(path)
        if backend.exists(path):
            backend.delete(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def local_copy(path: str, cache_dir: str | None = None) -> str:
    """A local path for `path` (KenLM, SentencePiece and fastText open files by name): URLs are copied
    once into a cache folder named by the URL's hash; local paths are returned unchanged."""
    if not is_url(path):
        return path
    cache = cache_dir or os.path.join(tempfile.gettempdir(), "corral-models")
    os.makedirs(cache, exist_ok=True)
    local = os.path.join(cache, hashlib.sha1(path.encode()).hexdigest()[:16] + "-" + os.path.basename(path))
    if not os.path.exists(local):
        tmp = _tmp_name(local)
        with open(tmp, "wb") as out, open_read(path) as f:
            for block in iter_blocks(f):
                out.write(block)
        os.replace(tmp, local)
    return local


def iter_blocks(stream: BinaryIO, size: int = BLOCK) -> Iterator[bytes]:
    return iter(lambda: stream.read(size), b"")


def sha256_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter_blocks(stream):
        digest.update(block)
    return digest.hexdigest()


def sha256_of(path: str) -> str:
    """sha256 of a file, streamed (local path or URL)."""
    with open_read(path) as f:
        return sha256_stream(f)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
