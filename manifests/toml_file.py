"""TOML files in and out: the job manifest and the trainer config are read with errors that name the file
(and the line, for bad TOML), and resolved copies are written back with `tomli_w`, the writer that pairs
with the standard library's `tomllib`."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tomli_w


def read_toml(path: str | Path, error: Callable[[str, str, str], Exception]) -> tuple[str, dict[str, Any]]:
    """(absolute file name, parsed document); an unreadable, non-UTF-8 or invalid file raises
    `error(file, key, message)` with key `<file>` or `<toml>`."""
    file = str(Path(path).resolve())
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise error(file, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        return file, tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(file, "<file>", f"not UTF-8 at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(file, "<toml>", str(exc)) from None


def parse_value(text: str) -> Any:
    """A command-line value as TOML (`3e-4`, `true`, `[1, 2]`), or else the plain string (`bf16`)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def dump_toml(data: dict[str, Any]) -> str:
    """`data` as TOML, nested dicts as `[a.b]` tables; None values are left out (TOML has no null), so they
    read back as the schema's defaults."""
    return tomli_w.dumps(_without_none(data))
