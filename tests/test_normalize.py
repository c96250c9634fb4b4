"""CCNet normalisation semantics (cc_net `text_normalizer.py`), pinned with our own examples."""

from __future__ import annotations

import pytest

from filters.normalize import UNICODE_PUNCT, normalize_for_dedup, normalize_for_lm, normalize_lines_for_dedup


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call 555-1234 now", "call 000-0000 now"),  # ASCII digits
        ("Année ٢٠٢٣", "année 0000"),  # Arabic-Indic digits
        ("वर्ष २०२४", "वर्ष 0000"),  # Devanagari digits
        ("Ｐｒｉｃｅ ０１２", "ｐｒｉｃｅ 000"),  # fullwidth digits are \d too
    ],
)
def test_dedup_digits_become_zero_in_every_script(text: str, expected: str) -> None:
    assert normalize_for_dedup(text) == expected


def test_dedup_removes_listed_unicode_punct_keeps_ascii_punct() -> None:
    # cc_net strips before deleting punctuation, so the space before a trailing "％" survives
    assert normalize_for_dedup("«Bonjour», dit-il… 【note】 ％") == "bonjour, dit-il note "
    assert normalize_for_dedup('He said: "stop!" (twice); ok?') == 'he said: "stop!" (twice); ok?'
    for ch in UNICODE_PUNCT:
        # "１" (fullwidth one) is in cc_net's list but is also a digit: digits are replaced first, as in cc_net
        assert normalize_for_dedup(f"a{ch}b") == ("a0b" if ch.isdigit() else "ab")


def test_dedup_keeps_accents_and_inner_whitespace_strips_ends() -> None:
    assert normalize_for_dedup("  Crème  BRÛLÉE\t ") == "crème  brûlée"


def test_dedup_removes_control_characters() -> None:
    assert normalize_for_dedup("a\x00b\x07c\x1fd\x7fe\x85f\x9fg") == "abcdefg"
    assert normalize_for_dedup("tab\tinside") == "tabinside"  # \t is U+0009: a control char, as in cc_net


def test_dedup_empty_and_whitespace() -> None:
    assert normalize_for_dedup("") == ""
    assert normalize_for_dedup(" \t \n ") == ""


def test_lm_strips_accents_maps_punct_and_joins_lines() -> None:
    assert normalize_for_lm("Crème Brûlée") == "creme brulee"
    assert normalize_for_lm("«Oui» — dit-il…") == '"oui"  -  dit-il...'
    assert normalize_for_lm("Line one\nLine 2") == "line oneline 0"  # control chars (\n) removed: one line


def test_lm_versus_dedup_accents() -> None:
    line = "Ça coûte 12 €"
    assert normalize_for_dedup(line) == "ça coûte 00 €"
    assert normalize_for_lm(line) == "ca coute 00 €"


@pytest.mark.parametrize("fn", [normalize_for_dedup, normalize_for_lm])
def test_bad_input_is_defined(fn) -> None:
    assert fn("a\ud800b") == "a\ud800b".lower()  # lone surrogate passes through untouched
    assert fn("x\x00y") == "xy"
    big = "Word " * 2_000_000  # a 10 MB single line
    assert len(fn(big)) == len(big.strip())
    assert fn("English текст 中文 العربية") == "english текст 中文 العربية"


def test_whole_text_normalisation_equals_the_line_by_line_one_on_every_code_point() -> None:
    """`normalize_lines_for_dedup` (three calls per document) against `normalize_for_dedup` per line, on
    every code point at the start, middle and end of a line, next to cased letters (final sigma), beside
    whitespace that strip removes, and beside control characters."""
    import random
    import sys

    rng = random.Random(7)
    points = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF and c != 0x0A]
    contexts = ["Σ", "ΑΣ", " \x1f", "\x85", "a'", "\r", "\x00 ", "İ", "", "٣", "ς"]
    for start in range(0, len(points), 4096):
        block = points[start : start + 4096]
        lines = []
        for ch in block:
            left, right = rng.choice(contexts), rng.choice(contexts)
            lines.append(f"{left}{ch}{right}")
            lines.append(f" {ch}Σ{left}")
        text = "\n".join(lines)
        assert normalize_lines_for_dedup(text) == [normalize_for_dedup(line) for line in lines]
    assert normalize_lines_for_dedup("") == [""]
    assert normalize_lines_for_dedup("\n\n") == ["", "", ""]


def test_lines_for_dedup_ascii_path_equals_per_line_on_every_ascii_character() -> None:
    """ASCII text takes `bytes.translate`: the same strings as cc_net's per-line normalisation."""
    for cp in range(128):
        c = chr(cp)
        for text in (c, f"a{c}b", f" {c}X{c} \n{c}9Z{c}", c * 3 + "\n\n" + c, f"Line 42{c}\n\t{c}END 7 "):
            assert text.isascii()
            expected = [normalize_for_dedup(line) for line in text.split("\n")]
            assert normalize_lines_for_dedup(text) == expected, repr(text)
