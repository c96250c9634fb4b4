"""The versions of the tools a stage ran with, as every manifest and card records them (provenance: a
corpus or a tokenizer is reproducible only with the versions that made it)."""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Python's version and the installed version of each distribution in `names` ("not installed" when
    absent), read from the installed metadata without importing the packages."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
