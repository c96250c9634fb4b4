"""fastText lid.176 language ID: API contract, bad input, and accuracy on real Leipzig sentences."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from filters.langid import (
    LID_FTZ_SHA256,
    LanguageIdentifier,
    ModelFileError,
    default_model_path,
    lang_drop_reason,
)
from manifests.storage import sha256_of


@pytest.fixture(scope="module")
def lid() -> LanguageIdentifier:
    return LanguageIdentifier()


def test_default_model_is_the_wheels_ftz() -> None:
    path = default_model_path()
    assert path.name == "lid.176.ftz"
    assert sha256_of(str(path)) == LID_FTZ_SHA256


def test_env_var_overrides_model(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORRAL_LID_MODEL", str(tmp_path / "lid.176.bin"))
    assert default_model_path() == tmp_path / "lid.176.bin"
    with pytest.raises(ModelFileError, match="lid.176.bin"):
        LanguageIdentifier()


def test_predict_contract(lid: LanguageIdentifier) -> None:
    lang, score = lid.predict("Le chat est assis sur le tapis et regarde la pluie tomber.")
    assert lang == "fr"
    assert score == round(score, 2) and 0.5 < score <= 1.0
    # newlines are removed before prediction: same answer as the joined text
    assert lid.predict("Der Hund\nschläft im Garten.") == lid.predict("Der Hund schläft im Garten.")


def test_batch_equals_single(lid: LanguageIdentifier) -> None:
    texts = [
        "This is English text about the weather.",
        "Questo è un testo italiano.",
        "これは日本語の文です。",
    ]
    assert lid.predict_batch(texts) == [lid.predict(t) for t in texts]
    assert [lang for lang, _ in lid.predict_batch(texts)] == ["en", "it", "ja"]


def test_threshold_filter() -> None:
    assert lang_drop_reason("en", 0.5) is None
    assert lang_drop_reason("en", 0.49) == "lang_score"
    assert lang_drop_reason("fr", 0.9, languages=["en"]) == "lang"
    assert lang_drop_reason("en", 0.7, threshold=0.65) is None


@pytest.mark.parametrize("text", ["", "   \n\t", "a\ud800b", "x\x00y\x00z", "mixed English и русский 中文"])
def test_bad_input_gives_a_defined_result(lid: LanguageIdentifier, text: str) -> None:
    lang, score = lid.predict(text)
    assert isinstance(lang, str) and lang and 0.0 <= score <= 1.0


def test_huge_single_line(lid: LanguageIdentifier) -> None:
    assert lid.predict("the quick brown fox " * 500_000)[0] == "en"  # 10 MB


def test_missing_and_corrupt_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        LanguageIdentifier(tmp_path / "nope.bin")
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a fasttext model at all" * 100)
    with pytest.raises(ModelFileError, match=str(garbage)):
        LanguageIdentifier(garbage)
    # A truncated real model loads in fastText and then segfaults in predict: it must be refused instead.
    truncated = tmp_path / "truncated.ftz"
    truncated.write_bytes(default_model_path().read_bytes()[:200_000])
    with pytest.raises(ModelFileError, match="corrupt or truncated"):
        LanguageIdentifier(truncated)


@pytest.mark.realdata
def test_leipzig_accuracy(lid: LanguageIdentifier, shared_data: Path) -> None:
    rows = []
    with gzip.open(
        shared_data / "langid" / "leipzig_sentences_75lang.dev.tsv.gz", "rt", encoding="utf-8"
    ) as f:
        for line in f:
            lang, _, text = line.rstrip("\n").partition("\t")
            rows.append((lang, text))
    known = {label.removeprefix("__label__") for label in lid._model.get_labels()}
    rows = [(lang, text) for lang, text in rows if lang in known]
    preds = lid.predict_batch([t for _, t in rows])
    total, correct = Counter(), Counter()
    for (gold, _), (pred, _) in zip(rows, preds, strict=True):
        total[gold] += 1
        correct[gold] += gold == pred
    per_lang = {lang: correct[lang] / total[lang] for lang in sorted(total)}
    accuracy = sum(correct.values()) / sum(total.values())
    worst = sorted(per_lang.items(), key=lambda kv: kv[1])[:8]
    print(f"\nLeipzig top-1 accuracy {accuracy:.3f} over {len(per_lang)} languages; worst: {worst}")
    assert len(per_lang) >= 60
    assert accuracy >= 0.88


@pytest.mark.realdata
def test_tatoeba_non_latin_scripts(lid: LanguageIdentifier, shared_data: Path) -> None:
    iso3_to_1 = {
        "rus": "ru",
        "jpn": "ja",
        "ara": "ar",
        "ell": "el",
        "heb": "he",
        "kor": "ko",
        "ukr": "uk",
        "hin": "hi",
    }
    rows = []
    with gzip.open(
        shared_data / "langid" / "tatoeba_nonascii_CC0_sample.tsv.gz", "rt", encoding="utf-8"
    ) as f:
        next(f)
        for line in f:
            _, lang3, text = line.rstrip("\n").split("\t", 2)
            if lang3 in iso3_to_1:
                rows.append((iso3_to_1[lang3], text))
    assert len(rows) > 100
    preds = lid.predict_batch([t for _, t in rows])
    accuracy = sum(g == p for (g, _), (p, _) in zip(rows, preds, strict=True)) / len(rows)
    print(f"\nTatoeba accuracy on {len(rows)} sentences of 8 non-Latin-script languages: {accuracy:.3f}")
    assert accuracy >= 0.85
