"""CCNet perplexity scoring (cc_net `perplexity.py`): SentencePiece pieces of LM-normalised text scored by a KenLM 5-gram.

Training follows CCNet's LM step per language: normalise reference text (Wikipedia) → train a unigram
SentencePiece model → tokenise → `lmplz -o 5` → `build_binary`. The corpus goes through temporary
files on disk, never whole in memory. Scoring: `pp = 10 ** (-Σ log10 P / (n_pieces + 1))` over the
whole document as one line. Buckets: `head` < p30 ≤ `middle` < p60 ≤ `tail` of the reference text's
perplexities (cc_net `PerplexityBucket(30, 60)`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from filters.normalize import normalize_for_lm

log = logging.getLogger(__name__)

KENLM_BIN_ENV = "CORRAL_KENLM_BIN"
BUCKETS = ("head", "middle", "tail")


def is_heldout(doc_id: str, fraction: float) -> bool:
    """A stable pseudo-random split by id: the articles whose perplexities give the bucket cut-offs, kept
    out of LM training (scoring the training text itself would put every unseen page above the cut-offs)."""
    if fraction <= 0:
        return False
    from filters.dedup import sha1_u64

    return sha1_u64(doc_id) < fraction * 2**64


class LMTrainingError(RuntimeError):
    """LM training failed; the message carries the failing tool's stderr."""


class ModelLoadError(RuntimeError):
    """A SentencePiece or KenLM model file that is missing or unreadable; names the path and the fix."""


@dataclass(frozen=True)
class LMFiles:
    sp_model: Path
    kenlm_model: Path


