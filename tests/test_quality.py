"""C4 rules with tfds c4_utils values: one example text per rule, and the 3/5 boundaries datatrove swaps."""

from __future__ import annotations

import gzip
import json

import pytest

from filters.quality import (
    LINE_JAVASCRIPT,
    LINE_NO_END_MARK,
    LINE_POLICY,
    LINE_TOO_LONG_WORD,
    LINE_TOO_SHORT,
    MAX_DOC_CHARS,
    REASON_CURLY_BRACKET,
    REASON_EMPTY,
    REASON_LOREM_IPSUM,
    REASON_TOO_FEW_SENTENCES,
    REASON_TOO_LONG,
    C4Result,
    c4_clean,
    c4_filter,
    count_sentences,
)

S1 = "The river rose slowly through the night."
S2 = "By morning the lower fields were under water."
S3 = "Farmers moved their cattle to the hills before noon."
GOOD = [S1, S2, S3]


def _doc(*lines: str) -> str:
    return "\n".join(lines)


def test_clean_document_is_kept_unchanged() -> None:
    text, reason = c4_filter(_doc(*GOOD))
    assert reason is None
    assert text == _doc(*GOOD)


def test_three_sentences_pass_two_fail() -> None:
    assert c4_filter(_doc(S1, S2, S3)) == (_doc(S1, S2, S3), None)
    assert c4_filter(_doc(S1, S2)) == (None, REASON_TOO_FEW_SENTENCES)
    # Sentences are counted, not lines: one line holding three sentences is enough.
    one_line = f"{S1} {S2} {S3}"
    assert c4_filter(one_line) == (one_line, None)
    res = c4_clean(_doc(S1, S2))
    assert res.num_sentences == 2 and not res.kept


def test_five_words_pass_four_fail() -> None:
    five = "Rain fell on the town."
    four = "Rain fell on town."
    res = c4_clean(_doc(five, *GOOD))
    assert res.text == _doc(five, *GOOD)
    assert res.lines_removed == {}
    res = c4_clean(_doc(four, *GOOD))
    assert res.text == _doc(*GOOD)
    assert res.lines_removed == {LINE_TOO_SHORT: 1}


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("This line ends with a full stop.", True),
        ("Does this line end with a question?", True),
        ("This line ends with an exclamation mark!", True),
        ('He said that it would "be fine"', True),  # ends with a double quote
        ("This line trails off with an ellipsis...", False),
        ("This line has no terminal punctuation at all", False),
        ("This line ends with a colon like a menu:", False),
        ("This line ends with a single quote mark 'x'", False),  # ' is not an end mark in tfds
        ("This line ends with a unicode ellipsis character\u2026", False),
    ],
)
def test_end_marks(line: str, kept: bool) -> None:
    res = c4_clean(_doc(line, *GOOD))
    assert res.kept
    assert (line in res.text.split("\n")) is kept
    assert res.lines_removed == ({} if kept else {LINE_NO_END_MARK: 1})


def test_citation_markers_removed_before_end_mark_check() -> None:
    line = "The treaty was signed in the spring of that year.[1][23][edit][citation needed]"
    res = c4_clean(_doc(line, *GOOD))
    assert res.text.split("\n")[0] == "The treaty was signed in the spring of that year."
    inner = "The treaty [4] was signed [] in the spring of that year."
    assert (
        c4_clean(_doc(inner, *GOOD)).text.split("\n")[0]
        == "The treaty  was signed  in the spring of that year."
    )
    # Non-numeric brackets are not citations: the line no longer ends in an end mark.
    res = c4_clean(_doc("The treaty was signed in the spring of that year.[a]", *GOOD))
    assert res.lines_removed == {LINE_NO_END_MARK: 1}


def test_too_long_word_drops_line_only() -> None:
    long_word = "x" * 1001
    ok_word = "y" * 1000
    res = c4_clean(
        _doc(f"A line with a {long_word} inside it.", f"A line with a {ok_word} inside it.", *GOOD)
    )
    assert res.kept
    assert res.lines_removed == {LINE_TOO_LONG_WORD: 1}
    assert ok_word in res.text and long_word not in res.text


def test_javascript_line_dropped() -> None:
    res = c4_clean(_doc("Please enable JavaScript in your browser to continue.", *GOOD))
    assert res.text == _doc(*GOOD)
    assert res.lines_removed == {LINE_JAVASCRIPT: 1}


@pytest.mark.parametrize(
    "line",
    [
        "By using this site you agree to our Terms of Use.",
        "Read our Privacy Policy before signing up today.",
        "Our cookie policy explains what we store and why.",
        "This website uses cookies to improve your experience.",
        "We describe our use of cookies on the next page.",
        "Some sites use cookies to track their visitors.",
    ],
)
def test_policy_lines_dropped(line: str) -> None:
    res = c4_clean(_doc(*GOOD, line))
    assert res.text == _doc(*GOOD)
    assert res.lines_removed == {LINE_POLICY: 1}


