"""Wikipedia `pages-articles` XML dumps → plain-text articles (LLaMA §2.1, SPEC §2 "Wikipedia").

Streaming: the (bz2/gz/plain, UTF-8 or UTF-16) dump is decompressed by `open_decompressed`, made valid
UTF-8 and checked for DTDs by `xmlsafe`, and parsed with `lxml` `iterparse`; every `<page>` is cleared
once processed, so memory is bounded by the largest single page whatever the dump size.

Kept: namespace 0 pages that are not redirects. Dropped with a counted reason: other namespaces
(`wikipedia_non_main_namespace`), redirects (`wikipedia_redirect`), pages whose text is empty after
cleaning (`wikipedia_empty_text`); pages without id or text become dead letters.

Wikitext → text with mwparserfromhell: templates, parser functions, tables, refs, galleries, math,
comments, File/Image/Category and interlanguage links are removed; link text is kept; headings stay as
their own lines (a heading whose section ends up empty, e.g. "References", is dropped).

Ids are `{dbname}:{page_id}` (e.g. `enwiki:12`). dbname comes from `<siteinfo><dbname>`, else from the
file name (`bgwiki-latest-…` → `bgwiki`), else from the root's `xml:lang`. The language is dbname
without the `wiki` suffix.

Errors: a truncated or corrupt compressed stream, or malformed XML mid-file, raises `ReaderError`
(file and position) after all complete pages before the break have been yielded; the caller records it
as a dead letter. An empty input raises `ReaderError` too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO
from urllib.parse import quote

import mwparserfromhell
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode

from filters.document import Document
from filters.sources.base import ReadStats
from filters.sources.compression import open_decompressed
from filters.sources.xmlsafe import clear_element, local_name, safe_iterparse

SOURCE = "wikipedia"

# Tags whose content is markup or apparatus, not article prose.
_DROP_TAGS = frozenset(
    {
        "ref",
        "references",
        "table",
        "gallery",
        "timeline",
        "imagemap",
        "score",
        "graph",
        "templatedata",
        "templatestyles",
        "math",
        "chem",
        "ce",
        "mapframe",
        "maplink",
        "inputbox",
        "categorytree",
        "indicator",
        "noinclude",
        "style",
        "hiero",
    }
)
_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "dd", "dt", "blockquote", "tr", "center", "poem", "pre"})
# Namespaces to drop links to when the dump has no <siteinfo> (canonical English names).
_DEFAULT_LINK_NS = frozenset({"file", "image", "category", "media", "template", "wikipedia", "wp", "help"})
_INTERWIKI = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
_MAGIC_WORD = re.compile(r"__[A-Z]+__")
_EMPTY_PARENS = re.compile(r"\(\s*(?:[,;:]\s*)*\)")
_PAREN_OPEN_PUNCT = re.compile(r"\((?:\s*[,;:])+\s*")
_PAREN_CLOSE_PUNCT = re.compile(r"(?:\s*[,;:])+\s*\)")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:])")
_TABLE_LINE = re.compile(r"^\s*(\{\||\|\}|\|-|\||!)")
_FILENAME_DB = re.compile(r"^([a-z][a-z0-9_]*?wiki)(?=[-_.]|$)")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_REF = re.compile(r"<ref\b[^>]*?/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_BRACES = re.compile(r"\{\{|\}\}")


def remove_templates(text: str) -> str:
    """Remove `{{…}}` (nested) in one linear scan; an unclosed `{{` keeps its text rather than eat the rest.

    Doing this before mwparserfromhell is what makes the reader fast: templates are most of a page's
    markup and the parser's tree builder is pure Python.
    """
    out: list[str] = []
    depth = 0
    kept_until = 0
    open_at = 0
    for match in _BRACES.finditer(text):
        if match.group() == "{{":
            if depth == 0:
                out.append(text[kept_until : match.start()])
                open_at = match.start()
            depth += 1
        elif depth > 0:
            depth -= 1
            if depth == 0:
                kept_until = match.end()
    out.append(text[open_at:] if depth > 0 else text[kept_until:])
    return "".join(out)


def remove_tables(text: str) -> str:
    """Remove `{| … |}` tables (nested, line-based as MediaWiki parses them); unclosed ones are kept."""
    out: list[str] = []
    held: list[str] = []
    depth = 0
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("{|"):
            depth += 1
        if depth:
            held.append(line)
            if stripped.startswith("|}"):
                depth -= 1
                if depth == 0:
                    held.clear()
            continue
        out.append(line)
    out.extend(held)
    return "\n".join(out)


_LINK_BRACKETS = re.compile(r"\[\[|\]\]")


def remove_namespace_links(text: str, namespaces: frozenset[str]) -> str:
    """Remove `[[File:…]]`-style links (nested brackets, multi-line captions) whose prefix is in `namespaces`.

    mwparserfromhell leaves a File link with a multi-line caption as plain text; a bracket scan doesn't.
    """
    out: list[str] = []
    pos = 0
    start = text.find("[[")
    while start >= 0:
        prefix, colon, _ = text[start + 2 : start + 80].partition(":")
        if colon and prefix.strip().lower() in namespaces:
            depth = 0
            for match in _LINK_BRACKETS.finditer(text, start):
                depth += 1 if match.group() == "[[" else -1
                if depth == 0:
                    out.append(text[pos:start])
                    pos = match.end()
                    break
            else:
                break  # unclosed: leave the rest alone
            start = text.find("[[", pos)
        else:
            start = text.find("[[", start + 2)
    out.append(text[pos:])
    return "".join(out)


def prestrip(wikitext: str) -> str:
    """Cheap removals before the full parse: comments, refs, templates, tables."""
    text = _COMMENT.sub("", wikitext)
    text = _REF.sub("", text)
    return remove_tables(remove_templates(text))


def lang_from_dbname(dbname: str) -> str:
    """'enwiki' → 'en', 'zh_yuewiki' → 'zh-yue' (Wikimedia's dbname convention)."""
    base = dbname[:-4] if dbname.endswith("wiki") else dbname
    return base.replace("_", "-")


def dbname_from_filename(name: str) -> str | None:
    """'…/bgwiki-latest-pages-articles.xml.bz2' → 'bgwiki'; None when the name has no such prefix."""
    match = _FILENAME_DB.match(os.path.basename(name))
    return match.group(1) if match else None


def external_links(wikitext: str) -> list[str]:
    """External URLs cited in an article (bracketed, bare, and inside citation templates), in order.

    The Wikipedia-reference classifier (SPEC §2, CommonCrawl) matches these against CC page URLs.
    """
    seen: dict[str, None] = {}
    for link in mwparserfromhell.parse(wikitext).filter_external_links(recursive=True):
        url = str(link.url).strip()
        if url.startswith("//"):
            url = "https:" + url
        if re.match(r"^(https?|ftp)://", url, re.IGNORECASE):
            seen.setdefault(url, None)
    return list(seen)


class WikitextRenderer:
    """Turns wikitext into plain text; `link_namespaces` are the (lower-case) prefixes of links to drop."""

    def __init__(self, link_namespaces: Iterable[str] = _DEFAULT_LINK_NS) -> None:
        self.link_namespaces = frozenset(ns.lower() for ns in link_namespaces) | _DEFAULT_LINK_NS
        self.media_namespaces = self.link_namespaces - {"template", "wikipedia", "wp", "help"}

    def __call__(self, wikitext: str) -> str:
        text = remove_namespace_links(prestrip(wikitext), self.media_namespaces)
        raw = self._render(mwparserfromhell.parse(text))
        return self._tidy(raw)

    def _render(self, code: Wikicode | None) -> str:
        if code is None:
            return ""
        out: list[str] = []
        for node in code.nodes:
            if isinstance(node, Text):
                out.append(node.value)
            elif isinstance(node, Wikilink):
                out.append(self._link(node))
            elif isinstance(node, Heading):
                out.append(f"\n\x00{node.level}\x00{self._render(node.title).strip()}\n")
            elif isinstance(node, Tag):
                tag = str(node.tag).strip().lower()
                if tag in _DROP_TAGS:
                    continue
                if node.contents is not None and not node.self_closing:
                    inner = self._render(node.contents)
                    out.append(f"\n{inner}\n" if tag in _BLOCK_TAGS else inner)
                elif tag in _BLOCK_TAGS or tag in ("li", "dd", "dt", "hr"):
                    out.append("\n")
            elif isinstance(node, ExternalLink):
                if node.brackets:
                    if node.title is not None:
                        out.append(self._render(node.title))
                else:
                    out.append(str(node.url))
            elif isinstance(node, HTMLEntity):
                out.append(node.normalize())
            elif isinstance(node, (Template, Comment, Argument)):
                continue
            # anything else (parameters, unknown nodes) carries no prose
        return "".join(out)

    def _link(self, node: Wikilink) -> str:
        title = str(node.title).strip()
        visible_colon = title.startswith(":")
        title = title.lstrip(":")
        prefix, sep, _ = title.partition(":")
        prefix = prefix.strip().lower()
        if sep and not visible_colon:
            if prefix in self.link_namespaces:
                return ""
            if node.text is None and _INTERWIKI.match(prefix):
                return ""
        if node.text is not None:
            return self._render(node.text)
        if "#" in title:
            page, _, anchor = title.partition("#")
            title = page or anchor
        return title

    @staticmethod
    def _tidy(raw: str) -> str:
        raw = _MAGIC_WORD.sub("", raw)
        blocks: list[tuple[int, str]] = []  # (heading level or 0 for prose, line)
        for line in raw.split("\n"):
            if line.startswith("\x00"):
                _, level, title = line.split("\x00", 2)
                if title.strip():
                    blocks.append((int(level), title.strip()))
                continue
            if _TABLE_LINE.match(line):  # table markup the parser could not structure
                continue
            line = _EMPTY_PARENS.sub("", line)
            line = _PAREN_CLOSE_PUNCT.sub(")", _PAREN_OPEN_PUNCT.sub("(", line))
            line = _SPACES.sub(" ", line)
            line = _SPACE_BEFORE_PUNCT.sub(r"\1", line).strip()
            if line and any(ch.isalnum() for ch in line):
                blocks.append((0, line))
        kept: list[str] = []
        for i, (level, line) in enumerate(blocks):
            if level:
                following = next((lvl for lvl, _ in blocks[i + 1 :] if lvl == 0 or lvl <= level), None)
                if following != 0:
                    continue  # a heading whose section is empty
            kept.append(line)
        return "\n".join(kept)


def _child_text(elem, name: str) -> str | None:
    for child in elem:
        if local_name(child.tag) == name:
            return child.text or ""
    return None


def _child(elem, name: str):
    for child in elem:
        if local_name(child.tag) == name:
            return child
    return None


def read_wikipedia_xml(stream: BinaryIO, name: str, stats: ReadStats) -> Iterator[Document]:
    """Yield one document per main-namespace, non-redirect page of a pages-articles dump."""
    dbname: str | None = None
    link_ns: set[str] = set()
    renderer: WikitextRenderer | None = None
    decompressed = open_decompressed(stream, name)
    for _event, elem in safe_iterparse(decompressed, name, stats, events=("end",)):
        tag = local_name(elem.tag)
        if tag == "dbname":
            dbname = (elem.text or "").strip() or None
            continue
        if tag == "namespace":
            key = elem.get("key", "0")
            if key != "0" and elem.text:
                link_ns.add(elem.text.strip())
            continue
        if tag == "siteinfo":
            renderer = WikitextRenderer(link_ns)
            clear_element(elem)
            continue
        if tag != "page":
            continue
        if renderer is None:
            renderer = WikitextRenderer(link_ns)
        if dbname is None:
            dbname = dbname_from_filename(name)
            if dbname is None:
                root_lang = elem.getroottree().getroot().get("{http://www.w3.org/XML/1998/namespace}lang")
                dbname = f"{root_lang}wiki" if root_lang else "wiki"
        doc = _page_document(elem, name, dbname, renderer, stats)
        clear_element(elem)
        if doc is not None:
            stats.emitted += 1
            yield doc


def _page_document(
    page, name: str, dbname: str, renderer: WikitextRenderer, stats: ReadStats
) -> Document | None:
    title = (_child_text(page, "title") or "").strip()
    page_id = (_child_text(page, "id") or "").strip()
    ns = (_child_text(page, "ns") or "0").strip()
    position = f"line {page.sourceline}" if page.sourceline else None
    if not page_id:
        stats.dead_letter(name, position, "wikipedia_missing_page_id", f"title={title!r}")
        return None
    if ns != "0":
        stats.drop("wikipedia_non_main_namespace")
        return None
    if _child(page, "redirect") is not None:
        stats.drop("wikipedia_redirect")
        return None
    revision = _child(page, "revision")
    wikitext = _child_text(revision, "text") if revision is not None else None
    if wikitext is None:
        stats.dead_letter(name, position, "wikipedia_missing_text", f"page id={page_id} title={title!r}")
        return None
    if re.match(r"\s*#redirect", wikitext, re.IGNORECASE):
        stats.drop("wikipedia_redirect")
        return None
    text = renderer(wikitext)
    if not text.strip():
        stats.drop("wikipedia_empty_text")
        return None
    lang = lang_from_dbname(dbname)
    meta = {
        "title": title,
        "lang": lang,
        "url": f"https://{lang}.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}",
        "page_id": int(page_id) if page_id.isdigit() else page_id,
        "dbname": dbname,
        "revision_id": (_child_text(revision, "id") or "").strip() or None,
        "timestamp": (_child_text(revision, "timestamp") or "").strip() or None,
    }
    # The URLs the article cites, for the Wikipedia-reference classifier (`corral lm`). A second parse
    # of the raw wikitext (references and templates are stripped before rendering), so only when a URL
    # can be present at all.
    if "//" in wikitext:
        links = external_links(wikitext)
        if links:
            meta["external_links"] = links
    return Document(id=f"{dbname}:{page_id}", source=SOURCE, text=text, meta=meta)
