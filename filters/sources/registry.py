"""Reader names (as used in manifests and `corral read`) mapped to their reader and source recipe.

Imports are lazy so that asking for one reader does not import every parser library.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from filters.document import Document
from filters.sources.base import ReadStats

ReadFn = Callable[[BinaryIO, str, ReadStats], Iterator[Document]]
RecipeFn = Callable[[Document, ReadStats], "Document | None"]


@dataclass(frozen=True)
class ReaderSpec:
    name: str
    source: str
    reader: str  # "module:function" of the reader
    recipe: str | None  # "module:function" of the per-document recipe, or None
    dir_reader: str | None = None  # "module:function(path, stats)" for a local directory input

    def load_reader(self) -> ReadFn:
        return _load(self.reader)

    def load_recipe(self) -> RecipeFn | None:
        return _load(self.recipe) if self.recipe else None

    def load_dir_reader(self) -> Callable[[str, ReadStats], Iterator[Document]] | None:
        return _load(self.dir_reader) if self.dir_reader else None


def _load(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


READERS: dict[str, ReaderSpec] = {
    spec.name: spec
    for spec in (
        ReaderSpec("wet", "commoncrawl", "filters.sources.commoncrawl:read_wet", None),
        ReaderSpec("warc", "commoncrawl", "filters.sources.commoncrawl:read_warc", None),
        ReaderSpec("c4_json", "c4", "filters.sources.c4:read_c4_json", None),  # C4 rules: a setting
        ReaderSpec(
            "github",
            "github",
            "filters.sources.github:read_github",
            "filters.sources.github:clean_github",
            "filters.sources.github:read_github_dir",
        ),
        ReaderSpec("wikipedia_xml", "wikipedia", "filters.sources.wikipedia:read_wikipedia_xml", None),
        ReaderSpec("gutenberg", "books", "filters.sources.gutenberg:read_gutenberg", None),
        ReaderSpec(
            "arxiv",
            "arxiv",
            "filters.sources.arxiv:read_arxiv",
            "filters.sources.arxiv:clean_arxiv",
            "filters.sources.arxiv:read_arxiv_dir",
        ),
        ReaderSpec(
            "stackexchange", "stackexchange", "filters.sources.stackexchange:read_stackexchange", None
        ),
    )
}


def get_reader(name: str) -> ReaderSpec:
    """The spec for a reader name; a clear error listing the known names otherwise."""
    try:
        return READERS[name]
    except KeyError:
        raise KeyError(f"unknown reader {name!r}; known readers: {', '.join(sorted(READERS))}") from None
