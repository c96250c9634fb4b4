"""CCNet LM training (SentencePiece + lmplz) and perplexity scoring/buckets."""

from __future__ import annotations

import gzip
import json
import math
import random
from pathlib import Path

import pytest

from filters.perplexity import BucketCutoffs, LMTrainingError, ModelLoadError, PerplexityScorer, train_lm

SUBJECTS = [
    "the farmer",
    "a small child",
    "the old teacher",
    "my neighbour",
    "the river pilot",
    "her brother",
]
VERBS = ["carried", "painted", "repaired", "counted", "watched", "described"]
OBJECTS = [
    "the wooden boat",
    "a basket of apples",
    "the village bridge",
    "three brown horses",
    "the garden wall",
]
TAILS = [
    "before the storm.",
    "on a quiet morning.",
    "with great care.",
    "near the market.",
    "for the festival.",
]


def _sentences(rng: random.Random, n: int) -> list[str]:
    return [
        f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}".capitalize()
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def toy_lm(tmp_path_factory) -> PerplexityScorer:
    rng = random.Random(0)
    docs = ["\n".join(_sentences(rng, 8)) for _ in range(300)]
    files = train_lm(docs, tmp_path_factory.mktemp("lm"), "en", vocab_size=300)
    assert files.sp_model.name == "en.sp.model" and files.kenlm_model.name == "en.arpa.bin"
    return PerplexityScorer(files.sp_model, files.kenlm_model)


def test_in_distribution_beats_shuffled_and_mash(toy_lm: PerplexityScorer) -> None:
    rng = random.Random(1)
    doc = " ".join(_sentences(rng, 5))
    words = doc.split()
    rng.shuffle(words)
    pp_doc, pp_shuffled = toy_lm.perplexity(doc), toy_lm.perplexity(" ".join(words))
    pp_mash = toy_lm.perplexity("qwzx plmk vbnrt yuio asdfgh jklz xcvbnm")
    assert pp_doc < pp_shuffled < pp_mash


def test_perplexity_formula(toy_lm: PerplexityScorer) -> None:
    text = "The farmer carried the wooden boat."
    from filters.normalize import normalize_for_lm

    pieces = toy_lm._sp.encode(normalize_for_lm(text), out_type=str)
    expected = 10 ** (-toy_lm._lm.score(" ".join(pieces), bos=True, eos=True) / (len(pieces) + 1))
    assert toy_lm.perplexity(text) == pytest.approx(expected)
    assert toy_lm.perplexity_batch([text, text]) == [toy_lm.perplexity(text)] * 2


@pytest.mark.parametrize("text", ["", "  \n ", "a\ud800b", "nul\x00byte", "mixed русский 中文 text"])
def test_bad_input_is_finite(toy_lm: PerplexityScorer, text: str) -> None:
    pp = toy_lm.perplexity(text)
    assert math.isfinite(pp) and pp > 0


def test_huge_single_line(toy_lm: PerplexityScorer) -> None:
    assert math.isfinite(toy_lm.perplexity("the farmer carried the boat. " * 350_000))  # ~10 MB


def test_buckets() -> None:
    cut = BucketCutoffs.from_perplexities(list(range(1, 101)))
    assert cut.p30 == pytest.approx(30.7) and cut.p60 == pytest.approx(60.4)
    assert [cut.bucket(x) for x in (10, 30.7, 50, 60.4, 500)] == ["head", "middle", "middle", "tail", "tail"]
    with pytest.raises(ValueError):
        BucketCutoffs(600, 300)
    with pytest.raises(ValueError):
        BucketCutoffs.from_perplexities([float("nan")])


def test_tiny_data_falls_back_or_fails_clearly(tmp_path: Path) -> None:
    files = train_lm(
        ["Only one short line here."], tmp_path, "xx", vocab_size=1000
    )  # needs --discount_fallback
    assert math.isfinite(PerplexityScorer(files.sp_model, files.kenlm_model).perplexity("one line"))
    with pytest.raises(LMTrainingError, match="no text"):
        train_lm(["", "   "], tmp_path / "empty", "xx")
    assert not list((tmp_path / "empty").glob("*.bin"))  # never a silent empty model


def test_missing_or_corrupt_models(tmp_path: Path, toy_lm: PerplexityScorer) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        PerplexityScorer(tmp_path / "x.model", tmp_path / "x.bin")
    bad_sp, bad_lm = tmp_path / "bad.model", tmp_path / "bad.bin"
    bad_sp.write_bytes(b"garbage")
    bad_lm.write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="bad.model"):
        PerplexityScorer(bad_sp, bad_lm)


def test_missing_lmplz_names_the_fix(tmp_path: Path, monkeypatch) -> None:
    import filters.perplexity as perplexity

    monkeypatch.setattr(perplexity.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CORRAL_KENLM_BIN", raising=False)
    with pytest.raises(LMTrainingError, match="build_kenlm.sh"):
        perplexity.kenlm_tool("lmplz")


@pytest.mark.realdata
def test_wikipedia_lm_prefers_real_paragraphs(shared_data: Path, tmp_path: Path) -> None:
    path = shared_data / "wikipedia" / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        articles = [json.loads(line)["text"] for line in f]
    train, held = articles[:90], articles[90:]
    files = train_lm(train, tmp_path, "en", vocab_size=8000)
    scorer = PerplexityScorer(files.sp_model, files.kenlm_model)
    rng = random.Random(0)
    paragraphs = [p for a in held for p in a.split("\n") if len(p.split()) >= 30][:40]
    assert len(paragraphs) >= 20
    wins = 0
    for p in paragraphs:
        words = p.split()
        rng.shuffle(words)
        wins += scorer.perplexity(p) < scorer.perplexity(" ".join(words))
    assert wins == len(paragraphs)
    cut = BucketCutoffs.from_perplexities(scorer.perplexity_batch(train))
    assert cut.bucket(scorer.perplexity("asdf qwer zxcv uiop hjkl bnm qwerty asdfgh zxcvbn")) == "tail"
