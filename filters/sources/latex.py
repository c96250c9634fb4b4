"""Pure LaTeX source transformations for the arXiv recipe (LLaMA §2.1; RedPajama's arXiv cleaning, with its bugs fixed).

- `remove_comments`: `%` to end of line, except `\\%` (an escaped percent); `comment` environments too.
- `resolve_inputs`: inline `\\input{x}` / `\\include{x}` (with or without `.tex`), recursively, with
  cycle and depth guards.
- `expand_macros`: collect `\\newcommand`, `\\renewcommand`, `\\providecommand` (starred too, with an
  optional-argument default) and `\\def\\foo#1#2{…}` definitions, remove them, and expand their uses
  including arguments. RedPajama only expands argument-less macros; we expand them all.
- `body_between_section_and_bibliography`: drop everything before the first sectioning command
  (`\\chapter|\\section|\\subsection|\\subsubsection|\\paragraph|\\subparagraph`, the regex RedPajama
  meant to write) that is used in the document body (not named as an argument in the preamble, e.g.
  `\\titleformat{\\section}`), and from the bibliography on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%.*$", re.MULTILINE)
_COMMENT_ONLY_LINE = re.compile(r"^[ \t]*%.*\n", re.MULTILINE)
_COMMENT_ENV = re.compile(r"\\begin\{comment\}.*?\\end\{comment\}", re.DOTALL)
_INPUT = re.compile(r"\\(input|include)\s*(?:\{([^{}]+)\}|\s([^\s{}\\]+))")
_SECTION = re.compile(r"\\(?:chapter|section|subsection|subsubsection|paragraph|subparagraph)(?![A-Za-z@])")
_SECTION_USE = re.compile(r"\s*[*\[{]")  # what follows a sectioning command that is used, not named
_BEGIN_DOCUMENT = re.compile(r"\\begin\s*\{document\}")
_BRACE = re.compile(r"\\.|[{}]", re.DOTALL)
_BIBLIOGRAPHY = re.compile(r"\\begin\{thebibliography\}|\\bibliography(?:style)?\s*\{|\\printbibliography\b")
_NEWCOMMAND = re.compile(r"\\(?:re)?(?:new|provide)command\s*\*?\s*")
_DEF = re.compile(r"\\(?:long\s*\\|global\s*\\)*[gex]?def\s*\\([A-Za-z@]+)")
_CS_NAME = re.compile(r"\\([A-Za-z@]+)")
MAX_EXPANSION_PASSES = 10
MAX_EXPANDED_CHARS = 20_000_000


def remove_comments(text: str) -> str:
    """Strip `%` comments (keeping `\\%` and `\\\\%`-style escapes right), drop comment-only lines."""
    text = _COMMENT_ENV.sub("", text)
    text = _COMMENT_ONLY_LINE.sub("", text)
    return _COMMENT.sub(r"\1", text)


def resolve_inputs(
    text: str,
    load: Callable[[str], str | None],
    on_missing: Callable[[str], None] | None = None,
    max_depth: int = 20,
) -> str:
    """Replace `\\input{x}`/`\\include{x}` with the (comment-stripped) content `load` returns.

    `load(name)` gets the name as written and should try `name` then `name.tex`; None means missing,
    reported through `on_missing` and replaced by nothing.
    """

    def expand(source: str, depth: int, stack: tuple[str, ...]) -> str:
        def replace(match: re.Match) -> str:
            target = (match.group(2) or match.group(3) or "").strip()
            if not target or depth >= max_depth or target in stack:
                if on_missing:
                    on_missing(target or "<empty>")
                return ""
            content = load(target)
            if content is None:
                if on_missing:
                    on_missing(target)
                return ""
            return "\n" + expand(remove_comments(content), depth + 1, (*stack, target)) + "\n"

        return _INPUT.sub(replace, source)

    return expand(text, 0, ())


@dataclass(frozen=True, slots=True)
class Macro:
    """A user macro: number of arguments, default of the optional first one (if any), body."""

    nargs: int
    default: str | None
    body: str


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n":
        pos += 1
    return pos


def _group(text: str, pos: int, open_: str = "{", close: str = "}") -> tuple[str, int] | None:
    """The balanced `{…}` starting at `pos` (content, position after it), or None."""
    if pos >= len(text) or text[pos] != open_:
        return None
    depth = 0
    i = pos
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == open_:
            depth += 1
        elif ch == close:
            depth -= 1
            if depth == 0:
                return text[pos + 1 : i], i + 1
        i += 1
    return None


def _argument(text: str, pos: int) -> tuple[str, int] | None:
    """One TeX argument: a braced group or a single token (a control sequence or one character)."""
    pos = _skip_ws(text, pos)
    if pos >= len(text):
        return None
    if text[pos] == "{":
        return _group(text, pos)
    if text[pos] == "\\":
        match = _CS_NAME.match(text, pos)
        if match:
            return match.group(0), match.end()
        return text[pos : pos + 2], pos + 2
    if text[pos] == "}":
        return None
    return text[pos], pos + 1


def extract_macros(text: str) -> tuple[dict[str, Macro], str]:
    """Find and remove macro definitions; returns (name → Macro, text without the definitions)."""
    macros: dict[str, Macro] = {}
    out: list[str] = []
    pos = 0
    pattern = re.compile(_NEWCOMMAND.pattern + "|" + _DEF.pattern)
    while True:
        match = pattern.search(text, pos)
        if match is None:
            break
        parsed = _parse_definition(text, match)
        if parsed is None:  # not something we can expand: keep it verbatim
            out.append(text[pos : match.end()])
            pos = match.end()
            continue
        name, macro, end = parsed
        macros[name] = macro
        out.append(text[pos : match.start()])
        pos = end
    out.append(text[pos:])
    return macros, "".join(out)


def _parse_definition(text: str, match: re.Match) -> tuple[str, Macro, int] | None:
    if match.group(0).lstrip("\\").startswith(("new", "renew", "provide")):
        pos = _skip_ws(text, match.end())
        if text.startswith("{", pos):
            group = _group(text, pos)
            if group is None:
                return None
            name_src, pos = group
            name_match = _CS_NAME.fullmatch(name_src.strip())
        else:
            name_match = _CS_NAME.match(text, pos)
            if name_match:
                pos = name_match.end()
        if not name_match:
            return None
        nargs, default = 0, None
        pos = _skip_ws(text, pos)
        if text.startswith("[", pos):
            group = _group(text, pos, "[", "]")
            if group is None or not group[0].strip().isdigit():
                return None
            nargs, pos = int(group[0]), group[1]
            pos = _skip_ws(text, pos)
            if text.startswith("[", pos):
                group = _group(text, pos, "[", "]")
                if group is None:
                    return None
                default, pos = group
        body = _group(text, _skip_ws(text, pos))
        if body is None:
            return None
        return name_match.group(1), Macro(nargs, default, body[0]), body[1]
    # \def\name#1#2{body}: only undelimited parameters are supported
    name = match.group(1)
    pos = match.end()
    params = re.match(r"((?:#[1-9])*)\s*\{", text[pos:])
    if params is None:
        return None
    nargs = len(params.group(1)) // 2
    body = _group(text, pos + params.end() - 1)
    if body is None:
        return None
    return name, Macro(nargs, None, body[0]), body[1]


def _substitute(body: str, args: list[str]) -> str:
    def repl(match: re.Match) -> str:
        if match.group(0) == "##":
            return "#"
        index = int(match.group(1)) - 1
        return args[index] if index < len(args) else match.group(0)

    return re.sub(r"##|#([1-9])", repl, body)


def expand_once(text: str, macros: dict[str, Macro]) -> tuple[str, int]:
    """One pass of macro expansion; returns (text, number of expansions made)."""
    if not macros:
        return text, 0
    names = sorted(macros, key=len, reverse=True)
    pattern = re.compile(r"\\(" + "|".join(re.escape(n) for n in names) + r")(?![A-Za-z@])")
    out: list[str] = []
    pos = 0
    count = 0
    for match in pattern.finditer(text):
        if match.start() < pos:
            continue
        macro = macros[match.group(1)]
        cursor = match.end()
        args: list[str] = []
        wanted = macro.nargs
        if macro.default is not None:
            look = _skip_ws(text, cursor)
            if text.startswith("[", look):
                group = _group(text, look, "[", "]")
                if group is None:
                    continue
                args.append(group[0])
                cursor = group[1]
            else:
                args.append(macro.default)
            wanted -= 1
        ok = True
        for _ in range(wanted):
            arg = _argument(text, cursor)
            if arg is None:
                ok = False
                break
            args.append(arg[0])
            cursor = arg[1]
        if not ok:
            continue
        if macro.nargs == 0 and text.startswith("{}", cursor):  # "\foo{}" idiom: the braces only end the name
            cursor += 2
        out.append(text[pos : match.start()])
        replacement = _substitute(macro.body, args)
        # keep "\foo bar" from becoming "\foobar" when a macro ends in a control word
        if macro.nargs == 0 and re.search(r"\\[A-Za-z@]+$", replacement) and cursor < len(text):
            if text[cursor].isalpha():
                replacement += " "
        out.append(replacement)
        pos = cursor
        count += 1
    out.append(text[pos:])
    return "".join(out), count


def expand_macros(text: str) -> str:
    """Remove user macro definitions and expand their uses (arguments included), to a fixed point."""
    macros, text = extract_macros(text)
    for _ in range(MAX_EXPANSION_PASSES):
        text, count = expand_once(text, macros)
        if count == 0 or len(text) > MAX_EXPANDED_CHARS:
            break
    return text


def first_section(text: str) -> int | None:
    """Offset of the first sectioning command that is USED in the document body, or None.

    Used: followed by `*`, `[` or `{` and not inside another command's braces — so `\\section` in
    `\\titlespacing*{\\section}{…}`, `\\titleformat{\\section}` or `\\renewcommand{\\section}` (preamble
    staples) is not a section. Body: after `\\begin{document}` when the source has one.
    """
    begin = _BEGIN_DOCUMENT.search(text)
    pos = begin.end() if begin else 0
    depth = 0
    braces = _BRACE.finditer(text, pos)
    brace = next(braces, None)
    for m in _SECTION.finditer(text, pos):
        while brace is not None and brace.start() < m.start():
            token = brace.group()
            depth += 1 if token == "{" else -1 if token == "}" else 0
            depth = max(depth, 0)  # an unbalanced `}` in the body must not hide every later section
            brace = next(braces, None)
        if depth == 0 and _SECTION_USE.match(text, m.end()):
            return m.start()
    return None


def body_between_section_and_bibliography(text: str) -> str | None:
    """From the first sectioning command used in the body up to the bibliography; None without one."""
    start = first_section(text)
    if start is None:
        return None
    body = text[start:]
    end = _BIBLIOGRAPHY.search(body)
    if end is not None:
        body = body[: end.start()]
    end_doc = body.find("\\end{document}")
    if end_doc >= 0:
        body = body[:end_doc]
    return body
