"""The demo sample (`corral sample`): deterministic bytes, every file in its source's real format, and the
planted items caught by the build that `manifests/demo.toml` describes.

The readers are corral's own (`SourceFile`, as the build reads); the slow test runs `corral lm` and
`corral build` on manifests/demo.toml with its paths pointed at a generated sample.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corral.sample import PLANTED, ensure_sample, is_complete, write_sample
from filters.sources.source_file import SourceFile
from filters.wikiref import url_key

REPO = Path(__file__).resolve().parents[1]
SMALL = 0.2
READERS = {
    "commoncrawl": "wet",
    "c4": "c4_json",
    "github": "github",
    "wikipedia": "wikipedia_xml",
    "books": "gutenberg",
    "arxiv": "arxiv",
    "stackexchange": "stackexchange",
}


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample") / "data"
    return out, write_sample(out, seed=7, scale=SMALL, stdlib=12)


def read_all(root: Path, info: dict, source: str) -> tuple[dict, list[SourceFile]]:
    entry = info["sources"][source]
    docs, files = {}, []
    for name in entry["files"]:
        sf = SourceFile(READERS[source], str(root / entry["folder"] / name))
        docs.update({d.id: d for d in sf})
        files.append(sf)
    return docs, files


def test_same_seed_same_bytes_other_seed_other_bytes(small: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = small
    write_sample(tmp_path / "again", seed=7, scale=SMALL, stdlib=12)
    write_sample(tmp_path / "other", seed=8, scale=SMALL, stdlib=12)
    first, again, other = files_of(root), files_of(tmp_path / "again"), files_of(tmp_path / "other")
    assert first.keys() == again.keys() and all(first[k] == again[k] for k in first)
    same = [k for k in first if other.get(k) == first[k]]
    assert len(same) <= 3, same  # only files without generated text (a withdrawal notice, the stdlib) repeat


def test_complete_sample_is_reused_and_a_new_seed_rewrites(tmp_path: Path) -> None:
    out = tmp_path / "s"
    folder, made = ensure_sample(out, seed=3, scale=SMALL)
    stamp = (out / PLANTED).stat().st_mtime_ns
    assert made and is_complete(out, 3, SMALL)
    assert ensure_sample(out, seed=3, scale=SMALL) == (folder, False)
    assert (out / PLANTED).stat().st_mtime_ns == stamp
    assert not is_complete(out, 4, SMALL) and ensure_sample(out, seed=4, scale=SMALL)[1]


def test_wet_records_are_cc_format(small: tuple[Path, dict]) -> None:
    """One gzip member per record, a warcinfo record first, conversion records with CC's headers."""
    root, info = small
    cc = info["sources"]["commoncrawl"]
    data = (root / "commoncrawl" / cc["files"][0]).read_bytes()
    members = []
    while data:
        d = zlib.decompressobj(wbits=31)
        members.append(d.decompress(data) + d.flush())
        assert d.eof
        data = d.unused_data
    assert members[0].startswith(b"WARC/1.0\r\nWARC-Type: warcinfo\r\n")
    head = members[1].split(b"\r\n\r\n", 1)[0].decode()
    for key in (
        "WARC-Type: conversion",
        "WARC-Target-URI:",
        "WARC-Block-Digest: sha1:",
        "Content-Length:",
        "WARC-Identified-Content-Language:",
    ):
        assert key in head
    docs, files = read_all(root, info, "commoncrawl")
    assert sum(sf.read for sf in files) == cc["pages"] + len(cc["files"])  # + one warcinfo per file
    dropped = sum((sf.dropped for sf in files), start=Counter())
    assert dropped == {"not_document:warcinfo": len(cc["files"]), "wet_title_only": 1, "empty_conversion": 1}
    for kind, ids in cc["kinds"].items():
        if kind not in ("title_only", "empty"):
            assert all(i in docs for i in ids), kind
    assert all(len(docs[i].text) < 300 for i in cc["kinds"]["short"])


