"""The LLaMA/RedPajama "Wikipedia reference" classifier: a fastText linear model telling pages that
Wikipedia cites (or, as a proxy, Wikipedia-like text) from random Common Crawl pages (LLaMA §2.1; RedPajama's CC classifier).

RedPajama keeps CommonCrawl pages with `P(wiki) >= 0.25`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

POSITIVE = "__label__wiki"
NEGATIVE = "__label__cc"


def url_key(url: str) -> str:
    """The form in which cited URLs and page URLs are matched: no fragment, no trailing slash, lower-case host."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def positives_kind(cited_matches: int, min_docs: int) -> str:
    """Which positives the classifier trains on: CC pages Wikipedia cites when at least `min_docs` of them
    were found (LLaMA §2.1), else Wikipedia article text (GPT-3's proxy for reference quality)."""
    return "cited_cc_pages" if cited_matches >= min_docs else "wikipedia_text"


class WikiRefSettings(BaseModel):
    epoch: int = Field(default=10, gt=0)
    lr: float = Field(default=0.5, gt=0, description="halved and retried if SGD diverges (NaN)")
    word_ngrams: int = Field(default=2, ge=1)
    dim: int = Field(default=64, gt=0)
    bucket: int | None = Field(
        default=None,
        gt=0,
        description="hash buckets for word n-grams; None: the training tokens, clamped to [10k, 2M] "
        "(fastText's fixed 2M buckets make a 512 MB model even for a tiny training set)",
    )


def _one_line(text: str) -> str:
    """fastText reads one example per line: newlines and control characters become spaces; lowercased."""
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return " ".join(text.lower().split())


def _write_examples(label: str, texts: Iterable[str], out) -> tuple[int, int]:
    """Write `label text` lines; returns (examples, tokens)."""
    n = tokens = 0
    for t in texts:
        line = _one_line(t)
        if line:
            out.write(f"{label} {line}\n")
            n += 1
            tokens += line.count(" ") + 1
    return n, tokens


_TRAIN_CHILD = (
    "import json, sys, fasttext; "
    "m = fasttext.train_supervised(input=sys.argv[1], **json.loads(sys.argv[3])); m.save_model(sys.argv[2])"
)


def _train_in_child(train_file: Path, model_path: Path, params: dict) -> str | None:
    """Train in a fresh process; returns None on success, else the error line.

    fastText keeps process-global state: in a process that has already trained or loaded other models,
    training with the same seed and data was seen to give different models and, now and then,
    "Encountered NaN." A fresh process gives the same model for the same inputs.
    """
    result = subprocess.run(
        [sys.executable, "-c", _TRAIN_CHILD, str(train_file), str(model_path), json.dumps(params)],
        capture_output=True,
        text=True,
    )
    if result.returncode == 0:
        return None
    lines = result.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {result.returncode}"


class WikiRefClassifier:
    """`train(positives, negatives, out_path)` / `load(path)` / `predict_proba(text)`."""

    def __init__(self, model) -> None:  # a fasttext model
        self._model = model
        labels = model.get_labels()
        if POSITIVE not in labels:
            raise ValueError(f"not a wiki-reference classifier: labels are {labels}")

    @classmethod
    def train(
        cls,
        positive_texts: Iterable[str],
        negative_texts: Iterable[str],
        out_path: str | os.PathLike[str],
        settings: WikiRefSettings | None = None,
        seed: int = 0,
    ) -> WikiRefClassifier:
        """Train on two streams of texts (written to a temp file, not held in memory); saved atomically."""
        settings = settings or WikiRefSettings()
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".wikiref-") as tmp:
            train_file = Path(tmp) / "train.txt"
            with open(train_file, "w", encoding="utf-8") as f:
                n_pos, tok_pos = _write_examples(POSITIVE, positive_texts, f)
                n_neg, tok_neg = _write_examples(NEGATIVE, negative_texts, f)
            if n_pos == 0 or n_neg == 0:
                raise ValueError(
                    f"wiki-ref training needs both classes: {n_pos} positives, {n_neg} negatives"
                )
            params = {
                "epoch": settings.epoch,
                "lr": settings.lr,
                "wordNgrams": settings.word_ngrams,
                "dim": settings.dim,
                "bucket": settings.bucket or min(2_000_000, max(10_000, tok_pos + tok_neg)),
                "thread": 1,
                "seed": seed,
                "verbose": 0,
            }
            tmp_model = Path(tmp) / "model.bin"
            for attempt in range(4):
                error = _train_in_child(train_file, tmp_model, params)
                if error is None:
                    break
                if "NaN" not in error or attempt == 3:
                    raise RuntimeError(f"fastText training of the wiki-ref classifier failed: {error}")
                params["lr"] /= 2  # SGD diverged: retry with a smaller step
            os.replace(tmp_model, out)
        from filters.langid import quiet_fasttext

        model = quiet_fasttext().load_model(str(out))
        return cls(model)

    @classmethod
    def train_from_files(
        cls,
        positive_file: str | os.PathLike[str],
        negative_file: str | os.PathLike[str],
        out_path: str | os.PathLike[str],
        settings: WikiRefSettings | None = None,
    ) -> WikiRefClassifier:
        """Train from two UTF-8 text files holding one document per line (streamed, not loaded whole)."""
        with (
            open(positive_file, encoding="utf-8", errors="replace") as pos,
            open(negative_file, encoding="utf-8", errors="replace") as neg,
        ):
            return cls.train(pos, neg, out_path, settings)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WikiRefClassifier:
        from filters.langid import _load_fasttext

        return cls(_load_fasttext(Path(path)))

    def predict_proba(self, text: str) -> float:
        """Probability that `text` is Wikipedia-reference quality."""
        return self.predict_proba_batch([text])[0]

    def predict_proba_batch(self, texts: list[str]) -> list[float]:
        labels, probs = self._model.predict([_one_line(t) for t in texts], k=2)
        out = []
        for lab, pr in zip(labels, probs, strict=True):
            p = dict(zip(lab, (float(x) for x in pr), strict=True))
            out.append(min(1.0, p.get(POSITIVE, 1.0 - p.get(NEGATIVE, 0.0))))
        return out
