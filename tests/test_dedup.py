"""Line hashing and the "seen twice → removed everywhere" rule."""

from __future__ import annotations

import hashlib
from collections import Counter

from filters.dedup import document_line_hashes, line_hash, remove_duplicate_lines
from filters.normalize import normalize_for_dedup


def test_line_hash_is_sha1_first_8_bytes_little_endian() -> None:
    digest = hashlib.sha1(b"hello world").digest()
    assert line_hash("hello world") == int.from_bytes(digest[:8], "little")
    assert line_hash("hello world") != int.from_bytes(digest[:8], "big")
    assert 0 <= line_hash("x") < 2**64


def test_normalisation_makes_variants_collide() -> None:
    a = line_hash(normalize_for_dedup("Copyright 2021 «ACME»"))
    b = line_hash(normalize_for_dedup("  copyright 1999 ACME "))
    assert a == b
    assert line_hash(normalize_for_dedup("Crème")) != line_hash(normalize_for_dedup("Creme"))  # accents kept


def _dedup_corpus(docs: list[str]) -> list[str]:
    counts = Counter(h for d in docs for h in document_line_hashes(d))
    duplicated = {h for h, n in counts.items() if n >= 2}
    return [remove_duplicate_lines(d, duplicated).text for d in docs]


def test_seen_twice_removed_everywhere_including_first_occurrence() -> None:
    docs = [
        "Unique opening of the first page.\nShare this on social media\nFirst page body.",
        "Second page starts here.\nSHARE THIS ON SOCIAL MEDIA\nSecond page body.",
        "Third page has nothing in common.",
    ]
    out = _dedup_corpus(docs)
    assert out[0] == "Unique opening of the first page.\nFirst page body."
    assert out[1] == "Second page starts here.\nSecond page body."
    assert out[2] == docs[2]


def test_repeat_within_one_document_counts_too() -> None:
    out = _dedup_corpus(["Menu\nBody text one.\nMenu"])
    assert out == ["Body text one."]


def test_counts_balance() -> None:
    text = "keep me\ndrop me\nkeep me too"
    dup = {line_hash(normalize_for_dedup("drop me"))}
    r = remove_duplicate_lines(text, dup)
    assert (r.lines_kept, r.lines_removed) == (2, 1)
    assert r.text == "keep me\nkeep me too"
    assert r.chars_removed == len("drop me") + 1
    assert r.chars_kept == len(r.text)


def test_precomputed_hashes_must_match_lines() -> None:
    text = "a\nb"
    hashes = document_line_hashes(text)
    assert remove_duplicate_lines(text, set(), hashes).text == text
    try:
        remove_duplicate_lines(text, set(), hashes[:1])
    except ValueError as exc:
        assert "2 lines" in str(exc)
    else:
        raise AssertionError("mismatched hashes accepted")


def test_bad_input() -> None:
    assert remove_duplicate_lines("", set()).text == ""
    assert document_line_hashes("a\ud800b\x00") == [line_hash("a\ud800b")]
    assert len(document_line_hashes("x" * 10_000_000)) == 1