def test_wikipedia_cites_enough_crawled_pages_and_has_real_markup(small: tuple[Path, dict]) -> None:
    root, info = small
    docs, files = read_all(root, info, "wikipedia")
    dropped = sum((sf.dropped for sf in files), start=Counter())
    assert dropped["wikipedia_redirect"] >= 5 and dropped["wikipedia_non_main_namespace"] >= 10
    assert dropped["wikipedia_empty_text"] == 2
    cited = {url_key(u) for d in docs.values() for u in d.meta.get("external_links", [])}
    crawl, _ = read_all(root, info, "commoncrawl")
    matches = {url_key(d.meta["url"]) for d in crawl.values()} & cited
    assert len(matches) >= 20  # lm.min_docs: the classifier trains on cited pages, not the fallback
    assert {d.meta["lang"] for d in docs.values()} == {"en", "fr", "de"}
    raw = __import__("bz2").decompress(
        (root / "wikipedia" / info["sources"]["wikipedia"]["files"][0]).read_bytes()
    )
    for markup in (
        b"{{Infobox settlement",
        b"&lt;ref",
        b"{| class=",
        b"[[Category:",
        b"[[File:",
        b"&lt;!--",
        b"#REDIRECT",
    ):
        assert markup in raw, markup
    text = next(d.text for d in docs.values() if d.meta["lang"] == "en" and "History" in d.text)
    for leftover in ("{{", "}}", "[[", "<ref", "|-", "Category:"):
        assert leftover not in text


def test_each_source_reads_and_drops_what_it_plants(small: tuple[Path, dict]) -> None:
    root, info = small
    for source in READERS:
        docs, files = read_all(root, info, source)
        assert docs, source
        dropped = sum((sf.dropped for sf in files), start=Counter())
        if source == "github":
            gh = info["sources"]["github"]["kinds"]
            assert dropped["licence_not_allowed"] == len(gh["gpl"]) + len(gh["stdlib_psf"])
            assert dropped["licence_unknown"] == len(gh["no_licence"])
            for reason in (
                "max_line_length",
                "mean_line_length",
                "alnum_fraction",
                "alpha_per_token",
                "empty",
            ):
                assert dropped[reason] >= 1, reason
            assert dropped["extension_not_allowed"] == len(gh["data_file"])
            stripped = [d for d in docs.values() if d.meta.get("header_removed")]
            assert stripped and not any("Permission is hereby granted" in d.text for d in docs.values())
        if source == "arxiv":
            assert dropped == {"arxiv_member_unsafe_path": 1, "arxiv_member_link": 1, "arxiv_no_section": 1}
            paper = next(iter(docs.values())).text
            assert paper.startswith("\\section{Introduction}") and "\\newcommand" not in paper
            assert "\\norm" not in paper and "\\lVert" in paper and "\\bibliography" not in paper
        if source == "books":
            assert all(
                "PROJECT GUTENBERG" not in d.text and "FULL NOTICE" not in d.text for d in docs.values()
            )
            assert {d.meta["lang"] for d in docs.values()} == {"en", "fr"}
        if source == "stackexchange":
            se = info["sources"]["stackexchange"]
            assert dropped == {
                "stackexchange_other_post_type": se["other_post_types"],
                "stackexchange_orphan_answer": se["orphan_answers"],
                "stackexchange_bad_row": se["bad_rows"],
            }
            for d in docs.values():
                assert d.meta["answer_scores"] == sorted(d.meta["answer_scores"], reverse=True)
            assert any(
                len(str(s)) != len(str(t))
                for d in docs.values()
                for s, t in zip(d.meta["answer_scores"], d.meta["answer_scores"][1:], strict=False)
            )
        if source == "c4":
            assert all(
                json.loads(line).keys() == {"text", "timestamp", "url"}
                for f in info["sources"]["c4"]["files"]
                for line in gzip.decompress((root / "c4" / f).read_bytes()).decode().splitlines()
            )


def manifest_of(corpus: Path, source: str) -> dict:
    m = json.loads((corpus / source / "manifest.json").read_text())
    assert m["read"] == m["kept"] + sum(m["dropped"].values())
    return m


def kept_ids(corpus: Path, source: str) -> set[str]:
    return {
        i
        for p in sorted((corpus / source).glob("part-*.parquet"))
        for i in pq.read_table(p, columns=["id"])["id"].to_pylist()
    }


