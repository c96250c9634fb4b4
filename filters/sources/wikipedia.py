"""Wikipedia `pages-articles` XML dumps → plain-text articles (LLaMA §2.1).

Streaming: the (bz2/gz/plain, UTF-8 or UTF-16) dump is decompressed by `open_decompressed`, made valid
UTF-8 and checked for DTDs by `xmlsafe`, and parsed with `lxml` `iterparse`; every `<page>` is cleared
once processed, so memory is bounded by the largest single page whatever the dump size.

Kept: namespace 0 pages that are not redirects. Dropped with a counted reason: other namespaces
(`wikipedia_non_main_namespace`), redirects (`wikipedia_redirect`), pages whose text is empty after
cleaning (`wikipedia_empty_text`); pages without id or text become dead letters.

Wikitext → text with mwparserfromhell: templates, parser functions, tables, refs, galleries, math,
comments, File/Image/Category and interlanguage links are removed; link text is kept; headings stay as
their own lines (a heading whose section ends up empty, e.g. "References", is dropped).

Speed: mwparserfromhell's tokenizer is C but its tree builder is pure Python, so the cost of a page is the
number of nodes it builds. Everything that can be removed or rendered safely by a linear scan is done
before the parse (comments, refs, apparatus tags, templates, tables, File/Category links, bold/italic,
list markers, plain `[[links]]`; code and `<nowiki>` blocks are held out of the scans), and the cited
URLs (`meta["external_links"]`) come from a regex scan of the raw wikitext, not from a second parse.
`python -m benchmarks.readers_markup` measures it; tests check that the shortcuts render as the parser does
and that text and links still agree with wikiextractor and with a full parse.

Ids are `{dbname}:{page_id}` (e.g. `enwiki:12`). dbname comes from `<siteinfo><dbname>`, else from the
file name (`bgwiki-latest-…` → `bgwiki`), else from the root's `xml:lang`. The language is dbname
without the `wiki` suffix.

Errors: a truncated or corrupt compressed stream, or malformed XML mid-file, raises `ReaderError`
(file and position) after all complete pages before the break have been yielded; the caller records it
as a dead letter. An empty input raises `ReaderError` too.
"""

from __future__ import annotations

