"""`corral lm` (CCNet's LM step + the wiki-ref classifier) and the perplexity/wiki-ref stages of the build."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from build_corpus import cc_pages, wiki_pages_mixed, wiki_xml

from filters.perplexity import PerplexityScorer, kenlm_tool
from manifests.storage import sha256_of
from pipeline.build import main as build_main
from pipeline.lm import main as lm_main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = FIXTURES.parents[1]
CITED = [u for u, _ in cc_pages() if "example.org/page" in u]  # 8 clean English pages of build_cc

MANIFEST = """
output = "out"
seed = 1
[lm]
source = "wikipedia"
output = "lm"
vocab_size = 2000
min_docs = 5
[sources.commoncrawl]
reader = "wet"
inputs = ["{fx}/build_cc.warc.wet"]
weight = 1.0
[sources.commoncrawl.ccnet]
languages = []
keep_buckets = {buckets}
missing_lm = "{missing}"
wikiref = {wikiref}
wikiref_threshold = {threshold}
[sources.wikipedia]
reader = "wikipedia_xml"
inputs = ["{wiki}"]
weight = 1.0
"""


def write_manifest(root: Path, name: str, wiki: Path, **kw: object) -> Path:
    settings = {
        "buckets": '["head", "middle", "tail"]',
        "missing": "keep",
        "wikiref": "false",
        "threshold": 0.25,
    }
    settings.update(kw)
    path = root / name
    path.write_text(MANIFEST.format(fx=FIXTURES, wiki=wiki, **settings))
    return path


def rows(out: Path, source: str) -> list[dict]:
    return [r for p in sorted((out / source).glob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def manifest_of(out: Path, source: str) -> dict:
    m = json.loads((out / source / "manifest.json").read_text())
    assert m["read"] == m["kept"] + sum(m["dropped"].values())
    return m


@pytest.fixture(scope="module")
def lm_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained LM dir: a 60-article wiki (half with table debris) citing the 8 clean CC pages."""
    try:
        kenlm_tool("lmplz")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("lm")
    (root / "wiki.xml").write_bytes(wiki_xml(wiki_pages_mixed(60, cite=CITED)))
    manifest = write_manifest(root, "m.toml", root / "wiki.xml")
    assert lm_main(["--manifest", str(manifest)]) == 0
    yield root
    shutil.rmtree(root / "lm", ignore_errors=True)  # the fastText model is large: do not keep it around


def test_lm_index_has_models_cutoffs_and_checksums(lm_root: Path) -> None:
    index = json.loads((lm_root / "lm" / "lm.json").read_text())
    en = index["languages"]["en"]
    assert en["docs"] == 60 and en["cutoffs_from"] == "heldout" and 5 <= en["cutoff_docs"] < 60
    assert 1.0 < en["p30"] <= en["p60"]
    for rel, sha in index["checksums"].items():
        assert sha256_of(str(lm_root / "lm" / rel)) == sha
    scorer = PerplexityScorer(lm_root / "lm" / en["sp_model"], lm_root / "lm" / en["kenlm_model"])
    assert scorer.perplexity("qwpeoriu zmxncbv lkajsdhf poiuqwer") > 10 * en["p60"]


def test_wikiref_positives_are_the_cited_cc_pages(lm_root: Path) -> None:
    ref = json.loads((lm_root / "lm" / "lm.json").read_text())["wikiref"]
    assert ref["positives"] == "cited_cc_pages" and ref["cited_matches"] == len(CITED) == ref["n_positives"]
    assert ref["n_negatives"] == len(cc_pages()) - len(CITED)
    assert (lm_root / "lm" / ref["model"]).is_file()


