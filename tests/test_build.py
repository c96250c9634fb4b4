"""The build job end to end on small original fixtures: accounting, dedup, LID, dead letters, rerun."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from build_corpus import BOILERPLATE, cc_pages

from filters.document import Document
from pipeline.build import main
from pipeline.ccnet import LineDedup
from pipeline.common import COUNTS
from pipeline.dedup import connected_components

FIXTURES = Path(__file__).resolve().parent / "fixtures"

MANIFEST = """
output = "out"
seed = 1
[sources.commoncrawl]
reader = "wet"
inputs = ["{fx}/build_cc.warc.wet", "{fx}/build_cc_truncated.warc.wet.gz"]
weight = 1.0
exact_dedup = true
[sources.commoncrawl.ccnet]
enabled = true
languages = ["en"]
perplexity = false
[sources.commoncrawl.minhash]
enabled = true
threshold = 0.8
[sources.wikipedia]
reader = "wikipedia_xml"
inputs = ["{fx}/build_enwiki.xml"]
weight = 1.0
[sources.wikipedia.minhash]
enabled = true
"""


def rows(out: Path, source: str) -> list[dict]:
    parts = sorted((out / source).glob("part-*.parquet"))
    return [r for p in parts for r in pq.read_table(p).to_pylist()]


def manifest_of(out: Path, source: str) -> dict:
    return json.loads((out / source / "manifest.json").read_text())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("build")
    (root / "m.toml").write_text(MANIFEST.format(fx=FIXTURES))
    assert main(["--manifest", str(root / "m.toml")]) == 0
    return root


def test_counts_balance_exactly(built: Path) -> None:
    for source in ("commoncrawl", "wikipedia"):
        m = manifest_of(built / "out", source)
        assert m["read"] == m["kept"] + sum(m["dropped"].values())
        assert m["kept"] == len(rows(built / "out", source)) > 0
        assert sum(p["rows"] for p in m["parts"]) == m["kept"]
    cc = manifest_of(built / "out", "commoncrawl")
    assert cc["dropped"]["too_short"] == 1 and cc["dropped"]["lang"] == 1
    assert cc["dropped"]["near_duplicate"] == 1 and cc["dropped"]["reader_error"] == 1
    assert cc["models"]["langid"] and cc["versions"]["apache-beam"] == beam.__version__


def test_planted_duplicate_lines_are_removed_everywhere(built: Path) -> None:
    texts = [r["text"] for r in rows(built / "out", "commoncrawl")]
    for line in BOILERPLATE:
        assert not any(line in t for t in texts)
    stats = manifest_of(built / "out", "commoncrawl")["stats"]
    assert stats["lines_removed"] >= 2 * 8


def test_near_duplicates_collapse_to_the_smallest_id(built: Path) -> None:
    from filters.sources.base import ReadStats
    from filters.sources.commoncrawl import read_wet

    with open(FIXTURES / "build_cc.warc.wet", "rb") as f:
        pair = [d.id for d in read_wet(f, "build_cc.warc.wet", ReadStats()) if "story" in d.meta["url"]]
    kept = [r["id"] for r in rows(built / "out", "commoncrawl") if "story" in r["url"]]
    assert len(pair) == 2 and kept == [min(pair)]


def test_french_page_dropped_and_lang_recorded(built: Path) -> None:
    out = rows(built / "out", "commoncrawl")
    assert not any("exemple.fr" in (r["url"] or "") for r in out)
    assert all(r["lang"] == "en" and r["lang_score"] >= 0.5 for r in out)


def test_corrupt_file_is_a_dead_letter_and_the_rest_is_built(built: Path) -> None:
    lines = (built / "out" / "commoncrawl" / "dead_letters.jsonl").read_text().splitlines()
    dead = [json.loads(x) for x in lines]
    assert len(dead) == 1 and dead[0]["reason"] == "reader_error"
    assert dead[0]["file"].endswith("build_cc_truncated.warc.wet.gz") and "byte" in dead[0]["position"]
    # the record before the break was kept
    assert any(r["id"].startswith("build_cc_truncated") for r in rows(built / "out", "commoncrawl"))


def test_rows_sorted_and_no_temp_files(built: Path) -> None:
    ids = [r["id"] for r in rows(built / "out", "wikipedia")]
    assert ids == sorted(ids)
    assert not list((built / "out").rglob("*tmp*"))


def test_rerun_is_a_noop_and_force_rebuilds(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = built / "out" / "wikipedia" / "manifest.json"
    before = manifest.stat().st_mtime_ns
    assert main(["--manifest", str(built / "m.toml"), "--sources", "wikipedia"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert manifest.stat().st_mtime_ns == before
    data = manifest.read_bytes()
    assert main(["--manifest", str(built / "m.toml"), "--sources", "wikipedia", "--force"]) == 0
    assert manifest.stat().st_mtime_ns != before and manifest.read_bytes() == data


def test_incomplete_output_is_cleared(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    (out / "wikipedia").mkdir(parents=True)
    (out / "wikipedia" / "part-00007-of-00009.parquet").write_bytes(b"half written")
    assert main(["--manifest", str(built / "m.toml"), "--sources", "wikipedia", "--output", str(out)]) == 0
    assert not (out / "wikipedia" / "part-00007-of-00009.parquet").exists()


def test_one_and_two_workers_give_identical_bytes(built: Path, tmp_path: Path) -> None:
    out = tmp_path / "two"
    argv = ["--manifest", str(built / "m.toml"), "--output", str(out), "--direct_num_workers", "2"]
    assert main(argv) == 0
    for source in ("commoncrawl", "wikipedia"):
        one = sorted(p.name for p in (built / "out" / source).iterdir())
        assert one == sorted(p.name for p in (out / source).iterdir())
        for name in one:
            assert (built / "out" / source / name).read_bytes() == (out / source / name).read_bytes(), name


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (('"{fx}/build_enwiki.xml"', '"{fx}/no_such_*.xml"'), "sources.wikipedia.inputs[0]"),
        (('reader = "wikipedia_xml"', 'reader = "nope"'), "sources.wikipedia.reader"),
        (
            ("weight = 1.0\n[sources.wikipedia.minhash]", "weight = 0.0\n[sources.wikipedia.minhash]"),
            "sources.wikipedia.weight",
        ),
        (("perplexity = false", "perplexity = true"), "sources.commoncrawl.ccnet.perplexity"),
    ],
)
def test_bad_manifest_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], key: str
) -> None:
    text = MANIFEST.replace(*edit).format(fx=FIXTURES)
    (tmp_path / "m.toml").write_text(text)
    assert main(["--manifest", str(tmp_path / "m.toml")]) == 2
    err = capsys.readouterr().err
    assert key in err and "m.toml" in err
    assert not (tmp_path / "out").exists()


def test_connected_components_keep_the_smallest_id() -> None:
    comps = connected_components([("b", "c"), ("a", "b"), ("x", "y"), ("d", "c")])
    assert comps == {"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x"}


def test_hot_line_in_every_document_is_removed() -> None:
    """One boilerplate line in all 3000 docs: counted by the combiner, removed from every document."""
    hot = "Share this page on social media"
    # Digits normalise to 0 (SPEC §3), so the unique lines differ by letters.
    words = ["".join(chr(97 + (i // 26**k) % 26) for k in range(3)) for i in range(3000)]
    docs = [
        Document(f"d{i:05d}", "t", f"{hot}\nUnique body line {w} of the corpus.\n{hot}")
        for i, w in enumerate(words)
    ]
    docs.append(Document("z", "t", "nothing shared here"))
    with BeamTestPipeline() as p:
        batches = p | beam.Create(docs) | beam.BatchElements(min_batch_size=100, max_batch_size=100)
        out = batches | LineDedup("t", shards=7)
        flat = out.docs | beam.FlatMap(lambda batch: batch)
        assert_that(flat | beam.Map(lambda d: hot in d.text) | beam.CombineGlobally(any), equal_to([False]))
        assert_that(
            flat | beam.Map(lambda d: d.text) | beam.Filter(lambda t: " haa " in t),
            equal_to(["Unique body line haa of the corpus."]),
            label="body_kept",
        )
        assert_that(
            out[COUNTS] | beam.CombinePerKey(sum) | beam.Filter(lambda kv: kv[0] == "stat.lines_removed"),
            equal_to([("stat.lines_removed", 6000)]),
            label="removed",
        )


def test_line_dedup_with_nothing_duplicated_or_no_documents_keeps_everything() -> None:
    """No shard has a duplicated hash (and, for an empty source, no shard at all): nothing is removed."""
    docs = [Document(f"d{i}", "t", f"only line {chr(97 + i)}\nand {chr(98 + i)} here") for i in range(4)]
    with BeamTestPipeline() as p:
        out = p | beam.Create([docs[:2], docs[2:]]) | LineDedup("t", shards=3)
        texts = out.docs | beam.FlatMap(lambda batch: [d.text for d in batch])
        assert_that(texts, equal_to([d.text for d in docs]))
        empty = p | "NoDocs" >> beam.Create([]) | "DedupEmpty" >> LineDedup("t", shards=3)
        assert_that(empty.docs, equal_to([]), label="empty")


def test_batch_coders_round_trip_documents_and_hashes() -> None:
    import numpy as np

    from pipeline.ccnet import HashedBatchCoder, hash_batch
    from pipeline.common import DocBatch, DocBatchCoder

    docs = [Document("a", "t", "x\ny", {"url": "u", "n": 1}), Document("b", "t", "", {})]
    coder = DocBatchCoder()
    assert coder.decode(coder.encode(DocBatch(docs))) == docs
    pairs = DocBatch([(docs[0], np.arange(3))])  # not only Documents: pickled row by row
    back = coder.decode(coder.encode(pairs))
    assert back[0][0] == docs[0] and back[0][1].tolist() == [0, 1, 2]
    hashed = hash_batch(docs)
    again = HashedBatchCoder().decode(HashedBatchCoder().encode(hashed))
    assert again.docs == docs and again.hashes.tolist() == hashed.hashes.tolist()
    assert again.lines.tolist() == [2, 1]  # "" is one (empty) line, as str.split gives
    with pytest.raises(ValueError, match="2 documents, 2 line counts, 3 hashes"):
        type(hashed)(docs, hashed.hashes, np.array([2, 0]))


def test_line_dedup_counts_lines_in_a_lifted_combiner_never_grouping_documents() -> None:
    """The hot-key guarantee is structural: hash shards counted by a CombinePerKey, no GroupByKey of documents."""
    labels: list[str] = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):  # noqa: ANN001
            labels.append(type(node.transform).__name__)

    p = beam.Pipeline()
    _ = p | beam.Create([[Document("a", "t", "x")]]) | LineDedup("t", shards=8)
    p.visit(Visitor())
    assert "CombinePerKey" in labels and "GroupByKey" not in labels[: labels.index("CombinePerKey")]


def test_shard_counts_precount_and_split_by_residue() -> None:
    import numpy as np

    from pipeline.ccnet import ShardCountsFn, hash_batch, shard_counts

    docs = [Document(f"d{i}", "t", f"same line\nline {chr(97 + i)}\nsame line") for i in range(5)]
    parts = list(shard_counts(hash_batch(docs), 3))
    assert sorted({k for k, _ in parts}) == [k for k, _ in parts] and all(0 <= k < 3 for k, _ in parts)
    fn = ShardCountsFn()
    dup = np.concatenate([fn.extract_output(fn.add_input(fn.create_accumulator(), v)) for _, v in parts])
    same = hash_batch([Document("x", "t", "same line")]).hashes
    assert dup.tolist() == same.tolist()  # only the shared line is seen twice; each "line X" once


def test_shipped_fixture_pages_are_as_planted() -> None:
    urls = [u for u, _ in cc_pages()]
    assert len(urls) == len(set(urls)) == 13
    assert shutil.which("true")  # sanity: the environment runs subprocesses (multi-processing workers)
