"""The manifest schema: the shipped manifests load, and bad ones are refused naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests import ManifestError, load_manifest

REPO = Path(__file__).resolve().parents[1]

GOOD = """
output = "out"
seed = 3
[sources.web]
reader = "wet"
inputs = ["data/*.wet.gz"]
weight = 2.5
[sources.wikipedia]
reader = "wikipedia_xml"
inputs = ["wiki/*.xml.bz2"]
weight = 1
[lm]
wikiref_source = "web"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_llama_manifest_has_the_papers_mixture() -> None:
    m = load_manifest(REPO / "manifests" / "llama.toml")
    weights = {name: s.weight for name, s in m.sources.items()}
    assert weights == {
        "commoncrawl": 0.67, "c4": 0.15, "github": 0.045, "wikipedia": 0.045,
        "books": 0.045, "arxiv": 0.025, "stackexchange": 0.02,
    }  # fmt: skip
    assert m.sources["commoncrawl"].ccnet.enabled and m.sources["commoncrawl"].ccnet.wikiref
    assert m.sources["commoncrawl"].ccnet.keep_buckets == ["head", "middle"]
    assert m.sources["books"].minhash.threshold == 0.9 and m.sources["books"].minhash.enabled
    # the recipes are the defaults: llama.toml writes none of these
    assert "ccnet" not in m.sources["commoncrawl"].explicit and "minhash" not in m.sources["books"].explicit
    assert (
        m.sources["github"].exact_dedup and m.sources["c4"].c4.rules and not m.sources["c4"].ccnet.perplexity
    )
    assert not m.sources["wikipedia"].ccnet.enabled and not m.sources["arxiv"].minhash.enabled


def test_demo_manifest_loads() -> None:
    m = load_manifest(REPO / "manifests" / "demo.toml")
    assert m.sources and all(s.weight > 0 for s in m.sources.values())


def test_paths_are_relative_to_the_manifest(tmp_path: Path) -> None:
    m = load_manifest(write(tmp_path, GOOD))
    assert m.inputs("web") == [str(tmp_path / "data" / "*.wet.gz")]
    assert m.output_dir() == str(tmp_path / "out")
    assert m.output_dir("/elsewhere") == "/elsewhere"


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ('reader = "wet"', 'reader = "pdf"', "sources.web.reader", "unknown reader 'pdf'"),
        ("weight = 2.5", "weight = 0", "sources.web.weight", "weight must be > 0"),
        ("weight = 2.5", "weight = -1.0", "sources.web.weight", "weight must be > 0"),
        ('inputs = ["data/*.wet.gz"]', "inputs = []", "sources.web.inputs", "at least 1"),
        ("seed = 3", 'seed = "x"', "seed", "integer"),
        ("weight = 2.5", "weight = 2.5\nwieght = 1", "sources.web.wieght", "unknown key"),
        (
            "weight = 2.5",
            "weight = 2.5\n[sources.web.ccnet]\nlang_threshold = 2",
            "sources.web.ccnet.lang_threshold",
            "less than or equal",
        ),
        (
            "weight = 2.5",
            "weight = 2.5\n[sources.web.ccnet]\nenabled = false\nwikiref = true",
            "sources.web.ccnet.wikiref",
            "needs the CCNet chain",
        ),
        (
            "weight = 2.5",
            "weight = 2.5\n[sources.web.ccnet]\nlangid = false",
            "sources.web.ccnet.perplexity",
            "needs language ID",
        ),
        (
            "weight = 2.5",
            'weight = 2.5\n[sources.web.ccnet]\nperplexity = false\nkeep_buckets = ["head"]',
            "sources.web.ccnet.keep_buckets",
            "ccnet.perplexity is off",
        ),
        ('wikiref_source = "web"', 'wikiref_source = "nope"', "lm.wikiref_source", "needs negatives"),
        ("[sources.wikipedia]", "[sources.wiki]", "sources.web.ccnet.perplexity", "lm.source = 'wikipedia'"),
    ],
)
def test_bad_values_name_the_key_and_file(tmp_path: Path, old: str, new: str, key: str, words: str) -> None:
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert err.value.key == key
    assert str(path) in str(err.value) and words in str(err.value)


def test_missing_output_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="output"):
        load_manifest(write(tmp_path, GOOD.replace('output = "out"', "")))
    with pytest.raises(ManifestError, match=r"m\.toml: <toml>"):
        load_manifest(write(tmp_path, GOOD + "\n[sources.web\n"))
    with pytest.raises(ManifestError, match="cannot read"):
        load_manifest(tmp_path / "absent.toml")


def test_dedup_shards_auto_grows_with_the_input_and_an_explicit_number_wins() -> None:
    from manifests.schema import AUTO_SHARD_INPUT_BYTES, CCNetSettings

    auto = CCNetSettings()
    assert auto.dedup_shards == "auto"
    assert auto.hash_shards(0) == auto.hash_shards(10 << 30) == 256
    assert auto.hash_shards(1 << 40) == (1 << 40) // AUTO_SHARD_INPUT_BYTES == 4096
    assert auto.hash_shards((1 << 40) + 1) == 4097
    assert CCNetSettings(dedup_shards=7).hash_shards(1 << 40) == 7
    with pytest.raises(ValueError, match="dedup_shards"):
        CCNetSettings(dedup_shards=0)
