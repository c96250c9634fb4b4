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
    """cc_net's rule end to end on a list of documents (each counts a hash once)."""
    counts = Counter(h for d in docs for h in set(document_line_hashes(d)))
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


def test_repeat_within_one_document_keeps_its_first_copy() -> None:
    """cc_net `finalize_doc` ("Remove duplicates inside doc"): the first occurrence stays."""
    assert _dedup_corpus(["Alpha line\nBeta line\nAlpha line\nGamma"]) == ["Alpha line\nBeta line\nGamma"]
    assert _dedup_corpus(["Menu\nBody text one.\nMENU"]) == ["Menu\nBody text one."]  # normalised equal


def test_same_line_in_two_documents_is_removed_from_both() -> None:
    out = _dedup_corpus(["Menu\nBody one.\nMenu", "Menu\nBody two."])
    assert out == ["Body one.", "Body two."]


def test_line_records_count_documents_not_lines() -> None:
    import numpy as np

    from filters.dedup import DuplicatedLines, line_records, merge_line_records

    a, b, c = (document_line_hashes(t) for t in ("x\ny\nx", "y\nz", "w"))
    first = line_records([a], [1])
    assert not first.multi.any()  # "x" twice inside one document is not a duplicate
    merged = merge_line_records([first, line_records([b, c], [2, 3])])
    dup = DuplicatedLines.from_records(merged)
    assert dup.hashes.tolist() == [line_hash("y")]  # in two documents
    assert dup.to_remove(np.asarray(b, dtype=np.uint64)) == {line_hash("y")}
    # merging is order-free (a lifted combine merges partial results in any order)
    again = merge_line_records([line_records([c], [3]), line_records([b], [2]), first])
    assert again.hashes.tolist() == merged.hashes.tolist() and again.multi.tolist() == merged.multi.tolist()


def test_c4_rule_keeps_one_copy_in_the_page_with_the_smallest_url_hash() -> None:
    """tfds `remove_duplicate_text`: MD5 of `line.strip().lower()`; the page whose URL MD5 is smallest
    keeps a shared line, the others lose it; local copies inside a page go too."""
    import hashlib

    import numpy as np

    from filters.dedup import (
        DedupRule,
        DuplicatedLines,
        c4_line_hash,
        c4_page_key,
        line_records,
        merge_line_records,
    )

    pages = {
        "http://a.example/": "Shared line.\nOwn line A.\nshared LINE.",
        "http://b.example/": "Shared line.\nOwn B.",
    }
    hashes = {u: document_line_hashes(t, DedupRule.TFDS) for u, t in pages.items()}
    keys = {u: c4_page_key(u, u) for u in pages}
    dup = DuplicatedLines.from_records(
        merge_line_records([line_records([hashes[u]], [keys[u]]) for u in pages])
    )
    keeper = min(pages, key=lambda u: hashlib.md5(u.encode()).hexdigest())
    other = next(u for u in pages if u != keeper)
    assert c4_line_hash("  Shared LINE. ") == int(hashlib.md5(b"shared line.").hexdigest()[:16], 16)
    for url, want_shared in ((keeper, True), (other, False)):
        remove = dup.to_remove(np.asarray(hashes[url], dtype=np.uint64), keys[url])
        text = remove_duplicate_lines(pages[url], remove, hashes[url]).text
        assert text.startswith("Shared line.") is want_shared
        assert text.lower().count("shared line.") == (1 if want_shared else 0)


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
