"""A small template language for the demo sample's English text: alternatives, options, slots, links.

Why: the sample must read like prose (so a small model has structure to learn and a Wikipedia-trained LM
can tell prose from spam) yet be written by the project, seeded and fast. Sentences come from templates:

- `(a|b|c)` picks one alternative (nestable), `[x]` keeps `x` half of the time;
- a backslash before one of `()[]{}|\\` makes it the character itself (any other backslash is kept, so
  LaTeX control words such as `\\cite` need no escaping, only their braces do);
- `{name}` is a slot filled from a context: a string, a list/tuple (one item picked), or a callable
  `f(rng) -> str`;
- `link(target, text)` marks an entity mention; `wiki()` renders the first mention of each target as a
  `[[target|text]]` wikilink (later ones as text), `plain()` as text.

Randomness: every generated item gets its own `random.Random` seeded by a string of its keys
(`rng_for(seed, "cc", 17)`), so an item's text does not depend on how many items came before it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

Slot = str | Sequence[str] | Callable[[random.Random], str]
_LINK = re.compile("\x02([^\x1f\x03]*)\x1f([^\x03]*)\x03")


def rng_for(seed: int, *keys: object) -> random.Random:
    """A generator seeded by the sample seed and an item's keys (Python hashes a str seed with SHA-512)."""
    return random.Random(":".join(map(str, (seed, *keys))))


def link(target: str, text: str | None = None) -> str:
    """An entity mention: a wikilink in `wiki()`, its text in `plain()`."""
    return f"\x02{target}\x1f{text if text is not None else target}\x03"


def plain(text: str) -> str:
    """Mentions as their text, wiki italics (`''Title''`) as plain words: what a web page shows."""
    return _LINK.sub(lambda m: m.group(2), text).replace("''", "")


def wiki(text: str, linked: set[str] | None = None) -> str:
    """Wikilinks for the first mention of each target (tracked in `linked` across calls), text after."""
    seen = linked if linked is not None else set()

    def repl(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target in seen:
            return label
        seen.add(target)
        return f"[[{target}]]" if target == label else f"[[{target}|{label}]]"

    return _LINK.sub(repl, text)


# ------------------------------------------------------------------------------------------ templates


_ESCAPABLE = frozenset("()[]{}|\\")


def _parse(src: str, pos: int, stop: str) -> tuple[list[Any], int]:
    """Parse until one of `stop` (at depth 0); returns (sequence of nodes, position of the stop char)."""
    seq: list[Any] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            seq.append("".join(buf))
            buf.clear()

    while pos < len(src):
        ch = src[pos]
        if ch == "\\" and pos + 1 < len(src) and src[pos + 1] in _ESCAPABLE:
            buf.append(src[pos + 1])
            pos += 2
            continue
        if ch in stop:
            break
        if ch == "(":
            flush()
            alts: list[list[Any]] = []
            pos += 1
            while True:
                alt, pos = _parse(src, pos, "|)")
                alts.append(alt)
                if pos >= len(src):
                    raise ValueError(f"unclosed '(' in template {src!r}")
                if src[pos] == ")":
                    break
                pos += 1
            seq.append(("alt", alts))
            pos += 1
        elif ch == "[":
            flush()
            inner, pos = _parse(src, pos + 1, "]")
            if pos >= len(src):
                raise ValueError(f"unclosed '[' in template {src!r}")
            seq.append(("opt", inner))
            pos += 1
        elif ch == "{":
            flush()
            end = src.index("}", pos)
            seq.append(("slot", src[pos + 1 : end]))
            pos = end + 1
        else:
            buf.append(ch)
            pos += 1
    flush()
    return seq, pos


@lru_cache(maxsize=4096)
def compile_template(src: str) -> tuple[Any, ...]:
    seq, pos = _parse(src, 0, "")
    if pos != len(src):
        raise ValueError(f"unbalanced template {src!r} at {pos}")
    return tuple(seq)


def _render(seq: Sequence[Any], rng: random.Random, ctx: Mapping[str, Slot], out: list[str]) -> None:
    for node in seq:
        if isinstance(node, str):
            out.append(node)
            continue
        kind, arg = node
        if kind == "alt":
            _render(arg[rng.randrange(len(arg))], rng, ctx, out)
        elif kind == "opt":
            if rng.random() < 0.5:
                _render(arg, rng, ctx, out)
        else:
            try:
                value = ctx[arg]
            except KeyError:
                raise KeyError(f"template slot {{{arg}}} has no value") from None
            if callable(value):
                out.append(value(rng))
            elif isinstance(value, str):
                out.append(value)
            else:
                out.append(value[rng.randrange(len(value))])


_SPACES = re.compile(r"[ \t]{2,}")
_SPACE_PUNCT = re.compile(r" +([,.;:!?)])")
_LABEL = "(?:\x02[^\x1f]*\x1f)?"  # a vowel may start a link's label
_ARTICLE = re.compile(rf"\b([Aa]) (?={_LABEL}[aeiouAEIOU])")
_AN_EXCEPTIONS = re.compile(rf"\b([Aa])n (?={_LABEL}(?:uni|use|usu|eu|one|once))")


def expand(template: str, rng: random.Random, ctx: Mapping[str, Slot]) -> str:
    """One rendering of `template`: spaces tidied, `a` → `an` before a vowel, first letter capitalised."""
    out: list[str] = []
    _render(compile_template(template), rng, ctx, out)
    text = _SPACE_PUNCT.sub(r"\1", _SPACES.sub(" ", "".join(out))).strip()
    text = _AN_EXCEPTIONS.sub(r"\1 ", _ARTICLE.sub(lambda m: m.group(1) + "n ", text))
    return capitalise(text)


def capitalise(text: str) -> str:
    """Upper-case the first letter (skipping quotes; in a link, the first letter of its label)."""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\x02":
            i = text.find("\x1f", i) + 1
            if i == 0:
                return text
            continue
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1 :]
        if ch not in "\"'“‘(":
            return text
        i += 1
    return text


class Deck:
    """Deals a document's templates without repeats until every one has been used (then reshuffles)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._left: dict[int, list[int]] = {}

    def deal(self, templates: Sequence[str], n: int) -> list[str]:
        left = self._left.setdefault(id(templates), [])
        out = []
        for _ in range(n):
            if not left:
                left.extend(range(len(templates)))
                self.rng.shuffle(left)
            out.append(templates[left.pop()])
        return out


def sentences(
    templates: Sequence[str], rng: random.Random, ctx: Mapping[str, Slot], n: int, deck: Deck | None = None
) -> list[str]:
    """`n` sentences; the deck uses every template once before any template again, across a document."""
    return [expand(t, rng, ctx) for t in (deck or Deck(rng)).deal(templates, n)]


def paragraph(
    templates: Sequence[str], rng: random.Random, ctx: Mapping[str, Slot], n: int, deck: Deck | None = None
) -> str:
    return " ".join(sentences(templates, rng, ctx, n, deck))