def test_lorem_ipsum_drops_document() -> None:
    assert c4_filter(_doc(*GOOD, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.")) == (
        None,
        REASON_LOREM_IPSUM,
    )


def test_curly_bracket_drops_document() -> None:
    assert c4_filter(_doc(*GOOD, "The function returns {value} when it is called.")) == (
        None,
        REASON_CURLY_BRACKET,
    )
    # tfds only checks lines that survived the earlier line rules: a "{" in a menu line is harmless.
    res = c4_clean(_doc("function init() {", *GOOD))
    assert res.text == _doc(*GOOD)
    assert res.lines_removed == {LINE_NO_END_MARK: 1}


def test_document_length_limit() -> None:
    filler = _doc(*GOOD)
    pad = MAX_DOC_CHARS - len(filler) - 1
    exactly = filler + "\n" + " " * pad
    assert len(exactly) == MAX_DOC_CHARS
    assert c4_filter(exactly)[1] is None  # 190,000 chars: kept (tfds drops len > 1.9e5)
    assert c4_filter(exactly + " ") == (None, REASON_TOO_LONG)


def test_empty_after_line_filter() -> None:
    assert c4_filter("") == (None, REASON_EMPTY)
    assert c4_filter("Home\nAbout us\nContact\n") == (None, REASON_EMPTY)
    res = c4_clean("Home\nAbout us\nContact\n")
    assert res.lines_removed == {LINE_NO_END_MARK: 3}


def test_lines_are_stripped_and_splitlines_used() -> None:
    text = f"   {S1}   \r\n\t{S2}\u2028{S3}\x0c"
    assert c4_filter(text) == (_doc(*GOOD), None)


def test_counts_over_a_messy_page() -> None:
    page = _doc(
        "Home | News | Sports",
        "Menu",
        S1,
        "This site uses cookies to give you the best experience.",
        "You must enable javascript to view the comments below.",
        "Short line here.",
        S2 + "[2]",
        "Posted by admin...",
        S3,
    )
    res = c4_clean(page)
    assert isinstance(res, C4Result)
    assert res.text == _doc(*GOOD)
    assert res.num_sentences == 3
    assert res.lines_removed == {LINE_NO_END_MARK: 3, LINE_POLICY: 1, LINE_JAVASCRIPT: 1, LINE_TOO_SHORT: 1}


@pytest.mark.parametrize(
    ("line", "n"),
    [
        ("One sentence only.", 1),
        ("First sentence here. Second one here.", 2),
        ("Is it? Yes! It is.", 3),
        ("Dr. Smith met Mr. Jones at St. Mary's church.", 1),
        ("The U.S. economy grew. Prices rose too.", 2),
        ("It cost $3.50 at example.com today.", 1),
        ('She said "go home." Then she left.', 2),
        ("J. R. R. Tolkien wrote many books.", 1),
        ("", 0),
    ],
)
def test_count_sentences(line: str, n: int) -> None:
    assert count_sentences(line) == n


@pytest.mark.realdata
def test_real_web_pages(shared_data) -> None:
    path = shared_data / "c4_web" / "dolma-tests-provided_documents_000.json.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    assert len(texts) == 10
    results = [c4_clean(t) for t in texts]
    kept = [r for r in results if r.kept]
    assert kept, "real pages with prose should survive"
    assert sum(sum(r.lines_removed.values()) for r in results) > 0  # navigation lines exist on real pages
    for r in kept:
        assert r.num_sentences >= 3
        for line in r.text.split("\n"):
            assert line.endswith((".", "?", "!", '"')) and not line.endswith("...")
            assert len(line.split()) >= 5
            assert "javascript" not in line.lower() and "{" not in line


def test_badwords_filter_has_the_tfds_semantics(tmp_path) -> None:
    """tfds `get_badwords_filter_fn`: escaped words, flanked by non-word characters (or the ends) except
    for ja/th/zh, searched in the lower-cased page, per language."""
    from filters.quality import REASON_BADWORDS, BadWordsFilter, load_word_list

    f = BadWordsFilter({"en": ["bad word", "x.y"], "zh": ["坏"]})
    assert f.reason("A Bad Word here.", "en") == REASON_BADWORDS
    assert f.reason("bad word", "en") == REASON_BADWORDS  # start and end of text count as boundaries
    assert f.reason("badwords are fine", "en") is None and f.reason("abad word", "en") is None
    assert (
        f.reason("xzy", "en") is None and f.reason("(x.y)", "en") == REASON_BADWORDS
    )  # escaped, not a regex
    assert f.reason("这是坏的", "zh") == REASON_BADWORDS  # no word boundaries for Chinese
    assert f.reason("A bad word.", "de") is None and f.reason("A bad word.", None) is None
    assert f.reason("A bad word.", "en-US") == REASON_BADWORDS  # suffix removed, as tfds does
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        load_word_list(empty)
    with pytest.raises(ValueError, match="is empty"):
        BadWordsFilter({"en": []})


def test_enough_sentences_after_dedup() -> None:
    from filters.quality import enough_sentences

    assert enough_sentences("One sentence here. Two sentences here.\nThree sentences now.")
    assert not enough_sentences("Only one sentence.\nAnd a second one.")
