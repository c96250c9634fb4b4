"""CCNet's text normalisation (cc_net `text_normalizer.py`), in the two forms CCNet uses.

`normalize_for_dedup` feeds line hashing: case-folded, digits collapsed, CCNet's Unicode punctuation
and control characters deleted; accents and ASCII punctuation kept. `normalize_for_lm` feeds the
KenLM scorer: additionally accents stripped and Unicode punctuation mapped to ASCII, and because
control characters (including newlines) are removed, a document becomes one line.
"""

from __future__ import annotations

import re
import unicodedata

# cc_net text_normalizer.UNICODE_PUNCT: the Unicode punctuation CCNet knows, with its ASCII equivalent.
UNICODE_PUNCT: dict[str, str] = {
    "，": ",",
    "。": ".",
    "、": ",",
    "„": '"',
    "”": '"',
    "“": '"',
    "«": '"',
    "»": '"',
    "１": '"',
    "」": '"',
    "「": '"',
    "《": '"',
    "》": '"',
    "´": "'",
    "∶": ":",
    "：": ":",
    "？": "?",
    "！": "!",
    "（": "(",
    "）": ")",
    "；": ";",
    "–": "-",
    "—": " - ",
    "．": ". ",
    "～": "~",
    "’": "'",
    "…": "...",
    "━": "-",
    "〈": "<",
    "〉": ">",
    "【": "[",
    "】": "]",
    "％": "%",
    "►": "-",
}

# U+0000–001F and U+007F–009F, as cc_net's NON_PRINTING_CHARS_RE.
CONTROL_CHARS: tuple[str, ...] = tuple(chr(c) for c in [*range(0, 32), *range(127, 160)])

_DIGIT_RE = re.compile(r"\d")  # str patterns match every Unicode decimal digit (category Nd)
_DELETE_PUNCT_AND_CONTROL = str.maketrans({c: None for c in (*UNICODE_PUNCT, *CONTROL_CHARS)})
_MAP_PUNCT_DELETE_CONTROL = str.maketrans({**UNICODE_PUNCT, **{c: None for c in CONTROL_CHARS}})


def strip_accents(text: str) -> str:
    """NFD-decompose and drop combining marks (category Mn), as cc_net does."""
    if text.isascii():
        return text
    nfd = unicodedata.normalize("NFD", text)
    return "".join(c for c in nfd if unicodedata.category(c) != "Mn")


def normalize_for_dedup(line: str) -> str:
    """Normalise one line before hashing (cc_net `normalize_for_dedup`).

    strip → lowercase → every Unicode digit to "0" → delete CCNet's Unicode punctuation and control chars.
    """
    line = line.strip()
    if not line:
        return line
    line = _DIGIT_RE.sub("0", line.lower())
    return line.translate(_DELETE_PUNCT_AND_CONTROL)


def normalize_for_lm(text: str) -> str:
    """Normalise a document before SentencePiece + KenLM scoring (cc_net `normalize`, accent/case/numbers, punct=1).

    strip → lowercase → strip accents → digits to "0" → Unicode punctuation to ASCII → control chars
    removed (so newlines vanish and the document is scored as one line).
    """
    text = text.strip()
    if not text:
        return text
    text = strip_accents(text.lower())
    text = _DIGIT_RE.sub("0", text)
    return text.translate(_MAP_PUNCT_DELETE_CONTROL)