def kenlm_tool(name: str) -> str:
    """Path of a KenLM command-line tool: $CORRAL_KENLM_BIN, then the venv's bin/, then PATH."""
    candidates = []
    if os.environ.get(KENLM_BIN_ENV):
        candidates.append(Path(os.environ[KENLM_BIN_ENV]) / name)
    candidates.append(Path(sys.executable).parent / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise LMTrainingError(
        f"KenLM tool {name!r} not found (looked in {', '.join(map(str, candidates))} and PATH). "
        "Build it with `bash scripts/build_kenlm.sh .venv` (make does this), or set "
        f"{KENLM_BIN_ENV} to the folder holding lmplz and build_binary."
    )


def _safe(text: str) -> str:
    return text.encode("utf-8", errors="replace").decode("utf-8")


def _write_normalised_lines(texts: Iterable[str], path: Path) -> int:
    """Every non-empty line of every text, LM-normalised, one per line; returns the line count."""
    n = 0
    with open(path, "w", encoding="utf-8") as out:
        for text in texts:
            for line in text.split("\n"):
                norm = normalize_for_lm(_safe(line))
                if norm:
                    out.write(norm)
                    out.write("\n")
                    n += 1
    return n


def _train_sentencepiece(corpus: Path, prefix: Path, vocab_size: int, sentence_sample: int) -> Path:
    import sentencepiece as spm

    try:
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(prefix),
            model_type="unigram",
            vocab_size=vocab_size,
            hard_vocab_limit=False,  # small inputs get as many pieces as they support, not an error
            input_sentence_size=sentence_sample,
            shuffle_input_sentence=True,
            character_coverage=0.9999,
            num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise LMTrainingError(f"SentencePiece training on {corpus} failed: {exc}") from exc
    return Path(f"{prefix}.model")


def _run(cmd: list[str], stdin_path: Path | None, what: str) -> subprocess.CompletedProcess:
    with open(stdin_path, "rb") if stdin_path else open(os.devnull, "rb") as stdin:
        return subprocess.run(cmd, stdin=stdin, capture_output=True, check=False)


def _lmplz(pieces: Path, arpa: Path, order: int, sort_memory: str, tmp: Path) -> None:
    base = [
        kenlm_tool("lmplz"),
        "-o",
        str(order),
        "-S",
        sort_memory,
        "-T",
        str(tmp),
        "--arpa",
        str(arpa),
    ]
    result = _run(base, pieces, "lmplz")
    if result.returncode != 0:
        # Tiny or skewed corpora make Kneser-Ney discounts undefined: retry as lmplz itself suggests.
        log.info(
            "lmplz could not estimate Kneser-Ney discounts (small data); retrying with --discount_fallback"
        )
        result = _run([*base, "--discount_fallback"], pieces, "lmplz")
    if result.returncode != 0:
        raise LMTrainingError(
            f"lmplz failed on {pieces} (exit {result.returncode}):\n{result.stderr.decode(errors='replace')[-4000:]}"
        )
    if not _arpa_has_ngrams(arpa):
        raise LMTrainingError(
            f"lmplz wrote an ARPA file without n-grams ({arpa}); the training text is too small"
        )


def _arpa_has_ngrams(arpa: Path) -> bool:
    with open(arpa, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("ngram 1="):
                return int(line.split("=", 1)[1]) > 2  # more than <s> and </s>
            if line.startswith("\\1-grams:"):
                break
    return False


def train_lm(
    texts: Iterable[str],
    out_dir: str | os.PathLike[str],
    lang: str,
    *,
    vocab_size: int = 65536,
    order: int = 5,
    sort_memory: str = "20%",
    sentence_sample: int = 1_000_000,
) -> LMFiles:
    """Train `{out_dir}/{lang}.sp.model` and `{out_dir}/{lang}.arpa.bin` from reference texts (CCNet's LM step).

    `vocab_size` is a soft cap (small inputs get what they support); `order` is the KenLM n-gram order,
    `sort_memory` lmplz's `-S`, `sentence_sample` the lines SentencePiece samples. The files appear
    atomically: everything is built in a temp dir inside `out_dir`, then renamed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".train-") as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "normalised.txt"
        n_lines = _write_normalised_lines(texts, corpus)
        if n_lines == 0:
            raise LMTrainingError(f"no text to train the {lang} LM on")
        sp_path = _train_sentencepiece(corpus, tmp / f"{lang}.sp", vocab_size, sentence_sample)
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(sp_path))
        pieces = tmp / "pieces.txt"
        with open(corpus, encoding="utf-8") as src, open(pieces, "w", encoding="utf-8") as dst:
            for line in src:
                dst.write(" ".join(sp.encode(line.rstrip("\n"), out_type=str)))
                dst.write("\n")
        arpa = tmp / f"{lang}.arpa"
        _lmplz(pieces, arpa, order, sort_memory, tmp)
        binary = tmp / f"{lang}.arpa.bin"
        result = _run([kenlm_tool("build_binary"), str(arpa), str(binary)], None, "build_binary")
        if result.returncode != 0:
            raise LMTrainingError(
                f"build_binary failed on {arpa}:\n{result.stderr.decode(errors='replace')[-4000:]}"
            )
        final_sp, final_lm = out / f"{lang}.sp.model", out / f"{lang}.arpa.bin"
        os.replace(sp_path, final_sp)
        os.replace(binary, final_lm)
    log.info("trained %s LM on %d lines: %s, %s", lang, n_lines, final_sp, final_lm)
    return LMFiles(final_sp, final_lm)


class PerplexityScorer:
    """Scores documents with a SentencePiece model and a KenLM model, loaded once."""

    def __init__(
        self, sp_model_path: str | os.PathLike[str], kenlm_model_path: str | os.PathLike[str]
    ) -> None:
        import kenlm
        import sentencepiece as spm

        for path in (sp_model_path, kenlm_model_path):
            if not Path(path).is_file():
                raise ModelLoadError(
                    f"model file does not exist: {path}. Train it with `corral lm --manifest …`."
                )
        try:
            self._sp = spm.SentencePieceProcessor(model_file=str(sp_model_path))
        except (RuntimeError, OSError) as exc:
            raise ModelLoadError(
                f"cannot load SentencePiece model {sp_model_path}: {exc}. Retrain it with `corral lm`."
            ) from exc
        try:
            self._lm = kenlm.Model(str(kenlm_model_path))
        except (OSError, RuntimeError) as exc:
            raise ModelLoadError(
                f"cannot load KenLM model {kenlm_model_path}: {exc}. Retrain it with `corral lm`."
            ) from exc

    def perplexity(self, text: str) -> float:
        """`10 ** (-log10 P(pieces) / (n_pieces + 1))`, the document scored as one sentence with <s> and </s>."""
        pieces = self._sp.encode(normalize_for_lm(_safe(text)), out_type=str)
        log10_prob = self._lm.score(" ".join(pieces), bos=True, eos=True)
        return float(10.0 ** (-log10_prob / (len(pieces) + 1)))

    def perplexity_batch(self, texts: Sequence[str]) -> list[float]:
        return [self.perplexity(t) for t in texts]


@dataclass(frozen=True)
class BucketCutoffs:
    """Per-language perplexity cut-offs: `head` < p30 ≤ `middle` < p60 ≤ `tail`."""

    p30: float
    p60: float

    def __post_init__(self) -> None:
        if not self.p30 <= self.p60:
            raise ValueError(f"bucket cut-offs must satisfy p30 <= p60, got {self.p30} > {self.p60}")

    @classmethod
    def from_perplexities(cls, values: Sequence[float]) -> BucketCutoffs:
        """The 30th and 60th percentiles of the reference text's perplexities."""
        arr = np.asarray(values, dtype=np.float64)
        arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            raise ValueError("no finite perplexities to compute bucket cut-offs from")
        p30, p60 = np.percentile(arr, [30, 60])
        return cls(float(p30), float(p60))

    def bucket(self, pp: float) -> str:
        if pp < self.p30:
            return "head"
        if pp < self.p60:
            return "middle"
        return "tail"