import html
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
_SPACES = re.compile(r"[ \t\u00a0][ \t\u00a0]+")
_SPACE_BEFORE_PUNCT = re.compile(r" +([,.;:])")
_ALNUM = re.compile(r"[^\W_]")  # str.isalnum, as a search
_FILENAME_DB = re.compile(r"^([a-z][a-z0-9_]*?wiki)(?=[-_.]|$)")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_REF = re.compile(r"<ref\b[^>]*?/>|<ref\b[^>]*>.*?</ref\s*>", re.DOTALL | re.IGNORECASE)
_BRACES = re.compile(r"\{\{|\}\}")
# `_DROP_TAGS` that never nest (not table, div-like or noinclude): removed with their content by regex.
_DROP_BLOCKS = re.compile(
    r"<(references|gallery|timeline|imagemap|score|graph|templatedata|templatestyles|math|chem|ce|mapframe"
    r"|maplink|inputbox|categorytree|indicator|style|hiero)\b(?:[^>]*/>|[^>]*>.*?</\1\s*>)",
    re.DOTALL | re.IGNORECASE,
)
# Bold/italic: runs of 2, 3 or 5 apostrophes in dumps; the 4s and 6s that template removal leaves
# (`''{{lang|…}}''`) are empty markup too.
_QUOTES = re.compile(r"'{2,}")
_LIST_MARKER = re.compile(r"^[*#:]+", re.MULTILINE)  # `;` lines stay: the parser splits `; term : def`
_SIMPLE_LINK = re.compile(r"\[\[([^\[\]{}<>|\n]+)(?:\|([^\[\]{}<>\n]*))?\]\]")
_LITERAL_BLOCK = re.compile(
    r"<(nowiki|pre|syntaxhighlight|source)\b[^>]*(?<!/)>.*?</\1\s*>", re.DOTALL | re.IGNORECASE
)
_HELD = re.compile(r"\x01(\d+)\x01")
_RISKY_FIRST = frozenset("*#:;=-!| \t'")  # markup at a line start, or '' with an apostrophe before
_INLINE_MARKUP = re.compile(r"[&~]|__|''")
# External links (MediaWiki `Parser::EXT_LINK_URL_CLASS`, plus `|{}` which end a URL in unexpanded wikitext).
_URL_CHARS = r"[^\s\[\]<>\"{}|\x00-\x20\x7f\ufffd]"
# Scanning for the literal `//` first and looking back for the scheme is 4x faster than one regex that
# tries both link forms at every position.
_URL_TAIL = re.compile(rf"//{_URL_CHARS}+")
_SCHEME_END = re.compile(r"(?:https?|ftp):\Z", re.IGNORECASE)
_WORD_CHAR = re.compile(r"\w")
_URL_HOST = re.compile(r"^(?:https?|ftp)://[^/?#]*\w", re.IGNORECASE)
_NO_LINK_BLOCKS = re.compile(
    r"<(nowiki|pre|math|source|syntaxhighlight|templatedata|timeline|score|graph|chem|ce)\b[^>]*(?<!/)>.*?</\1\s*>",
    re.DOTALL | re.IGNORECASE,
)
_HTML_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_CHAR_REF = re.compile(
    r"&(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);"
)  # `;` required, as in MediaWiki


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
    """Cheap removals before the full parse: comments, refs, apparatus tags, templates, tables.

    Every construct removed here is one that the tree builder (pure Python, most of the cost) never sees.
    """
    text = _COMMENT.sub("", wikitext)
    text = _DROP_BLOCKS.sub("", _REF.sub("", text))
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

    The Wikipedia-reference classifier (LLaMA §2.1, CommonCrawl) matches these against CC page URLs. A regex
    scan of the raw wikitext following MediaWiki's own link rules (URL characters, trailing punctuation,
    `[//…]` only in brackets, entities decoded) instead of a second mwparserfromhell parse of the whole
    page, which cost three times as much as rendering it. Text that never becomes a link (comments,
    `<nowiki>`/`<pre>`/`<math>`/code blocks, tag attributes) is skipped; a URL assembled from a template
    (`http://{{…}}`) or a parameter (`{{{…}}}`) cannot be known without expanding it and is skipped.
    """
    if "//" not in wikitext:
        return []
    text = _NO_LINK_BLOCKS.sub(" ", _COMMENT.sub("", wikitext))
    text = _HTML_TAG.sub(" ", text)
    seen: dict[str, None] = {}
    match = _URL_TAIL.search(text)
    while match is not None:
        start = match.start()
        scheme = _SCHEME_END.search(text, max(0, start - 6), start)
        if scheme is not None:
            start = scheme.start()
        bracketed = start > 0 and text[start - 1] == "["
        if not bracketed and (scheme is None or (start > 0 and _WORD_CHAR.match(text, start - 1))):
            # `//` alone is a link only in brackets, `xhttp://` none at all; a URL may start inside it
            match = _URL_TAIL.search(text, match.start() + 2)
            continue
        raw = text[start : match.end()]
        end = match.end()
        match = _URL_TAIL.search(text, end)
        url = raw.split("''", 1)[0]  # '' opens italics: the URL ends there
        if url is raw and text.startswith("{", end):
            continue  # continues with a template or parameter: unknowable without expansion
        if not bracketed:
            url = url.rstrip(",;.:!?" if "(" in url else ",;.:!?)")
        if "&" in url:
            url = _CHAR_REF.sub(lambda ref: html.unescape(ref.group()), url)
        if url.startswith("//"):
            url = "https:" + url
        if _URL_HOST.match(url):
            seen.setdefault(url, None)
    return list(seen)


class WikitextRenderer:
    """Turns wikitext into plain text; `link_namespaces` are the (lower-case) prefixes of links to drop."""

    def __init__(self, link_namespaces: Iterable[str] = _DEFAULT_LINK_NS) -> None:
        self.link_namespaces = frozenset(ns.lower() for ns in link_namespaces) | _DEFAULT_LINK_NS
        self.media_namespaces = self.link_namespaces - {"template", "wikipedia", "wp", "help"}

    def __call__(self, wikitext: str) -> str:
        text = remove_namespace_links(prestrip(wikitext), self.media_namespaces)
        # Bold/italic, list markers and plain links by regex: the parser then builds a few hundred nodes
        # a page instead of thousands. Code and <nowiki> blocks are literal text and are held out of it.
        held: list[str] = []

        def hold(match: re.Match[str]) -> str:
            held.append(match.group())
            return f"\x01{len(held) - 1}\x01"

        if "<" in text and "\x01" not in text:  # \x01 is not allowed in XML 1.0 text: a safe placeholder
            text = _LITERAL_BLOCK.sub(hold, text)
        text = _LIST_MARKER.sub("\n", _QUOTES.sub("", text))
        text = _SIMPLE_LINK.sub(self._simple_link, text)
        if held:
            text = _HELD.sub(lambda m: held[int(m.group(1))], text)
        raw = self._render(mwparserfromhell.parse(text))
        return self._tidy(raw)

    def _simple_link(self, match: re.Match[str]) -> str:
        """`[[target]]` / `[[target|text]]` without nested markup, rendered as `_link` would render it.

        Left in place (for the parser) when its output could turn into markup once parsed.
        """
        text = match.group(2)
        title = self._link_title(match.group(1), has_text=text is not None)
        if title is None:
            return ""
        if text is None:
            text = title
        if text and (text[0] in _RISKY_FIRST or text[-1] == "'" or _INLINE_MARKUP.search(text)):
            return match.group()
        return text

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
        title = self._link_title(str(node.title), has_text=node.text is not None)
        if title is None:
            return ""
        return self._render(node.text) if node.text is not None else title

    def _link_title(self, target: str, has_text: bool) -> str | None:
        """The text a `[[target]]` shows when it has no label; None for links that render nothing
        (files, categories and other namespaced links; interlanguage links without a label)."""
        title = target.strip()
        visible_colon = title.startswith(":")
        title = title.lstrip(":")
        prefix, sep, _ = title.partition(":")
        prefix = prefix.strip().lower()
        if sep and not visible_colon:
            if prefix in self.link_namespaces:
                return None
            if not has_text and _INTERWIKI.match(prefix):
                return None
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
            if line.lstrip().startswith(("{|", "|", "!")):  # table markup the parser could not structure
                continue
            if "(" in line:
                line = _EMPTY_PARENS.sub("", line)
                line = _PAREN_CLOSE_PUNCT.sub(")", _PAREN_OPEN_PUNCT.sub("(", line))
            blocks.append((0, line))
        # Space clean-up over all prose at once (the patterns never cross a newline): one call, not one a line.
        joined = "\n".join(ln for lvl, ln in blocks if not lvl)
        if "[" in joined or "]" in joined:
            joined = remove_unmatched_brackets(joined)
        prose = iter(_SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", joined)).split("\n"))
        blocks = [(lvl, ln) if lvl else (0, next(prose).strip()) for lvl, ln in blocks]
        blocks = [(lvl, ln) for lvl, ln in blocks if lvl or _ALNUM.search(ln)]
        kept: list[str] = []
        for i, (level, line) in enumerate(blocks):
            if level:
                following = next(
                    (blocks[j][0] for j in range(i + 1, len(blocks)) if blocks[j][0] <= level), None
                )
                if following != 0:
                    continue  # a heading whose section is empty
            kept.append(line)
        return "\n".join(kept)


_BRACKET_TOKEN = re.compile(r"\[\[|\]\]|\[|\]")


def remove_unmatched_brackets(text: str) -> str:
    """Drop link markup an editor left unbalanced (`[[Foo`, `[[Foo]`, `Foo]]`), keeping the words.

    Every well-formed link was rendered already; what is left pairs up line by line: `[[`…`]]` and
    `[`…`]` that match (`[sic]`, a literal `[[x]]` from a nowiki block) stay, every bracket that has no
    partner of its own kind goes.
    """
    out: list[str] = []
    for line in text.split("\n"):
        if "[" not in line and "]" not in line:
            out.append(line)
            continue
        tokens = list(_BRACKET_TOKEN.finditer(line))
        opened: list[int] = []
        unmatched: set[int] = set()
        for i, tok in enumerate(tokens):
            t = tok.group()
            if t[0] == "[":
                opened.append(i)
            elif opened and tokens[opened[-1]].group() == "[" * len(t):
                opened.pop()
            else:
                unmatched.add(i)
        unmatched.update(opened)
        if not unmatched:
            out.append(line)
            continue
        pieces, pos = [], 0
        for i in sorted(unmatched):
            pieces.append(line[pos : tokens[i].start()])
            pos = tokens[i].end()
        pieces.append(line[pos:])
        out.append("".join(pieces))
    return "\n".join(out)


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
