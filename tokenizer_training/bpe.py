"""SentencePiece BPE with the trainer settings of the original LLaMA `tokenizer.model`.

The settings are the `trainer_spec` and `normalizer_spec` stored in Meta's file (LLaMA, Touvron et al.
2023, §2.1: "we split all numbers into individual digits, and fallback to bytes to decompose unknown UTF-8
characters"). With `normalization_rule_name=identity`, `add_dummy_prefix=true` and
`remove_extra_whitespaces=false`, `decode(encode(x)) == x` for any text without U+2581; `pad_id=-1` and no
user-defined or control symbols put the 256 byte pieces at ids 3–258.

Training runs in a child process (`python -m tokenizer_training.bpe`): the binding holds the GIL for the
whole run, so a progress bar can only be drawn by another process reading SentencePiece's log. The child
works inside the build folder with relative names (`sample.txt`, `tokenizer`), so the paths SentencePiece
stores in the model's trainer spec are the same on every run and the same sample gives the same bytes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

from tqdm import tqdm

log = logging.getLogger("corral.tokenizer")

SAMPLE_FILE = "sample.txt"
MODEL_PREFIX = "tokenizer"
META_PIECES = 3 + 256  # <unk> <s> </s> and the byte pieces

# The trainer settings read from Meta's LLaMA tokenizer.model (model_type 2 = BPE).
LLAMA_TRAINER_SETTINGS: dict[str, Any] = {
    "model_type": "bpe",
    "character_coverage": 0.99995,
    "split_digits": True,
    "byte_fallback": True,
    "split_by_unicode_script": True,
    "split_by_whitespace": True,
    "split_by_number": True,
    "max_sentencepiece_length": 16,
    "max_sentence_length": 4192,
    "allow_whitespace_only_pieces": True,
    "treat_whitespace_as_suffix": False,
    "normalization_rule_name": "identity",
    "add_dummy_prefix": True,
    "remove_extra_whitespaces": False,
    "hard_vocab_limit": True,
    "unk_id": 0,
    "bos_id": 1,
    "eos_id": 2,
    "pad_id": -1,
}


class TokenizerTrainingError(RuntimeError):
    """SentencePiece refused the sample or the settings; the message says which setting to change."""


def trainer_settings(vocab_size: int, threads: int) -> dict[str, Any]:
    """Every keyword passed to `SentencePieceTrainer.train` (besides file names and log level)."""
    return {**LLAMA_TRAINER_SETTINGS, "vocab_size": vocab_size, "num_threads": threads}


def resolve_threads(threads: int) -> int:
    """`0` means every core (SentencePiece accepts at most 128 threads in old versions)."""
    return max(1, min(threads or os.cpu_count() or 1, 128))


_ALPHABET = re.compile(r"Alphabet size=(\d+)")
_MERGED = re.compile(r"(?:merges|size)=(\d+)")
_DONE = re.compile(r"Completed (\d+) merge steps")
_ERROR = "corral-bpe-error: "


def _explain(message: str, vocab_size: int, where: str) -> str:
    """SentencePiece's own error, reworded to name the setting to change."""
    m = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", message)
    if m:
        need = int(m.group(2))
        return (
            f"{where} vocab_size = {vocab_size} is too small for this sample: its characters alone need "
            f"{need} pieces ({META_PIECES} meta and byte pieces + {need - META_PIECES} characters at "
            f"character_coverage {LLAMA_TRAINER_SETTINGS['character_coverage']}), before any merge; "
            f"set vocab_size above {need}"
        )
    m = re.search(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)", message)
    if m:
        return (
            f"{where} vocab_size = {vocab_size} is too large for this sample: BPE runs out of merges at "
            f"{m.group(2)} pieces (hard_vocab_limit, as LLaMA); set vocab_size <= {m.group(2)} or sample "
            "more text (sample_chars, or a bigger corpus)"
        )
    return f"SentencePiece training failed: {message}"


def train_bpe(work_dir: str, settings: dict[str, Any], progress: bool = True, where: str = "") -> Path:
    """Train on `work_dir/sample.txt`; returns `work_dir/tokenizer.model` (and `.vocab` beside it)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "tokenizer_training.bpe", json.dumps(settings)]
    tail: deque[str] = deque(maxlen=30)
    error = ""
    unprintable = 0
    bar = tqdm(desc="train: BPE merges", unit="merge", disable=not progress, leave=False)
    with subprocess.Popen(
        cmd,
        cwd=work_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        encoding="utf-8",
        errors="replace",
    ) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            tail.append(line)
            if line.startswith(_ERROR):
                error = line.removeprefix(_ERROR)
            elif m := _ALPHABET.search(line):
                bar.total = max(0, settings["vocab_size"] - META_PIECES - int(m.group(1)))
                bar.refresh()
            elif (
                (m := _DONE.search(line))
                or ("Merged:" in line or "Added:" in line)
                and (m := _MERGED.search(line))
            ):
                bar.update(int(m.group(1)) - bar.n)
            elif "No valid symbol found" in line:
                pass  # BPE ran out of merges: the error that follows says which setting to change
            elif "contains escaped characters" in line:
                unprintable += 1  # a piece with a tab: only the text .vocab file is ambiguous, not the model
            elif line[:1] in ("W", "E", "F") and not line.startswith("WARNING: All log messages"):
                tqdm.write(line, file=sys.stderr)
    bar.close()
    if unprintable:
        log.info(
            "%d pieces hold a tab, which the tab-separated %s.vocab cannot show unambiguously",
            unprintable,
            MODEL_PREFIX,
        )
    if proc.returncode != 0:
        if error:
            raise TokenizerTrainingError(_explain(error, settings["vocab_size"], where))
        raise TokenizerTrainingError(
            f"SentencePiece training exited with {proc.returncode}; its last output:\n" + "\n".join(tail)
        )
    return Path(work_dir) / f"{MODEL_PREFIX}.model"


def _child(settings_json: str) -> int:
    """Run in the build folder: train, or print one error line the parent turns into a clear message."""
    import sentencepiece as spm

    settings = json.loads(settings_json)
    try:
        spm.SentencePieceTrainer.train(
            input=SAMPLE_FILE, model_prefix=MODEL_PREFIX, minloglevel=0, **settings
        )
    except RuntimeError as exc:
        print(_ERROR + " ".join(str(exc).split()), file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_child(sys.argv[1]))
