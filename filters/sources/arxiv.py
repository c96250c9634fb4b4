"""arXiv LaTeX sources → one document per paper (LLaMA §2.1).

Inputs: a paper's `.tar.gz` (or `.tar`), a single gzipped or plain `.tex`, or a local directory
(`read_arxiv_dir`). Tarballs are read as a forward-only stream with `tarfile` mode `r|`, members are
read into memory and never extracted, so nothing can be written to disk at all. Safety:

* members with absolute paths or `..` components (`arxiv_member_unsafe_path`), symlinks/hardlinks
  (`arxiv_member_link`) and special files (`arxiv_member_special`) are skipped and counted;
* only TeX sources (`.tex`, `.ltx`, no extension) are read; one larger than `max_member_bytes` is skipped
  and counted (`arxiv_member_too_large`);
* a tar bomb is stopped by a cap on the total decompressed bytes (`max_total_bytes`): `ReaderError`.

The reader finds the main file (has `\\documentclass`, preferring one that also has
`\\begin{document}`), strips `%` comments and inlines `\\input`/`\\include`. The recipe `clean_arxiv`
then expands user macros (with arguments) and keeps the text from the first sectioning command to the
bibliography (dropping the paper with `arxiv_no_section` when there is none).

Member counts above share `ReadStats.dropped` with document drops; their reasons start with
`arxiv_member_` so a manifest can tell them apart. A paper with no main file is a dead letter
(`arxiv_no_main_file`). Invalid UTF-8 is replaced and counted (`invalid_utf8`).

Errors: a truncated or corrupt archive raises `ReaderError` naming the file and byte offset; since one
file is one paper, nothing is yielded for it. An empty input raises `ReaderError` too.
"""

from __future__ import annotations

import os
import posixpath
import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from filters.document import Document
from filters.sources.base import ReaderError, ReadStats, ReplayStream, decode_utf8
from filters.sources.compression import open_decompressed
from filters.sources.latex import (
    body_between_section_and_bibliography,
    expand_macros,
    remove_comments,
    resolve_inputs,
)

SOURCE = "arxiv"
MAX_MEMBER_BYTES = 32 << 20
MAX_TOTAL_BYTES = 1 << 30
_TEX_EXTENSIONS = (".tex", ".ltx", "")
_MAIN_NAMES = ("main.tex", "ms.tex", "paper.tex", "article.tex")
_ID_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".gz", ".tex")
_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")


