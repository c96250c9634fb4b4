"""corral's own model directory: ``config.json`` (LlamaConfig) + ``model.safetensors``.

The trainer writes this format for its checkpoints' weights; ``corral generate`` and ``corral export-hf``
read it. Writes are atomic: the directory is assembled under a temporary name next to the target and
renamed into place, so a crash never leaves a half-written model where a reader could find it. Weights
are read with safetensors only (no pickle).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from model.llama import Llama, LlamaConfig

FORMAT = "corral-llama"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.model"
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def write_dir_atomic(target: Path, fill: Any) -> None:
    """Create ``target`` by calling ``fill(tmp_dir)`` on a sibling temp dir, then renaming it into place.

    An existing ``target`` is replaced only after the new one is complete (old moved aside, new renamed
    in, old deleted): readers see the old or the new directory (or, for an instant, none), never a mix.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        fill(tmp)
        for f in tmp.iterdir():
            if f.is_file():
                _fsync_file(f)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "d")
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def model_state_dict(model: Llama) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors ready for safetensors; a tied head is stored once (as the embedding)."""
    sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        sd.pop("output.weight")
    return sd


def save_model(
    model: Llama, directory: str | os.PathLike[str], *, tokenizer: str | os.PathLike[str] | None = None
) -> Path:
    """Write ``model`` (and optionally a SentencePiece ``tokenizer.model``) to ``directory`` atomically.

    The Hugging Face files that sit beside the tokenizer model (``tokenizer.json``, ``tokenizer_config.json``,
    as `corral tokenizer` writes them) are copied too: `corral export-hf` of this directory then ships the
    fast tokenizer that encodes exactly like SentencePiece, not a `LlamaTokenizer` rebuilt by transformers."""
    directory = Path(directory)
    if tokenizer is not None and not Path(tokenizer).is_file():
        raise FileNotFoundError(f"tokenizer file not found: {tokenizer}")
    sd = model_state_dict(model)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict()}

    def fill(tmp: Path) -> None:
        save_file(sd, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if tokenizer is not None:
            shutil.copyfile(tokenizer, tmp / TOKENIZER_NAME)
            for name in HF_TOKENIZER_FILES:
                if (Path(tokenizer).parent / name).is_file():
                    shutil.copyfile(Path(tokenizer).parent / name, tmp / name)

    write_dir_atomic(directory, fill)
    return directory


def read_json_config(directory: str | os.PathLike[str]) -> tuple[Path, Any]:
    """`config.json` of a model directory (ours or Hugging Face's), parsed; errors name the file."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in model directory {directory}")
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc


def is_hf_config(config: Any) -> bool:
    return isinstance(config, dict) and "model_type" in config


def read_config(directory: str | os.PathLike[str]) -> LlamaConfig:
    """The LlamaConfig of a corral model directory, with errors that name the file."""
    path, meta = read_json_config(directory)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        hint = " (a Hugging Face checkpoint: use model.hf.load_hf)" if is_hf_config(meta) else ""
        raise ValueError(f"{path}: not a corral model config (expected format {FORMAT!r}){hint}")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: unsupported format version {meta.get('version')!r} (this code reads {FORMAT_VERSION})"
        )
    try:
        return LlamaConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: bad model config: {exc}") from exc


def load_model(
    directory: str | os.PathLike[str], *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> Llama:
    """Load a model written by ``save_model``; ``dtype`` casts the weights (default: as stored)."""
    directory = Path(directory)
    config = read_config(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_NAME} in model directory {directory}")
    try:
        sd = load_file(str(weights), device=str(device))
    except SafetensorError as exc:
        raise ValueError(f"{weights}: cannot read safetensors file: {exc}") from exc
    if dtype is not None:
        sd = {k: v.to(dtype) for k, v in sd.items()}
    return Llama.from_state_dict(config, sd, where=str(weights))
