"""The build job end to end on small original fixtures: accounting, dedup, LID, dead letters, rerun."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from build_corpus import BOILERPLATE, paragraph, write_wet

from filters.components import union_find_roots
from filters.sources.base import ReadStats
from filters.sources.commoncrawl import read_wet
from pipeline.build import main

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
perplexity = false
wikiref = false
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
    (out / "wikipedia" / "_tmp" / "spill").mkdir(parents=True)
    (out / "wikipedia" / "part-00007-of-00009.parquet").write_bytes(b"half written")
    (out / "wikipedia" / "_tmp" / "spill" / "00003-0000.arrow").write_bytes(b"killed build")
    assert main(["--manifest", str(built / "m.toml"), "--sources", "wikipedia", "--output", str(out)]) == 0
    assert not (out / "wikipedia" / "part-00007-of-00009.parquet").exists()
    assert not (out / "wikipedia" / "_tmp").exists()
    assert (out / "wikipedia" / "manifest.json").exists()


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
    comps = union_find_roots([("b", "c"), ("a", "b"), ("x", "y"), ("d", "c")])
    assert comps == {"a": "a", "b": "a", "c": "a", "d": "a", "x": "x", "y": "x"}


def test_wet_title_is_meta_not_text(built: Path) -> None:
    out = rows(built / "out", "commoncrawl")
    page0 = next(r for r in out if r["url"] == "http://example.org/page0")
    assert page0["title"] == "Page0 | Example" and "Page0 | Example" not in page0["text"]
    assert json.loads(page0["meta"])["source_domain"] == "example.org"


def test_manifest_records_effective_settings_and_per_file_counts(built: Path) -> None:
    m = manifest_of(built / "out", "commoncrawl")
    cc = m["settings"]["ccnet"]
    assert cc["enabled"] and cc["line_dedup"] == "ccnet" and cc["languages"] == ["en"]  # the wet recipe
    assert cc["dedup_shards"] == 256  # "auto" resolved from the input size (the minimum for a small source)
    assert m["settings"]["minhash"]["enabled"] and m["paths"]["line_dedup"] == "broadcast"
    assert sum(i["read"] for i in m["inputs"]) == m["read"]
    # what the report draws: cluster sizes, languages before the filter, line counts
    assert m["near_duplicate_clusters"] == {"2": 1} and m["dropped"]["near_duplicate"] == 1
    assert m["stats"]["lang.en"] >= m["kept"] and m["stats"]["lang.fr"] == 1
    assert m["stats"]["lines"] > m["stats"]["lines_removed"] > 0


def _write_manifest(root: Path, body: str) -> Path:
    path = root / "m.toml"
    path.write_text('output = "out"\nseed = 1\n' + body)
    return path


CC_ONLY = """
[sources.cc]
reader = "wet"
inputs = ["{inputs}"]
weight = 1.0
[sources.cc.ccnet]
perplexity = false
wikiref = false
languages = []
min_length = 0
{extra}
"""


def _cc_build(
    tmp_path: Path, pages: list[tuple[str, str]], extra: str = "", name: str = "m", top: str = ""
) -> Path:
    """Build one `wet` source of `pages`; `extra` goes into its ccnet table, `top` into the source table."""
    root = tmp_path / name
    root.mkdir()
    write_wet(root / "in.warc.wet", pages)
    body = CC_ONLY.format(inputs=root / "in.warc.wet", extra=extra).replace(
        "weight = 1.0\n", f"weight = 1.0\n{top}\n"
    )
    manifest = _write_manifest(root, body)
    assert main(["--manifest", str(manifest)]) == 0
    return root / "out"


def test_line_repeated_inside_one_document_keeps_its_first_copy(tmp_path: Path) -> None:
    """cc_net `finalize_doc`: a hash counts once per document; later copies inside it go, the first stays.
    The same line in two documents is removed from both."""
    rng = __import__("random").Random(3)
    body = [paragraph(rng, 3) for _ in range(6)]
    pages = [
        ("http://a.example/1", "\n".join([body[0], "Alpha line", "Beta line", "Alpha line", "Gamma"])),
        ("http://b.example/2", "\n".join([body[1], "Shared line", body[2]])),
        ("http://c.example/3", "\n".join([body[3], "Shared line", body[4]])),
    ]
    texts = {r["url"]: r["text"] for r in rows(_cc_build(tmp_path, pages), "cc")}
    assert texts["http://a.example/1"] == "\n".join([body[0], "Alpha line", "Beta line", "Gamma"])
    assert texts["http://b.example/2"] == f"{body[1]}\n{body[2]}"
    assert texts["http://c.example/3"] == f"{body[3]}\n{body[4]}"


def test_hot_line_in_every_document_and_per_file_verdicts_agree_with_broadcast(tmp_path: Path) -> None:
    """One boilerplate line in all 3,000 documents: removed from every one, on both lookup paths."""
    hot = "Share this page on social media"
    words = ["".join(chr(97 + (i // 26**k) % 26) for k in range(3)) for i in range(3000)]
    pages = [
        (f"http://e.example/{i}", f"{hot}\nUnique body line {w} of the corpus.\n{hot}")
        for i, w in enumerate(words)
    ]
    pages.append(("http://e.example/z", "nothing shared here"))
    broadcast = _cc_build(
        tmp_path, pages, "langid = false\n[sources.cc.minhash]\nenabled = false", "broadcast"
    )
    per_file = _cc_build(
        tmp_path,
        pages,
        "langid = false\nbroadcast_max_hashes = 0\ndedup_shards = 7\n[sources.cc.minhash]\nenabled = false",
        "sharded",
    )
    for out in (broadcast, per_file):
        texts = [r["text"] for r in rows(out, "cc")]
        assert len(texts) == 3001 and not any(hot in t for t in texts)
        assert "Unique body line haa of the corpus." in texts
        assert manifest_of(out, "cc")["stats"]["lines_removed"] == 6000  # both copies: a duplicate everywhere
    assert manifest_of(broadcast, "cc")["paths"]["line_dedup"] == "broadcast"
    assert manifest_of(per_file, "cc")["paths"]["line_dedup"] == "per_file"
    assert (broadcast / "cc" / "part-00000-000.parquet").read_bytes() == (
        per_file / "cc" / "part-00000-000.parquet"
    ).read_bytes()


@pytest.mark.parametrize(
    ("top", "extra", "reason"),
    [
        ("exact_dedup = true", "", "duplicate_text"),  # exact copies count once in line dedup; one is kept
        ("", "line_dedup = false", "near_duplicate"),  # one MinHash bucket holding every document
    ],
)
def test_every_document_identical_keeps_exactly_one(
    tmp_path: Path, top: str, extra: str, reason: str
) -> None:
    text = paragraph(__import__("random").Random(5), 8)
    pages = [(f"http://same.example/{i:04d}", text) for i in range(500)]
    out = _cc_build(tmp_path, pages, extra, top=top)
    kept = rows(out, "cc")
    assert len(kept) == 1 and kept[0]["text"] == text and kept[0]["url"] == "http://same.example/0000"
    assert manifest_of(out, "cc")["dropped"] == {reason: 499}


def test_a_lost_document_fails_the_build_and_leaves_no_output(tmp_path: Path, monkeypatch) -> None:
    """A stage that loses a document without counting it: the balance check names the file, nothing is
    committed (FnApiRunner runs the DoFns in this process, so the test double takes effect)."""
    from filters import ccnet

    real = ccnet.Miner.mine

    def lossy(self, docs, exact, duplicated, line_hashes=None):
        mined = real(self, docs, exact, duplicated, line_hashes)
        mined.kept = mined.kept[1:]
        mined.band_keys = mined.band_keys[1:]
        return mined

    monkeypatch.setattr(ccnet.Miner, "mine", lossy)
    root = tmp_path / "lost"
    root.mkdir()
    rng = __import__("random").Random(9)
    write_wet(root / "in.warc.wet", [(f"http://l.example/{i}", paragraph(rng, 3)) for i in range(20)])
    manifest = _write_manifest(root, CC_ONLY.format(inputs=root / "in.warc.wet", extra=""))
    with pytest.raises(Exception, match=r"does not balance.*lost/in\.warc\.wet \(read 20, kept 19"):
        main(["--manifest", str(manifest)])
    assert not (root / "out" / "cc" / "manifest.json").exists()
    assert not list((root / "out" / "cc").glob("part-*"))


def test_explain_prints_the_recipe_without_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _write_manifest(tmp_path, CC_ONLY.format(inputs=tmp_path / "nothing.wet", extra=""))
    assert main(["--manifest", str(manifest), "--explain"]) == 0
    out = capsys.readouterr().out
    assert "[sources.cc.ccnet]" in out and "min_length = 0  # set" in out and 'missing_lm = "drop"' in out
    assert not (tmp_path / "out").exists()


def test_reader_alone_gets_the_papers_recipe(tmp_path: Path) -> None:
    from manifests.schema import ManifestError, load_manifest

    path = _write_manifest(tmp_path, '[sources.cc]\nreader = "wet"\ninputs = ["x"]\nweight = 1\n')
    with pytest.raises(ManifestError, match="sources.cc.ccnet.perplexity.*lm.source"):
        load_manifest(path)  # the full chain needs a Wikipedia source for its LMs: refused, not skipped
    path.write_text(
        path.read_text()
        + '[sources.wikipedia]\nreader = "wikipedia_xml"\ninputs = ["y"]\nweight = 1\n'
        + '[lm]\nwikiref_source = "cc"\n'
    )
    cc = load_manifest(path).sources["cc"]
    assert cc.ccnet.enabled and cc.ccnet.perplexity and cc.ccnet.wikiref and cc.minhash.enabled
    assert cc.ccnet.keep_buckets == ["head", "middle"] and cc.ccnet.languages == ["en"]
    assert (
        cc.ccnet.min_length == 300 and cc.ccnet.lang_threshold == 0.5 and cc.ccnet.wikiref_threshold == 0.25
    )


def test_small_records_lost_in_transit_fail_the_build(tmp_path: Path, monkeypatch) -> None:
    """A line-hash record that never reaches the hash shards would silently weaken dedup: the per-file
    sent/arrived counts turn it into a failure naming the file."""
    from pipeline import passes

    real = passes.HashFileFn.process

    def drop_one(self, item):
        lost = False
        for out in real(self, item):
            if not lost and getattr(out, "tag", None) == passes.LINES:
                lost = True
                continue
            yield out

    monkeypatch.setattr(passes.HashFileFn, "process", drop_one)
    rng = __import__("random").Random(4)
    pages = [(f"http://t.example/{i}", paragraph(rng, 3)) for i in range(10)]
    with pytest.raises(Exception, match=r"small records were lost.*in\.warc\.wet \(lines: \d+ sent"):
        _cc_build(tmp_path, pages)


def test_parts_are_cut_by_text_size_and_stay_sorted(tmp_path: Path, monkeypatch) -> None:
    """A group's output is split into parts of about `shard_bytes` of text, at row-group boundaries; ids
    stay sorted across the parts (the passes run in this process, so the small row groups take effect)."""
    from manifests import corpus

    monkeypatch.setattr(corpus, "ROW_GROUP_ROWS", 16)
    rng = __import__("random").Random(8)
    pages = [(f"http://p.example/{i:03d}", paragraph(rng, 6)) for i in range(200)]
    out = _cc_build(tmp_path, pages, "[sources.cc.minhash]\nenabled = false", top="shard_bytes = 20000")
    m = manifest_of(out, "cc")
    names = [p["file"] for p in m["parts"]]
    assert len(names) > 3 and names == [f"part-00000-{i:03d}.parquet" for i in range(len(names))]
    assert all(p["text_bytes"] >= 20000 for p in m["parts"][:-1])
    ids = [r["id"] for r in rows(out, "cc")]
    assert ids == sorted(ids) and len(ids) == m["kept"] == sum(p["rows"] for p in m["parts"])


@pytest.mark.slow
def test_distributed_clusters_give_the_same_bytes_as_sharded(built: Path, tmp_path: Path) -> None:
    """`clusters.algorithm = "distributed"` (never a bucket or a component on one worker; what Dataflow
    runs at scale) writes exactly what the sharded default writes."""
    text = (
        (built / "m.toml")
        .read_text()
        .replace(
            "[sources.commoncrawl.ccnet]",
            '[sources.commoncrawl.clusters]\nalgorithm = "distributed"\n[sources.commoncrawl.ccnet]',
        )
    )
    (tmp_path / "m.toml").write_text(text)
    out = tmp_path / "out"
    assert (
        main(["--manifest", str(tmp_path / "m.toml"), "--output", str(out), "--sources", "commoncrawl"]) == 0
    )
    m = manifest_of(out, "commoncrawl")
    assert (
        m["paths"]["clusters"] == "distributed"
        and manifest_of(built / "out", "commoncrawl")["paths"]["clusters"] == "sharded"
    )
    names = sorted(p.name for p in (built / "out" / "commoncrawl").glob("part-*"))
    for name in names:
        assert (out / "commoncrawl" / name).read_bytes() == (
            built / "out" / "commoncrawl" / name
        ).read_bytes()


def test_c4_recipe_with_tfds_line_dedup_and_bad_words(tmp_path: Path) -> None:
    """Raw pages made into C4: tfds keeps a shared line in the page whose URL has the smallest MD5 and
    drops it elsewhere, re-checks the three-sentence rule, and the bad-words list drops a page."""
    import hashlib

    shared = "This line is shared by two pages of the crawl today."
    body = "The harbour was rebuilt in the spring of that year. Many visitors came to see it."
    pages = {
        "http://a.example/one": f"{shared}\n{body}\nThe old bridge was repaired after a long winter.",
        "http://b.example/two": f"{shared}\nA small village improved its water supply last year.\n"
        "The new pipes were laid along the main road.",
        "http://c.example/bad": "The museum opened a new hall for the winter season. It was full every day.\n"
        "The council said the frobnicator was not welcome in town.\nAll agreed.",
    }
    keeper = min(
        ("http://a.example/one", "http://b.example/two"), key=lambda u: hashlib.md5(u.encode()).hexdigest()
    )
    loser = next(u for u in ("http://a.example/one", "http://b.example/two") if u != keeper)
    rows_in = [json.dumps({"text": t, "url": u}) for u, t in pages.items()]
    (tmp_path / "c4.jsonl").write_text("\n".join(rows_in) + "\n")
    (tmp_path / "bad.txt").write_text("frobnicator\n")
    manifest = _write_manifest(
        tmp_path,
        f'[sources.c4]\nreader = "c4_json"\ninputs = ["{tmp_path / "c4.jsonl"}"]\nweight = 1\n'
        '[sources.c4.ccnet]\nline_dedup = "tfds"\nlanguages = []\n'
        f'[sources.c4.c4]\nbadwords = {{en = "{tmp_path / "bad.txt"}"}}\n',
    )
    assert main(["--manifest", str(manifest)]) == 0
    texts = {r["url"]: r["text"] for r in rows(tmp_path / "out", "c4")}
    m = manifest_of(tmp_path / "out", "c4")
    assert texts[keeper].startswith(shared)
    assert m["dropped"]["c4_badwords"] == 1 and "http://c.example/bad" not in texts
    if loser in texts:  # the loser lost the shared line and still has three sentences
        assert shared not in texts[loser]
    else:
        assert m["dropped"]["c4_too_few_sentences_after_dedup"] == 1
    assert m["settings"]["ccnet"]["line_dedup"] == "tfds" and m["settings"]["c4"]["rules"]


def test_dedup_scope_counts_lines_within_groups_of_files(tmp_path: Path) -> None:
    """`dedup_scope = 1`: each input file is its own scope (cc_net counts within groups of shards)."""
    rng = __import__("random").Random(6)
    line = "A line that both files contain, once each."
    for name in ("a", "b"):
        write_wet(
            tmp_path / f"{name}.warc.wet", [(f"http://{name}.example/1", f"{paragraph(rng, 3)}\n{line}")]
        )
    for scope, kept in (('"source"', False), ("1", True)):
        out = tmp_path / f"out-{scope.strip(chr(34))}"
        manifest = _write_manifest(
            tmp_path,
            CC_ONLY.format(
                inputs=tmp_path / "*.warc.wet", extra=f"langid = false\ndedup_scope = {scope}"
            ).replace('output = "out"', f'output = "{out}"'),
        )
        assert main(["--manifest", str(manifest), "--output", str(out)]) == 0
        texts = [r["text"] for r in rows(out, "cc")]
        assert len(texts) == 2 and all((line in t) is kept for t in texts), scope


def test_small_records_grouped_in_parts_give_the_same_bytes(built: Path, tmp_path: Path, monkeypatch) -> None:
    """A large source groups its line records, ids and band keys in 8 parts (`pipeline.grouping`); the
    fixture sources, made "large" here, write exactly what one part writes, and the same counts."""
    import pipeline.build as build_module

    monkeypatch.setattr(build_module, "parts_for", lambda input_bytes: 8)
    out = tmp_path / "out"
    assert main(["--manifest", str(built / "m.toml"), "--output", str(out)]) == 0
    for source in ("commoncrawl", "wikipedia"):
        ours, theirs = manifest_of(out, source), manifest_of(built / "out", source)
        assert (ours["kept"], ours["dropped"], ours["stats"]) == (
            theirs["kept"],
            theirs["dropped"],
            theirs["stats"],
        )
        names = sorted(p.name for p in (built / "out" / source).glob("part-*"))
        assert names and names == sorted(p.name for p in (out / source).glob("part-*"))
        for name in names:
            assert (out / source / name).read_bytes() == (built / "out" / source / name).read_bytes()
