"""GitHub code: JSONL records and local checkouts in; the LLaMA/RedPajama code recipe as the source recipe.

Why: LLaMA keeps only Apache/BSD/MIT files, drops files that look generated or like data (long lines,
few alphanumerics), removes licence/copyright header comments, and dedups exact copies (LLaMA §2.1,
RedPajama's GitHub script).

Inputs:
- `read_github`: JSONL (`.jsonl`, `.jsonl.gz`, …) records `{"text", "meta": {"repo_name", "path",
  "license", ...}}` (the RedPajama / BigQuery export layout; top-level `repo_name`/`path`/`license` are
  accepted too). Streaming line by line; ids are `"{basename}:{line_number}"`. Bad lines become dead
  letters naming the line; a truncated compressed file yields every complete line before the break and
  then raises the `ReaderError` (file + byte offset).
- `read_github_dir`: a local checkout. The repo licence is detected from its top-level LICENSE/COPYING
  file; files are walked in sorted order (VCS folders skipped, symlinks never followed); ids are
  `"{repo_name}:{relative_path}"`. Binary files, files over `MAX_FILE_BYTES` and symlinks are dropped
  with a counted reason.

Recipe (`clean_github`), each drop with its own reason: licence not in `ALLOWED_LICENCES` (spellings
normalised by `normalize_licence`), extension not in `ALLOWED_EXTENSIONS`, max line length > 1000,
mean line length > 100, alphanumeric fraction < 0.25, alphabetic characters per whitespace token < 1.5,
empty after header removal. The SHA-256 of the cleaned text goes to `meta["content_sha256"]`; exact
duplicates are removed across the whole source by the build (`exact_dedup`, on for `github` sources).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from filters.document import Document
from filters.sources.base import ReadStats, decode_utf8
from filters.sources.c4 import fix_surrogates, iter_json_lines

SOURCE = "github"
MAX_FILE_BYTES = 1 << 20  # RedPajama/The Stack skip files over 1 MB: generated code or data

# Apache / BSD / MIT families only (LLaMA §2.1), as normalised SPDX-style ids.
ALLOWED_LICENCES = frozenset(
    {
        "apache-2.0",
        "apache-1.1",
        "apache-1.0",
        "mit",
        "mit-0",
        "0bsd",
        "bsd-2-clause",
        "bsd-3-clause",
        "bsd-3-clause-clear",
        "bsd-4-clause",
    }
)

# Source code and the text that lives with it (docs, build files). Configuration formats are kept
# because they are written by people; data formats (json, csv, xml, svg, lock files) are not.
ALLOWED_EXTENSIONS = frozenset(
    """
    asm bat c cc cmake cpp cs css cu cuh cxx dart el erl ex exs f f90 f95 fs go groovy h hh hpp hs html
    hxx ipynb java jl js jsx kt kts lisp lua m md ml mli php pl pm proto ps1 pxd pxi py pyi pyx r rb rkt
    rs rst s sass scala scm scss sh sql swift tex toml ts tsx v vb vhdl vue yaml yml zig
    """.split()
)
ALLOWED_FILENAMES = frozenset({"makefile", "dockerfile", "cmakelists.txt", "gemfile", "rakefile", "justfile"})

_VCS_DIRS = frozenset({".git", ".hg", ".svn"})
_LICENCE_FILE = re.compile(r"^(?:un)?licen[cs]e(?:[.-].*)?$|^copying(?:[.-].*)?$", re.I)


# ---------------------------------------------------------------------------------------------- licences


def normalize_licence(value: str | None) -> str | None:
    """Map a licence spelling ("Apache License 2.0", "MIT License", "BSD 3-Clause 'New'") to an SPDX-style id."""
    if not value or not isinstance(value, str):
        return None
    v = value.strip().lower().replace("_", "-")
    v = re.sub(r"[\"'()]", " ", v)
    v = re.sub(r"\b(?:the|licen[cs]e[sd]?|software|version|v)\b", " ", v)
    v = re.sub(r"\s+", " ", v).strip(" -")
    if not v or v in {"none", "null", "unknown", "noassertion", "other"}:
        return None
    if "apache" in v:
        m = re.search(r"(\d)(?:\.(\d))?", v)
        return f"apache-{m.group(1)}.{m.group(2) or '0'}" if m else "apache-2.0"
    if re.search(r"\bmit\b", v):
        return "mit-0" if re.search(r"mit-0|no attribution", v) else "mit"
    if "bsd" in v:
        if re.search(r"\b0bsd\b|zero", v):
            return "0bsd"
        if "clear" in v:
            return "bsd-3-clause-clear"
        if re.search(r"\b4\b|4-clause|original", v):
            return "bsd-4-clause"
        if re.search(r"\b2\b|2-clause|simplified|freebsd", v):
            return "bsd-2-clause"
        if re.search(r"\b3\b|3-clause|new|revised|modified", v):
            return "bsd-3-clause"
        return "bsd"
    return re.sub(r"\s+", "-", v)


def detect_licence(text: str) -> str | None:
    """The licence of a LICENSE/COPYING file's text, by the phrases each licence's text contains."""
    t = re.sub(r"\s+", " ", text).lower()
    if "apache license" in t:
        m = re.search(r"version (\d)\.(\d)", t)
        return f"apache-{m.group(1)}.{m.group(2)}" if m else "apache-2.0"
    if "permission is hereby granted, free of charge" in t:
        return "mit-0" if "without restriction" in t and "above copyright notice" not in t else "mit"
    if "redistribution and use in source and binary forms" in t:
        if "all advertising materials" in t:
            return "bsd-4-clause"
        if "neither the name" in t or "may not be used to endorse" in t:
            return (
                "bsd-3-clause-clear"
                if "no express or implied licenses to any party's patent" in t
                else "bsd-3-clause"
            )
        return "bsd-2-clause"
    if "permission to use, copy, modify, and/or distribute this software for any purpose" in t:
        return "0bsd" if "copyright notice and this permission notice appear" not in t else "isc"
    if "gnu lesser general public license" in t:
        return "lgpl"
    if "gnu affero general public license" in t:
        return "agpl-3.0"
    if "gnu general public license" in t:
        m = re.search(r"version (\d)", t)
        return f"gpl-{m.group(1)}.0" if m else "gpl"
    if "mozilla public license" in t:
        return "mpl-2.0" if "version 2.0" in t else "mpl"
    if "free and unencumbered software released into the public domain" in t:
        return "unlicense"
    return None


# ---------------------------------------------------------------------------------------------- readers


def read_github(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[Document]:
    """Documents from GitHub JSONL records; repo, path, normalised licence and language go to meta."""
    base = os.path.basename(name.rstrip("/")) or name
    for lineno, record in iter_json_lines(stream, name, stats):
        text = record.get("text", record.get("content"))
        if not isinstance(text, str):
            stats.dead_letter(name, f"line {lineno}", "missing_text", json.dumps(record)[:200])
            continue
        orig = record.get("meta") if isinstance(record.get("meta"), dict) else {}
        meta: dict[str, Any] = {k: v for k, v in orig.items()}
        for key in ("repo_name", "path", "license", "language"):
            if key not in meta and key in record:
                meta[key] = record[key]
        meta["licence"] = normalize_licence(meta.get("license"))
        meta["file"] = base
        meta["line"] = lineno
        stats.emitted += 1
        yield Document(id=f"{base}:{lineno}", source=SOURCE, text=fix_surrogates(text, stats), meta=meta)


def _repo_name(path: str) -> str:
    """owner/name from the checkout's .git/config remote URL, else the folder name."""
    config = os.path.join(path, ".git", "config")
    try:
        with open(config, encoding="utf-8", errors="replace") as f:
            m = re.search(r"url\s*=\s*\S*?[:/]([\w.-]+/[\w.-]+?)(?:\.git)?\s*$", f.read(), re.M)
            if m:
                return m.group(1)
    except OSError:
        pass
    return os.path.basename(os.path.abspath(path))


