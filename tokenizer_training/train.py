"""`corral tokenizer --manifest M` (also `python -m tokenizer_training.train`): LLaMA's BPE on a mixture sample.

Steps: draw the sample (`tokenizer_training.sample`), train SentencePiece BPE with the original LLaMA
settings (`tokenizer_training.bpe`), export the Hugging Face files and check them against SentencePiece
(`tokenizer_training.hf`), then move everything into the output folder with `card.json` last.

Atomic: the files are built in a temporary folder beside the output, the old card is removed before any
file is replaced (so a half-updated folder is never trusted), the new files are renamed in, and the card
is written last. A rerun is a no-op when the card exists, every file is there, the model's sha256 matches
the card, and the card's trainer settings, sample settings (seed, sample_chars, weights) and corpus
manifests' sha256 equal the current ones; `--force` retrains.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manifests import storage
from manifests.schema import Manifest, ManifestError, load_manifest
from manifests.tokenizer import CARD, HF_CONFIG_FILE, HF_TOKENIZER_FILE, MODEL_FILE, VOCAB_FILE, TokenizerCard
from manifests.versions import package_versions
from tokenizer_training import bpe, hf
from tokenizer_training.sample import (
    SampleError,
    corpus_fingerprints,
    draw_sample,
    iter_sample_lines,
    sample_config,
    source_folders,
)

log = logging.getLogger("corral.tokenizer")

OUTPUT_FILES = (MODEL_FILE, VOCAB_FILE, HF_TOKENIZER_FILE, HF_CONFIG_FILE)
PARITY_DOCS = 200  # pseudo-documents of the sample the HF export is checked on
PARITY_LINES_PER_DOC = 16
# Texts SentencePiece and naive ports disagree on: leading, repeated and trailing spaces, tabs, newlines,
# special-token text, digits, emoji and characters no sample holds (byte fallback).
PARITY_PROBES = (
    " leading space",
    "   three leading spaces",
    "two  spaces   three    four",
    "trailing space ",
    "\ttab\t\tand\ttabs",
    "line one\nline two\n\nafter a blank line\n",
    "<s> is text, not BOS </s> <unk>",
    "digits 1234567890 and 3.14159",
    "emoji 😀🙈🏳️‍🌈 end",
    "rare \U00013000 hieroglyph and \u2581 lower block",
    "",
    " ",
    "\n",
)


@dataclass
class Result:
    """What a run did: the folder, whether it trained, the card, and how long each step took."""

    output: str
    trained: bool
    card: TokenizerCard
    reason: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True))


def _comparable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    # num_threads only changes the speed (and the number SentencePiece stores in the model), not the pieces.
    return _norm({k: v for k, v in settings.items() if k != "num_threads"})


def stale_reason(
    out: str, settings: dict[str, Any], sample_config: dict[str, Any], corpus_shas: dict[str, str]
) -> str | None:
    """Why the tokenizer in `out` must be (re)built, or None when it is up to date."""
    if not storage.exists(storage.join(out, CARD)):
        return "no tokenizer yet"
    try:
        card = TokenizerCard.read_from(out)
    except ValueError as exc:
        return f"unreadable card ({exc})"
    if _comparable_settings(card.settings) != _comparable_settings(settings):
        return "trainer settings changed"
    if _norm(card.sample.get("config")) != _norm(sample_config):
        return "sample settings changed (seed, sample_chars, read_factor or weights)"
    if card.corpus_manifests != corpus_shas:
        changed = sorted(set(card.corpus_manifests.items()) ^ set(corpus_shas.items()))
        return f"corpus changed ({', '.join(sorted({name for name, _ in changed}))})"
    for name in OUTPUT_FILES:
        if not storage.exists(storage.join(out, name)):
            return f"{name} missing"
    if storage.sha256_of(storage.join(out, MODEL_FILE)) != card.sha256:
        return f"{MODEL_FILE} does not match the sha256 in its card"
    return None


def _parity_texts(sample_path: str) -> list[str]:
    texts, lines = list(PARITY_PROBES), []
    for line in iter_sample_lines(sample_path):
        lines.append(line)
        if len(lines) == PARITY_LINES_PER_DOC:
            texts.append("\n".join(lines))
            lines = []
            if len(texts) >= PARITY_DOCS + len(PARITY_PROBES):
                break
    if lines:
        texts.append("\n".join(lines))
    return texts


def _install(build: str, out: str, card: TokenizerCard) -> None:
    """Move the built files into `out`: old card first out, new card last in."""
    storage.delete(storage.join(out, CARD))
    for name in OUTPUT_FILES:
        src = os.path.join(build, name)
        if storage.is_url(out):
            storage.copy_atomic(src, storage.join(out, name))
        else:
            storage.rename(src, storage.join(out, name))
    card.write(out)


def _work_dir(out: str) -> str:
    if storage.is_url(out):
        return tempfile.mkdtemp(prefix="corral-tokenizer-")
    parent = Path(out).parent
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=f".{Path(out).name}.tmp-", dir=parent)


def run(
    manifest: Manifest, force: bool = False, keep_sample: str | None = None, progress: bool = True
) -> Result:
    """Build (or confirm) the tokenizer of `manifest`; see the module docstring."""
    settings = manifest.tokenizer
    out = manifest.tokenizer_dir()
    where = f"{manifest.path}: [tokenizer]"
    trainer = bpe.trainer_settings(settings.vocab_size, bpe.resolve_threads(settings.threads))
    folders = source_folders(manifest)
    shas = corpus_fingerprints(folders)
    seed = settings.seed if settings.seed is not None else manifest.seed
    weights = {n: manifest.sources[n].weight for n in folders}
    config = sample_config(seed, settings.sample_chars, settings.read_factor, weights)
    reason = stale_reason(out, trainer, config, shas)
    if reason is None and not force:
        return Result(out, False, TokenizerCard.read_from(out), "up to date")
    reason = "--force" if force else reason

    seconds: dict[str, float] = {}
    build = _work_dir(out)
    try:
        t0 = time.perf_counter()
        sample_path = os.path.join(build, bpe.SAMPLE_FILE)
        sample = draw_sample(manifest, sample_path, folders, progress=progress)
        if sample.lines == 0:
            raise SampleError("the sample is empty: no source has a line SentencePiece could train on")
        t1 = time.perf_counter()
        seconds["sample"] = t1 - t0
        model = bpe.train_bpe(build, trainer, progress=progress, where=where)
        t2 = time.perf_counter()
        seconds["train"] = t2 - t1
        os.replace(model, os.path.join(build, MODEL_FILE))
        os.replace(model.with_suffix(".vocab"), os.path.join(build, VOCAB_FILE))
        model_path = os.path.join(build, MODEL_FILE)
        hf.write_hf_files(model_path, build)
        checked, mismatches = hf.parity_mismatches(
            model_path, os.path.join(build, HF_TOKENIZER_FILE), _parity_texts(sample_path)
        )
        if mismatches:
            log.warning(
                "the Hugging Face tokenizer differs from SentencePiece on %d of %d checked texts",
                mismatches,
                checked,
            )
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=model_path)
        card = TokenizerCard(
            sha256=storage.sha256_of(model_path),
            vocab_size=sp.get_piece_size(),
            unk_id=sp.unk_id(),
            bos_id=sp.bos_id(),
            eos_id=sp.eos_id(),
            pad_id=sp.pad_id(),
            settings=trainer,
            sample={**sample.to_json(), "hf_parity": {"texts": checked, "mismatches": mismatches}},
            corpus_manifests=shas,
            versions=package_versions(("corral", "sentencepiece", "tokenizers")),
        )
        if keep_sample:
            Path(keep_sample).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(sample_path, keep_sample)
        _install(build, out, card)
        seconds["export"] = time.perf_counter() - t2
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return Result(out, True, card, reason, seconds)


def summary(result: Result) -> str:
    """Human-readable lines: per source target vs achieved share, documents, characters, skips."""
    card, s = result.card, result.card.sample
    if not result.trained:
        return f"tokenizer up to date in {result.output} (sha256 {card.sha256[:12]}…); use --force to retrain"
    lines = [
        f"sample: {s['chars']:,} characters, {s['lines']:,} lines, {s['documents']:,} documents "
        f"(seed {s['config']['seed']}, sample_chars {s['config']['sample_chars']:,}, sha256 {s['sha256'][:12]}…)",
        f"  {'source':<16} {'target':>7} {'achieved':>8} {'documents':>10} {'characters':>14} "
        f"{'long lines skipped':>18}",
    ]
    for name, src in s["sources"].items():
        note = "  (whole source: smaller than its share)" if src["short"] else ""
        lines.append(
            f"  {name:<16} {100 * src['target_share']:>6.2f}% {100 * src['achieved_share']:>7.2f}% "
            f"{src['documents']:>10,} {src['chars']:>14,} {src['skipped_long_lines']:>18,}{note}"
        )
    lines.append(
        f"lines skipped by SentencePiece's rules: {s['skipped_long_lines']:,} longer than "
        f"{bpe.LLAMA_TRAINER_SETTINGS['max_sentence_length']} bytes, {s['skipped_reserved_lines']:,} holding U+2585"
    )
    parity = s["hf_parity"]
    lines.append(
        f"tokenizer: {card.vocab_size} pieces in {result.output} (sha256 {card.sha256[:12]}…); Hugging Face "
        f"files agree with SentencePiece on {parity['texts'] - parity['mismatches']}/{parity['texts']} texts"
    )
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    lines.append(f"time: {timing} ({result.reason})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(
        prog="corral tokenizer",
        description="Train LLaMA's SentencePiece BPE on a mixture sample of the corpus.",
    )
    p.add_argument(
        "--manifest", required=True, help="the job manifest (TOML); settings in its [tokenizer] table"
    )
    p.add_argument("--force", action="store_true", help="retrain even when the tokenizer is up to date")
    p.add_argument("--keep-sample", metavar="FILE", help="keep the sample (one sentence per line) at FILE")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
        result = run(manifest, force=args.force, keep_sample=args.keep_sample, progress=not args.no_progress)
    except (ManifestError, SampleError, bpe.TokenizerTrainingError, OSError) as exc:
        print(f"corral tokenizer: {exc}", file=sys.stderr)
        return 2
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
