"""C4 quality heuristics (LLaMA §2.1 "C4"), as tensorflow/datasets `text/c4_utils.py` implements them.

Values and order are tfds `clean_page` + `is_valid_length` (NOT datatrove's C4QualityFilter, which swaps
the 3 and the 5):

- ``_MIN_WORDS_PER_LINE = 5``, ``_MIN_NUM_SENTENCES = 3``, ``_MAX_WORD_LENGTH = 1000``,
  ``_END_MARKS = (".", "?", "!", '"')``, ``_ELLIPSIS = "..."``,
  ``_POLICY_SUBSTRINGS = ["terms of use", "privacy policy", "cookie policy", "uses cookies",
  "use of cookies", "use cookies"]``, citation regex ``\\[\\d*\\]|\\[edit\\]|\\[citation needed\\]``.
- ``is_valid_length``: a page whose raw text is longer than 1.9e5 characters is dropped (``len > 1.9e5``;
  exactly 190,000 is kept). tfds applies it before cleaning, on the raw text; so do we.
- ``clean_page``, per line of ``text.splitlines()``, after ``strip()``, in this order:
  a word (``line.split()``) longer than 1000 chars → drop the line (checked BEFORE citation removal);
  remove citation markers; not ending in an end mark, or ending in "..." → drop the line (an empty line
  falls here too); fewer than 5 words → drop the line; "lorem ipsum" (case-insensitive) → drop the
  DOCUMENT; "javascript" (case-insensitive) → drop the line; a ``{`` → drop the DOCUMENT; a policy
  substring (case-insensitive) → drop the line; otherwise keep the line and count its sentences.
  As in tfds, the lorem-ipsum and ``{`` checks only look at lines that survived the earlier line rules
  (a ``{`` in a line without an end mark does not drop the page).
- A page with fewer than 3 sentences in its kept lines is dropped; the text is the kept lines joined
  by ``\\n`` and stripped.

Sentence counting: tfds uses NLTK's Punkt English model per kept line. NLTK is not a dependency here;
:func:`count_sentences` is a rule-based stand-in for Punkt's main decisions: ``?`` and ``!`` always end a
sentence; ``.`` ends one unless the token before it is a known abbreviation (``Mr.``, ``e.g.``, ...), a
single-letter initial, or contains an inner period (``U.S.``); a break needs whitespace after the mark
(closing quotes/brackets may come between), so ``3.50`` and ``example.com`` do not split.
After line dedup, tfds drops a page left with fewer than 3 sentences (`_remove_lines_from_text`):
:func:`enough_sentences`. The bad-words filter (tfds `get_badwords_filter_fn`, run after LID and dedup) drops
a page containing a word of its language's list (the LDNOOBW lists C4 used): the words are regex-escaped
and joined; for `ja`, `th` and `zh` a match anywhere counts, for other languages only a match flanked by
non-word characters (`(?:\\W|^)(…)(?:\\W|$)`), searched in the lower-cased page. No list is bundled (none
is published on PyPI with a licence): a manifest names a word-list file per language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIN_WORDS_PER_LINE = 5
MIN_NUM_SENTENCES = 3
MAX_WORD_LENGTH = 1000
MAX_DOC_CHARS = 190_000  # tfds is_valid_length(max_length=1.9e5): dropped when len(text) > 1.9e5
END_MARKS = (".", "?", "!", '"')
ELLIPSIS = "..."
POLICY_SUBSTRINGS = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
CITATION_RE = re.compile(r"\[\d*\]|\[edit\]|\[citation needed\]")

# Document-level drop reasons (stable strings, counted in manifests).
REASON_TOO_LONG = "c4_too_long"
REASON_LOREM_IPSUM = "c4_lorem_ipsum"
REASON_CURLY_BRACKET = "c4_curly_bracket"
REASON_EMPTY = "c4_empty_after_line_filter"
REASON_TOO_FEW_SENTENCES = "c4_too_few_sentences"
REASON_TOO_FEW_SENTENCES_AFTER_DEDUP = "c4_too_few_sentences_after_dedup"
REASON_BADWORDS = "c4_badwords"

# Line-level removal reasons (keys of C4Result.lines_removed).
LINE_TOO_LONG_WORD = "c4_line_too_long_word"
LINE_NO_END_MARK = "c4_line_no_end_mark"
LINE_TOO_SHORT = "c4_line_too_short"
LINE_JAVASCRIPT = "c4_line_javascript"
LINE_POLICY = "c4_line_policy"

# A subset of the abbreviations Punkt's English model knows; lower-case, without the final period.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft vs etc inc ltd co corp jan feb mar apr jun jul aug sep sept oct nov "
    "dec gen gov sen rep rev col lt sgt capt cmdr adm no vol pp fig approx dept est univ ave blvd".split()
)
# A sentence-final mark run, optional closing quotes/brackets, then whitespace and a next token.
_BOUNDARY_RE = re.compile(r"([.!?]+)[\"'”’)\]]*\s+(?=\S)")
_TOKEN_BEFORE_RE = re.compile(r"(\S+)$")


def count_sentences(line: str) -> int:
    """Number of sentences in one line (rule-based stand-in for NLTK Punkt, see the module docstring)."""
    if not line.strip():
        return 0
    count = 1
    for m in _BOUNDARY_RE.finditer(line):
        if m.group(1) == ".":
            before = _TOKEN_BEFORE_RE.search(line, 0, m.start(1))
            token = before.group(1).lstrip("\"'“‘([") if before else ""
            if token.lower() in _ABBREVIATIONS or (len(token) == 1 and token.isalpha()) or "." in token:
                continue
        count += 1
    return count


@dataclass(frozen=True, slots=True)
class C4Result:
    """Outcome of the C4 rules for one document.

    `text` is the cleaned text when kept (`reason` is None); `reason` is a stable drop reason otherwise.
    `lines_removed` counts removed lines per line rule (up to the point a document rule fired).
    """

    text: str | None
    reason: str | None
    lines_removed: dict[str, int] = field(default_factory=dict)
    num_sentences: int = 0

    @property
    def kept(self) -> bool:
        return self.reason is None


def _has_too_long_word(line: str, max_word_length: int) -> bool:
    return any(len(word) > max_word_length for word in line.split())


def c4_clean(
    text: str,
    *,
    min_words_per_line: int = MIN_WORDS_PER_LINE,
    min_num_sentences: int = MIN_NUM_SENTENCES,
    max_word_length: int = MAX_WORD_LENGTH,
    max_doc_chars: int = MAX_DOC_CHARS,
) -> C4Result:
    """Apply tfds' C4 `is_valid_length` and `clean_page` rules; see the module docstring for the order."""
    removed: dict[str, int] = {}

    def drop_line(rule: str) -> None:
        removed[rule] = removed.get(rule, 0) + 1

    if len(text) > max_doc_chars:
        return C4Result(None, REASON_TOO_LONG, removed)

    valid_lines: list[str] = []
    num_sentences = 0
    for raw in text.splitlines():
        line = raw.strip()
        if _has_too_long_word(line, max_word_length):
            drop_line(LINE_TOO_LONG_WORD)
            continue
        line = CITATION_RE.sub("", line)
        if not line.endswith(END_MARKS) or line.endswith(ELLIPSIS):
            drop_line(LINE_NO_END_MARK)
            continue
        if len(line.split()) < min_words_per_line:
            drop_line(LINE_TOO_SHORT)
            continue
        lower = line.lower()
        if "lorem ipsum" in lower:
            return C4Result(None, REASON_LOREM_IPSUM, removed, num_sentences)
        if "javascript" in lower:
            drop_line(LINE_JAVASCRIPT)
            continue
        if "{" in line:
            return C4Result(None, REASON_CURLY_BRACKET, removed, num_sentences)
        if any(p in lower for p in POLICY_SUBSTRINGS):
            drop_line(LINE_POLICY)
            continue
        num_sentences += count_sentences(line)
        valid_lines.append(line)

    if not valid_lines:
        return C4Result(None, REASON_EMPTY, removed, 0)
    if num_sentences < min_num_sentences:
        return C4Result(None, REASON_TOO_FEW_SENTENCES, removed, num_sentences)
    return C4Result("\n".join(valid_lines).strip(), None, removed, num_sentences)


