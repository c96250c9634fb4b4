"""The Wikipedia-reference fastText classifier: trains, separates the classes, saves atomically, reloads."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from filters.langid import ModelFileError
from filters.wikiref import WikiRefClassifier

ENCYCLOPEDIC = [
    "The river rises in the northern hills and flows south for {n} kilometres before reaching the sea.",
    "The treaty was signed in {n} and established the border between the two kingdoms.",
    "The species is found in temperate forests and feeds mainly on seeds and insects.",
    "The cathedral was completed in {n} after more than a century of construction.",
    "Its population was {n} at the last census, most of whom work in agriculture.",
]
SPAMMY = [
    "Click here to win a free phone now!!! Limited offer, only {n} left, buy today",
    "best cheap pills online no prescription fast shipping {n} discount code",
    "casino bonus {n} free spins sign up now and get instant cash rewards",
    "hot singles in your area waiting for you click the link {n}",
    "lose weight fast with this one weird trick doctors hate it {n}",
]


def _docs(templates: list[str], rng: random.Random, n: int) -> list[str]:
    return [
        " ".join(rng.choice(templates).format(n=rng.randint(1, 3000)) for _ in range(4)) for _ in range(n)
    ]


def test_train_predict_reload(tmp_path: Path) -> None:
    rng = random.Random(0)
    out = tmp_path / "models" / "wikiref.bin"
    clf = WikiRefClassifier.train(_docs(ENCYCLOPEDIC, rng, 150), _docs(SPAMMY, rng, 150), out)
    assert out.is_file() and not list(out.parent.glob(".wikiref-*"))  # temp dir cleaned up
    pos, neg = _docs(ENCYCLOPEDIC, rng, 20), _docs(SPAMMY, rng, 20)
    assert min(clf.predict_proba_batch(pos)) > 0.9
    assert max(clf.predict_proba_batch(neg)) < 0.1
    again = WikiRefClassifier.load(out)
    assert again.predict_proba(pos[0]) == pytest.approx(clf.predict_proba(pos[0]))
    for text in ["", "a\ud800b\x00", "x" * 1_000_000]:
        assert 0.0 <= clf.predict_proba(text) <= 1.0


def test_needs_both_classes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0 negatives"):
        WikiRefClassifier.train(["some text"], ["", "  "], tmp_path / "m.bin")
    assert not (tmp_path / "m.bin").exists()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        WikiRefClassifier.load(tmp_path / "missing.bin")


@pytest.mark.realdata
def test_wikipedia_vs_commoncrawl(shared_data: Path, tmp_path: Path) -> None:
    from filters.sources.base import ReadStats
    from filters.sources.commoncrawl import read_wet

    with gzip.open(shared_data / "wikipedia" / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz", "rt") as f:
        wiki = [json.loads(line)["text"] for line in f]
    wet = shared_data / "commoncrawl" / "resiliparse-warcfile.DERIVED.warc.wet.gz"
    with open(wet, "rb") as f:
        cc = [d.text for d in read_wet(f, wet.name, ReadStats())]
    clf = WikiRefClassifier.train(wiki[:90], cc[:12], tmp_path / "wikiref.bin")
    held_wiki = clf.predict_proba_batch(wiki[90:])
    assert sum(p >= 0.25 for p in held_wiki) / len(held_wiki) > 0.9


def test_url_key_matches_cited_and_crawled_forms() -> None:
    from filters.wikiref import url_key

    assert url_key("HTTP://Example.COM/Path/#section") == url_key("http://example.com/Path")
    assert url_key(" https://a.org/x?q=1 ") == "https://a.org/x?q=1"
    assert url_key("https://a.org/X") != url_key("https://a.org/x")  # paths are case-sensitive


def test_train_from_two_text_files(tmp_path: Path) -> None:
    rng = random.Random(3)
    pos, neg = tmp_path / "pos.txt", tmp_path / "neg.txt"
    pos.write_text("\n".join(_docs(ENCYCLOPEDIC, rng, 100)) + "\n", encoding="utf-8")
    neg.write_text("\n".join(_docs(SPAMMY, rng, 100)) + "\n", encoding="utf-8")
    clf = WikiRefClassifier.train_from_files(pos, neg, tmp_path / "m.bin")
    assert clf.predict_proba(_docs(ENCYCLOPEDIC, rng, 1)[0]) > clf.predict_proba(_docs(SPAMMY, rng, 1)[0])