def repo_licence(path: str) -> tuple[str | None, str | None]:
    """(licence, file) detected from the checkout's top-level LICENSE/LICENCE/COPYING/UNLICENSE files."""
    try:
        names = sorted(os.listdir(path))
    except OSError:
        return None, None
    for fname in names:
        full = os.path.join(path, fname)
        if _LICENCE_FILE.match(fname) and os.path.isfile(full) and not os.path.islink(full):
            with open(full, "rb") as f:
                licence = detect_licence(f.read(256 << 10).decode("utf-8", errors="replace"))
            if licence:
                return licence, fname
    return None, None


def read_github_dir(path: str, stats: ReadStats) -> Iterator[Document]:
    """Documents for every text file of a local checkout, with the repo licence from its LICENSE file."""
    repo = _repo_name(path)
    licence, licence_file = repo_licence(path)
    for root, dirs, files in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _VCS_DIRS)
        for d in dirs:
            if os.path.islink(os.path.join(root, d)):
                stats.drop("symlink")
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
        for fname in sorted(files):
            full = os.path.join(root, fname)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            if os.path.islink(full):
                stats.drop("symlink")
                continue
            size = os.path.getsize(full)
            if size > MAX_FILE_BYTES:
                stats.drop("file_too_large")
                continue
            with open(full, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
            if b"\x00" in data[:8192]:
                stats.drop("binary_file")
                continue
            meta = {
                "repo_name": repo,
                "path": rel,
                "license": licence,
                "licence": licence,
                "licence_file": licence_file,
                "size": size,
            }
            stats.emitted += 1
            yield Document(id=f"{repo}:{rel}", source=SOURCE, text=decode_utf8(data, stats), meta=meta)


# ---------------------------------------------------------------------------------------------- recipe

_BOILERPLATE = re.compile(
    r"copyright|licen[cs]e[ds]?\b|spdx-license-identifier|all rights reserved|permission is hereby granted"
    r"|warranty|redistribution and use",
    re.I,
)
_HEADER_BLOCKS = (
    re.compile(r"\A(?:[ \t]*#(?!!)[^\n]*\n)+"),  # shell / Python / YAML / Ruby comments
    re.compile(r"\A(?:[ \t]*//[^\n]*\n)+"),  # C-family line comments
    re.compile(r"\A[ \t]*/\*.*?\*/[ \t]*(?:\n|\Z)", re.S),  # C-family block comment
    re.compile(r"\A(?:[ \t]*--[^\n]*\n)+"),  # SQL / Lua / Haskell
    re.compile(r"\A(?:[ \t]*;[^\n]*\n)+"),  # Lisp / asm
    re.compile(r"\A[ \t]*<!--.*?-->[ \t]*(?:\n|\Z)", re.S),  # HTML / XML / Markdown
    re.compile(
        r"\A[ \t]*(?:\"\"\"|''')[^\n]*?(?:copyright|licen[cs]e).*?(?:\"\"\"|''')[ \t]*(?:\n|\Z)", re.S | re.I
    ),
)


def strip_licence_header(text: str) -> str:
    """Remove leading licence/copyright comment blocks (a shebang line is kept)."""
    shebang, body = "", text
    if text.startswith("#!"):
        nl = text.find("\n")
        shebang, body = (text, "") if nl < 0 else (text[: nl + 1], text[nl + 1 :])
    removed = False
    while True:
        rest = body.lstrip("\n")
        for pattern in _HEADER_BLOCKS:
            m = pattern.match(rest)
            if m and _BOILERPLATE.search(m.group(0)):
                body, removed = rest[m.end() :], True
                break
        else:
            break
    return shebang + body.lstrip("\n") if removed else text


def extension_allowed(path: str | None) -> bool:
    """True when the file's name or extension is in the allowlist (see ALLOWED_EXTENSIONS)."""
    if not path:
        return False
    fname = path.rsplit("/", 1)[-1].lower()
    if fname in ALLOWED_FILENAMES or fname.startswith("dockerfile"):
        return True
    return "." in fname and fname.rsplit(".", 1)[1] in ALLOWED_EXTENSIONS


_ASCII_NOT_ALNUM = bytes(c for c in range(128) if not chr(c).isalnum())
_ASCII_NOT_ALPHA = bytes(c for c in range(128) if not chr(c).isalpha())


def _count(text: str, predicate: Callable[[str], bool], ascii_delete: bytes) -> int:
    """Characters of `text` satisfying `predicate` (str.isalnum / str.isalpha); bytes.translate when ASCII."""
    if text.isascii():
        return len(text.encode("ascii").translate(None, ascii_delete))
    return sum(map(predicate, text))


def quality_reason(text: str) -> str | None:
    """The RedPajama code heuristics: the first failed check's reason, or None when the file passes."""
    lines = text.splitlines()
    if not lines or not text.strip():
        return "empty"
    lengths = [len(line) for line in lines]
    if max(lengths) > 1000:
        return "max_line_length"
    if sum(lengths) / len(lengths) > 100:
        return "mean_line_length"
    if _count(text, str.isalnum, _ASCII_NOT_ALNUM) / len(text) < 0.25:
        return "alnum_fraction"
    tokens = text.split()
    if _count(text, str.isalpha, _ASCII_NOT_ALPHA) / max(len(tokens), 1) < 1.5:
        return "alpha_per_token"
    return None


def clean_github(doc: Document, stats: ReadStats) -> Document | None:
    """Licence allowlist, extension allowlist, header removal, quality heuristics (the GitHub recipe).

    Exact dedup on the file content is the build's whole-source stage (`exact_dedup`, on by default for
    `github` sources), not a per-file set here: a recipe sees one document at a time."""
    licence = doc.meta.get("licence") or normalize_licence(doc.meta.get("license"))
    if licence is None:
        stats.drop("licence_unknown")
        return None
    if licence not in ALLOWED_LICENCES:
        stats.drop("licence_not_allowed")
        return None
    if not extension_allowed(doc.meta.get("path")):
        stats.drop("extension_not_allowed")
        return None
    text = strip_licence_header(doc.text)
    reason = quality_reason(text)
    if reason:
        stats.drop(reason)
        return None
    digest = hashlib.sha256(text.encode("utf-8", errors="replace")).hexdigest()
    meta = {**doc.meta, "licence": licence, "content_sha256": digest}
    if text != doc.text:
        meta["header_removed"] = True
    return Document(id=doc.id, source=doc.source, text=text, meta=meta)