def c4_filter(text: str) -> tuple[str | None, str | None]:
    """`(cleaned_text, None)` when the document is kept, `(None, reason)` when it is dropped."""
    result = c4_clean(text)
    return result.text, result.reason


def enough_sentences(text: str, min_num_sentences: int = MIN_NUM_SENTENCES) -> bool:
    """tfds' re-check after line dedup: does the page still hold `min_num_sentences` sentences?"""
    return sum(count_sentences(line) for line in text.split("\n")) >= min_num_sentences


_NO_WORD_BOUNDARY_LANGS = ("ja", "th", "zh")


def load_word_list(path: str | Path) -> list[str]:
    """One word or phrase per line (blank lines ignored); an empty list is an error, never a filter."""
    try:
        words = [w.strip() for w in Path(path).read_text(encoding="utf-8").splitlines()]
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the bad-words list: {exc.strerror}") from None
    words = [w for w in words if w]
    if not words:
        raise ValueError(f"{path}: the bad-words list is empty")
    return words


class BadWordsFilter:
    """tfds `get_badwords_filter_fn` with `filter_fraction=1.0`: `reason(text, lang)` is the drop reason
    for a page of language `lang` containing a listed word, None otherwise (and for unlisted languages)."""

    def __init__(self, lists: Mapping[str, Iterable[str]]) -> None:
        self._patterns: dict[str, re.Pattern[str]] = {}
        for lang, words in lists.items():
            escaped = [re.escape(w) for w in words]
            if not escaped:
                raise ValueError(f"bad-words list for {lang!r} is empty")
            alternation = "|".join(escaped)
            self._patterns[lang] = re.compile(
                alternation if lang in _NO_WORD_BOUNDARY_LANGS else rf"(?:\W|^)({alternation})(?:\W|$)"
            )

    @classmethod
    def from_files(cls, files: Mapping[str, str | Path]) -> BadWordsFilter:
        return cls({lang: load_word_list(path) for lang, path in files.items()})

    def reason(self, text: str, lang: str | None) -> str | None:
        pattern = self._patterns.get((lang or "").split("-")[0])
        if pattern is not None and pattern.search(text.lower()):
            return REASON_BADWORDS
        return None