@pytest.mark.slow
def test_demo_build_catches_every_planted_item(tmp_path: Path) -> None:
    """`corral lm` + `corral build` on manifests/demo.toml (the recipe defaults) over the full sample."""
    from filters.perplexity import LMTrainingError, kenlm_tool
    from pipeline.build import main as build_main
    from pipeline.lm import main as lm_main

    try:
        kenlm_tool("lmplz")
    except LMTrainingError as exc:
        pytest.skip(str(exc))
    data = tmp_path / "data"
    info = write_sample(data)
    text = (REPO / "manifests" / "demo.toml").read_text().replace("../build/demo/data", str(data))
    text = text.replace('"../build/demo/corpus"', '"corpus"').replace('"../build/demo/lm"', '"lm"')
    (tmp_path / "demo.toml").write_text(text)
    assert lm_main(["--manifest", str(tmp_path / "demo.toml")]) == 0
    ref = json.loads((tmp_path / "lm" / "lm.json").read_text())["wikiref"]
    assert ref["positives"] == "cited_cc_pages" and ref["cited_matches"] >= 20
    assert build_main(["--manifest", str(tmp_path / "demo.toml")]) == 0
    corpus = tmp_path / "corpus"
    m = {s: manifest_of(corpus, s) for s in READERS}
    kept = {s: kept_ids(corpus, s) for s in READERS}
    assert all(m[s]["kept"] > 0 for s in READERS)
    # Common Crawl: every stage of the CCNet chain + MinHash drops something
    cc, planted = m["commoncrawl"], info["sources"]["commoncrawl"]
    for reason in (
        "too_short",
        "line_dedup_empty",
        "lang",
        "lang_score",
        "bucket_tail",
        "wikiref",
        "near_duplicate",
    ):
        assert cc["dropped"].get(reason, 0) > 0, reason
    assert cc["stats"]["lines_removed"] > 1000  # navigation and footers of every site
    kinds = planted["kinds"]
    for kind in ("short", "exact", "spam", "salad", "mash", "timetable", "shop", "forum", "tourism"):
        assert not kept["commoncrawl"] & set(kinds[kind]), kind
    assert not kept["commoncrawl"] & {i for k, ids in kinds.items() if k.startswith("foreign_") for i in ids}
    groups = planted["groups"]["near_dup"] + planted["groups"]["chain"]
    for group in groups:
        assert len(kept["commoncrawl"] & set(group)) <= 1, group  # one copy per cluster at most
    assert cc["dropped"]["near_duplicate"] >= 0.75 * sum(len(g) - 1 for g in groups)  # most reach MinHash
    # chains: the recipe's LSH pairs A~B and B~C only; connected components still drop two of three
    assert all(sorted(map(tuple, p)) == [(0, 1), (1, 2)] for p in planted["chain_lsh_pairs"])
    assert all(j[2] < 0.8 < min(j[0], j[1]) for j in planted["chain_jaccard"])
    assert len(kept["commoncrawl"] & set(kinds["reference"])) > 0.7 * len(kinds["reference"])
    # C4: the rules, line dedup and language ID
    c4, c4k = m["c4"], info["sources"]["c4"]["kinds"]
    for reason in (
        "c4_lorem_ipsum",
        "c4_curly_bracket",
        "c4_too_few_sentences",
        "c4_too_long",
        "lang",
        "line_dedup_empty",
    ):
        assert c4["dropped"].get(reason, 0) > 0, reason
    assert not kept["c4"] & set(c4k["exact"] + c4k["lorem_ipsum"] + c4k["curly_bracket"] + c4k["too_long"])
    # GitHub: licences, heuristics, exact dedup of vendored copies; none of CPython's PSF files
    gh = info["sources"]["github"]["kinds"]
    assert not kept["github"] & set(gh["stdlib_psf"] + gh["gpl"] + gh["no_licence"] + gh["minified"])
    assert len(kept["github"] & set(gh["vendored"])) == 1 and m["github"]["dropped"]["duplicate_text"] >= 2
    # Books: the second edition is a near-duplicate of the first
    books = info["sources"]["books"]
    assert kept["books"] & {books["second_edition_of"]} and not kept["books"] & set(
        books["kinds"]["second_edition"]
    )
    assert (
        m["arxiv"]["dropped"]["arxiv_no_section"] == 1 and m["arxiv"]["repaired"]["arxiv_missing_input"] == 1
    )