def test_lm_rerun_is_a_noop(lm_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (lm_root / "lm" / "lm.json").stat().st_mtime_ns
    assert lm_main(["--manifest", str(lm_root / "m.toml")]) == 0
    assert "skipped" in capsys.readouterr().out
    assert (lm_root / "lm" / "lm.json").stat().st_mtime_ns == before


def test_mash_lands_in_tail_and_clean_prose_in_head_or_middle(lm_root: Path) -> None:
    assert build_main(["--manifest", str(lm_root / "m.toml"), "--sources", "commoncrawl"]) == 0
    out = {r["url"]: r for r in rows(lm_root / "out", "commoncrawl")}
    assert out["http://spam.example.biz/x"]["bucket"] == "tail"
    for url in CITED:
        assert out[url]["bucket"] in ("head", "middle"), (url, out[url]["perplexity"])
    # French has no LM: kept (missing_lm = "keep"), counted, no bucket
    assert out["http://exemple.fr/village"]["bucket"] is None
    m = manifest_of(lm_root / "out", "commoncrawl")
    assert m["stats"]["no_lm"] == 1 and "no_lm" not in m["dropped"]
    assert any(k.startswith("lm/") for k in m["models"])


def test_keep_buckets_and_missing_lm_drop_are_counted(lm_root: Path) -> None:
    path = write_manifest(
        lm_root, "strict.toml", lm_root / "wiki.xml", buckets='["head", "middle"]', missing="drop"
    )
    out = lm_root / "strict"
    assert build_main(["--manifest", str(path), "--sources", "commoncrawl", "--output", str(out)]) == 0
    m = manifest_of(out, "commoncrawl")
    assert m["dropped"]["no_lm"] == 1 and m["dropped"]["bucket_tail"] >= 1
    assert all(r["bucket"] in ("head", "middle") for r in rows(out, "commoncrawl"))


def test_wikiref_drops_are_counted(lm_root: Path) -> None:
    path = write_manifest(lm_root, "wr.toml", lm_root / "wiki.xml", wikiref="true", threshold=0.5)
    out = lm_root / "wr"
    assert build_main(["--manifest", str(path), "--sources", "commoncrawl", "--output", str(out)]) == 0
    m = manifest_of(out, "commoncrawl")
    kept = rows(out, "commoncrawl")
    assert m["dropped"].get("wikiref", 0) >= 1, m["dropped"]
    assert kept and all(json.loads(r["meta"])["wikiref_prob"] >= 0.5 for r in kept)
    with_threshold_0 = write_manifest(
        lm_root, "wr0.toml", lm_root / "wiki.xml", wikiref="true", threshold=0.0
    )
    out0 = lm_root / "wr0"
    assert (
        build_main(["--manifest", str(with_threshold_0), "--sources", "commoncrawl", "--output", str(out0)])
        == 0
    )
    probs = {r["id"]: json.loads(r["meta"])["wikiref_prob"] for r in rows(out0, "commoncrawl")}
    kept_ids = {r["id"] for r in kept}
    assert all(p <= 0.5 for i, p in probs.items() if i not in kept_ids)  # recorded prob is rounded to 4 dp
    assert len(probs) - len(kept) == m["dropped"]["wikiref"]


def test_dataflow_dry_run_translates_the_whole_chain(lm_root: Path, tmp_path: Path) -> None:
    """DataflowRunner with --dry_run: the pipeline (perplexity and wiki-ref included) becomes a Dataflow
    job description without credentials or any network call; nothing is written."""
    pytest.importorskip("google.auth", reason="apache-beam[gcp] is not installed: Dataflow cannot translate")
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    from manifests.schema import load_manifest
    from pipeline.build import add_source, plan

    path = write_manifest(lm_root, "df.toml", lm_root / "wiki.xml", wikiref="true")
    manifest = load_manifest(path)
    files = plan(manifest, list(manifest.sources))
    opts = PipelineOptions(
        ["--project", "corral-test", "--region", "us-central1", "--temp_location", "gs://corral-test/tmp",
         "--sdk_container_image", "us-docker.pkg.dev/corral-test/corral/beam:test", "--dry_run", "True"]
    )  # fmt: skip
    runner = DataflowRunner()
    p = beam.Pipeline(runner=runner, options=opts)
    for name in manifest.sources:
        add_source(p, manifest, name, files[name], str(tmp_path / "df" / name))
    result = p.run()
    result.wait_until_finish()
    names = {t.unique_name for t in runner.proto_pipeline.components.transforms.values()}
    stages = ("LineDedup[commoncrawl]/ByShard", "MinePass[commoncrawl]", "NearDuplicates[commoncrawl]")
    for stage in (*stages, "WritePass[wikipedia]", "Finalize[wikipedia]"):
        assert any(n.startswith(stage) for n in names), stage
    assert result.job.proto.name  # a job description was built
    images = {e.payload for e in runner.proto_pipeline.components.environments.values()}
    assert any(b"corral/beam:test" in img for img in images)
    assert not list((tmp_path / "df").rglob("*.parquet"))
    # and through the command line, as documented
    argv = ["--manifest", str(path), "--output", str(tmp_path / "cli"), "--runner", "DataflowRunner",
            "--project", "corral-test", "--region", "us-central1", "--temp_location", "gs://corral-test/tmp",
            "--dry_run", "True"]  # fmt: skip
    # (a syntactically invalid bucket such as gs://b/t makes Beam try to create a default bucket: network)
    assert build_main(argv) == 0
    assert not list((tmp_path / "cli").rglob("manifest.json"))


def test_demo_manifest_lm_and_build_cover_all_seven_sources(tmp_path: Path) -> None:
    """`make demo`'s data steps on manifests/demo.toml (a small generated sample, outputs in a temp folder)."""
    from corral.sample import write_sample

    try:
        kenlm_tool("lmplz")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    write_sample(tmp_path / "data", scale=0.25, stdlib=10)
    text = (REPO / "manifests" / "demo.toml").read_text()
    text = text.replace("../build/demo/data", str(tmp_path / "data"))
    text = text.replace('"../build/demo/corpus"', '"corpus"').replace('"../build/demo/lm"', '"lm"')
    (tmp_path / "demo.toml").write_text(text)
    assert lm_main(["--manifest", str(tmp_path / "demo.toml")]) == 0
    index = json.loads((tmp_path / "lm" / "lm.json").read_text())
    assert index["wikiref"]["positives"] == "cited_cc_pages"  # the demo wiki cites crawled reference pages
    assert build_main(["--manifest", str(tmp_path / "demo.toml")]) == 0
    sources = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")
    for source in sources:
        assert manifest_of(tmp_path / "corpus", source)["kept"] > 0, source
    assert all(
        r["lang"] == "en" and r["bucket"] is None for r in rows(tmp_path / "corpus", "c4")
    )  # C4: no pp
    assert all(r["bucket"] in ("head", "middle") for r in rows(tmp_path / "corpus", "commoncrawl"))
    shutil.rmtree(tmp_path / "lm")