def paper_id(name: str) -> str:
    """`…/1802.06067.tar.gz` → `1802.06067` (the id of the paper a file holds)."""
    base = os.path.basename(name.rstrip("/"))
    for suffix in _ID_SUFFIXES:
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _is_tex(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in _TEX_EXTENSIONS


def _unsafe(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return path.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", path)) or ".." in parts


def read_arxiv(
    stream: BinaryIO,
    name: str,
    stats: ReadStats,
    *,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> Iterator[Document]:
    """Yield the paper held by a `.tar.gz` / `.tar` / `.gz` / `.tex` stream (flattened LaTeX)."""
    decompressed = open_decompressed(stream, name)
    head = decompressed.read(512)
    if not head.strip():
        raise ReaderError(name, "byte 0", "empty input")
    capped = ReplayStream(decompressed, head, limit=max_total_bytes, name=name)  # tar-bomb guard
    files: dict[str, str] = {}
    if (len(head) == 512 and head[257:262] == b"ustar") or _looks_like_tar(head):
        try:
            with tarfile.open(fileobj=capped, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    _read_member(tar, member, files, stats, max_member_bytes)
        except tarfile.TarError as exc:
            raise ReaderError(name, f"decompressed byte {capped.pos}", f"corrupt tar: {exc}") from exc
    else:
        data = capped.read(max_member_bytes + 1)
        if len(data) > max_member_bytes:
            raise ReaderError(name, None, f"single TeX file exceeds {max_member_bytes} bytes")
        files[os.path.basename(name)] = decode_utf8(data, stats)
    doc = _paper(files, name, paper_id(name), stats)
    if doc is not None:
        stats.emitted += 1
        yield doc


def _looks_like_tar(head: bytes) -> bool:
    """A pre-POSIX (v7) tar header: checksum field checks out."""
    if len(head) < 512:
        return False
    try:
        stored = int(head[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(head[:148]) + 8 * 32 + sum(head[156:512])
    return stored == computed


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, files: dict[str, str], stats, cap) -> None:
    if member.isdir():
        return
    if _unsafe(member.name):
        stats.drop("arxiv_member_unsafe_path")
        return
    if member.issym() or member.islnk():
        stats.drop("arxiv_member_link")
        return
    if not member.isfile():
        stats.drop("arxiv_member_special")
        return
    if not _is_tex(member.name):
        return  # figures, .bib, .sty: not text we train on
    if member.size > cap:
        stats.drop("arxiv_member_too_large")
        return
    handle = tar.extractfile(member)
    if handle is None:
        stats.drop("arxiv_member_special")
        return
    files[posixpath.normpath(member.name)] = decode_utf8(handle.read(), stats)


def read_arxiv_dir(
    path: str, stats: ReadStats, *, max_member_bytes: int = MAX_MEMBER_BYTES
) -> Iterator[Document]:
    """Yield the paper in a local source directory; symlinks are not followed (counted)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs.sort()
        for entry in sorted(names) + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            full = os.path.join(root, entry)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            if os.path.islink(full):
                stats.drop("arxiv_member_link")
                continue
            if not _is_tex(rel) or not os.path.isfile(full):
                continue
            if os.path.getsize(full) > max_member_bytes:
                stats.drop("arxiv_member_too_large")
                continue
            with open(full, "rb") as handle:
                files[rel] = decode_utf8(handle.read(), stats)
    doc = _paper(files, path, paper_id(path), stats)
    if doc is not None:
        stats.emitted += 1
        yield doc


def choose_main_file(files: dict[str, str]) -> str | None:
    """The main TeX file: has `\\documentclass` (after comment removal), prefers `\\begin{document}`."""
    ranked = []
    for path, text in files.items():
        stripped = remove_comments(text)
        if "\\documentclass" not in stripped and "\\documentstyle" not in stripped:
            continue
        has_begin = "\\begin{document}" in stripped
        ranked.append((not has_begin, os.path.basename(path) not in _MAIN_NAMES, path.count("/"), path))
    if ranked:
        return min(ranked)[3]
    if len(files) == 1:
        return next(iter(files))
    return None


def _paper(files: dict[str, str], name: str, pid: str, stats: ReadStats) -> Document | None:
    main = choose_main_file(files)
    if main is None:
        stats.dead_letter(name, None, "arxiv_no_main_file", f"TeX files: {sorted(files)[:20]}")
        return None
    base_dir = posixpath.dirname(main)
    missing: list[str] = []

    def load(target: str) -> str | None:
        for candidate in (target, target + ".tex"):
            for rel in (posixpath.join(base_dir, candidate), candidate):
                key = posixpath.normpath(rel)
                if key in files:
                    return files[key]
        return None

    text = resolve_inputs(remove_comments(files[main]), load, on_missing=missing.append)
    if missing:
        stats.repair("arxiv_missing_input", len(missing))
    meta = {"arxiv_id": pid, "main_file": main, "tex_files": len(files), "missing_inputs": missing}
    return Document(id=f"arxiv:{pid}", source=SOURCE, text=text, meta=meta)


def clean_arxiv(doc: Document, stats: ReadStats) -> Document | None:
    """Expand user macros, keep first section → bibliography, tidy blank lines (the arXiv recipe)."""
    body = body_between_section_and_bibliography(expand_macros(doc.text))
    if body is None:
        stats.drop("arxiv_no_section")
        return None
    body = _BLANK_LINES.sub("\n\n", body).strip()
    if not body:
        stats.drop("arxiv_empty")
        return None
    return Document(id=doc.id, source=doc.source, text=body, meta=dict(doc.meta))
