"""The build job on the real public samples in ../shared/data: every source with its recipe, exact
accounting, and cc_net's line-dedup rule reproduced on real pages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from filters.perplexity import kenlm_tool
from pipeline.build import main
from pipeline.lm import main as lm_main

# Only what the tiny sample needs differs from the paper's recipe (a few hundred articles, ~20 CC pages).
MANIFEST = """
output = "out"
seed = 1
[lm]
output = "lm"
languages = ["en"]
vocab_size = 4000
[sources.commoncrawl]
reader = "wet"
inputs = ["{d}/commoncrawl/*.wet*"]
weight = 0.67
[sources.commoncrawl.ccnet]
keep_buckets = ["head", "middle", "tail"]
wikiref_threshold = 0.0
[sources.c4]
reader = "c4_json"
inputs = ["{d}/c4_web/*.json*.gz"]
weight = 0.15
[sources.github]
reader = "github"
inputs = ["{d}/github_code/*.jsonl.gz"]
weight = 0.045
[sources.wikipedia]
reader = "wikipedia_xml"
inputs = ["{d}/wikipedia/*wiki*.bz2"]
weight = 0.045
[sources.books]
reader = "gutenberg"
inputs = ["{d}/gutenberg/*.txt.gz"]
weight = 0.045
[sources.arxiv]
reader = "arxiv"
inputs = ["{d}/arxiv/*.tar.gz"]
weight = 0.025
[sources.stackexchange]
reader = "stackexchange"
inputs = ["{d}/stackexchange/*Posts.xml.gz"]
weight = 0.02
"""


def _rows(out: Path, source: str, columns: list[str] | None = None) -> list[dict]:
    return [
        r
        for f in sorted((out / source).glob("part-*.parquet"))
        for r in pq.read_table(f, columns=columns).to_pylist()
    ]


@pytest.fixture(scope="module")
def real_build(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        kenlm_tool("lmplz")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("realdata")
    (root / "m.toml").write_text(MANIFEST.format(d=shared_data))
    assert lm_main(["--manifest", str(root / "m.toml")]) == 0
    assert main(["--manifest", str(root / "m.toml")]) == 0
    return root


@pytest.mark.realdata
def test_every_source_builds_with_exact_accounting(real_build: Path) -> None:
    out = real_build / "out"
    for name in ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange"):
        m = json.loads((out / name / "manifest.json").read_text())
        assert m["read"] == m["kept"] + sum(m["dropped"].values()), name
        assert sum(i["read"] for i in m["inputs"]) == m["read"], name
        files = sorted((out / name).glob("part-*.parquet"))
        assert sum(pq.read_metadata(f).num_rows for f in files) == m["kept"] > 0, name
        ids = [r["id"] for r in _rows(out, name, ["id"])]
        assert len(ids) == len(set(ids)), f"{name}: duplicate ids"
    cc = json.loads((out / "commoncrawl" / "manifest.json").read_text())
    assert cc["dropped"].get("too_short", 0) > 0 and cc["dropped"].get("lang", 0) > 0
    assert cc["settings"]["ccnet"]["perplexity"] and cc["settings"]["ccnet"]["wikiref"]  # the recipe ran
    assert all(r["lang"] == "en" and r["bucket"] for r in _rows(out, "commoncrawl"))
    assert all(r["title"] for r in _rows(out, "commoncrawl"))
    github = json.loads((out / "github" / "manifest.json").read_text())
    assert github["dropped"].get("duplicate_text", 0) > 0  # exact copies in the four repos, one kept


@pytest.mark.realdata
def test_wikipedia_text_has_no_unmatched_link_brackets(real_build: Path) -> None:
    for row in _rows(real_build / "out", "wikipedia", ["id", "text"]):
        for line in row["text"].split("\n"):
            assert line.count("[[") == line.count("]]"), (row["id"], line[:200])


@pytest.mark.realdata
def test_arxiv_text_starts_at_a_section_of_the_body(real_build: Path) -> None:
    for row in _rows(real_build / "out", "arxiv", ["id", "text"]):
        head = row["text"].lstrip()
        assert head.startswith(("\\section", "\\chapter", "\\subsection", "\\paragraph")), (
            row["id"],
            head[:80],
        )
        assert "\\usepackage" not in row["text"] and "\\titleformat" not in row["text"], row["id"]


def _ccnet_reference(docs: dict[str, str]) -> dict[str, str]:
    """cc_net's two passes (`HashesCollector` then `DuplicatesRemover` + `finalize_doc`), written out."""
    from filters.dedup import line_hash
    from filters.normalize import normalize_for_dedup

    def hashes(text: str) -> list[int]:
        return [line_hash(normalize_for_dedup(line)) for line in text.split("\n")]

    seen_in: Counter[int] = Counter()
    for text in docs.values():
        seen_in.update(set(hashes(text)))  # `FlatHashSet.add` of one document's array counts it once
    out = {}
    for doc_id, text in docs.items():
        kept, seen = [], set()
        for line, h in zip(text.split("\n"), hashes(text), strict=True):
            if seen_in[h] < 2 and h not in seen:
                kept.append(line)
            seen.add(h)
        if kept:
            out[doc_id] = "\n".join(kept)
    return out


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("lookup", "path"), [("", "broadcast"), ("broadcast_max_hashes = 0\ndedup_shards = 5\n", "per_file")]
)
def test_line_dedup_equals_the_cc_net_rule_on_real_pages(
    shared_data: Path, tmp_path: Path, lookup: str, path: str
) -> None:
    """Every real WET page, line dedup alone (no length, LID or MinHash stage): the build's text equals the
    reference computed with cc_net's rule on the reader's documents, on both verdict lookups (duplicated
    hashes broadcast to every worker, or verdicts computed at the hash shards and sent back per file)."""
    from filters.sources.source_file import SourceFile

    files = sorted((shared_data / "commoncrawl").glob("*.wet*"))
    docs = {d.id: d.text for f in files for d in SourceFile("wet", str(f))}
    expected = _ccnet_reference(docs)
    inputs = ", ".join(json.dumps(str(f)) for f in files)
    (tmp_path / "m.toml").write_text(
        f'output = "out"\nseed = 1\n[sources.cc]\nreader = "wet"\ninputs = [{inputs}]\nweight = 1\n'
        "[sources.cc.ccnet]\nmin_length = 0\nlangid = false\nperplexity = false\nwikiref = false\n"
        f"{lookup}[sources.cc.minhash]\nenabled = false\n"
    )
    assert main(["--manifest", str(tmp_path / "m.toml")]) == 0
    got = {r["id"]: r["text"] for r in _rows(tmp_path / "out", "cc", ["id", "text"])}
    assert got == expected and len(got) > 10
    assert json.loads((tmp_path / "out" / "cc" / "manifest.json").read_text())["paths"]["line_dedup"] == path
