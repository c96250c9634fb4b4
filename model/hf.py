"""Hugging Face ``LlamaForCausalLM`` interop: export our model, import HF LLaMA checkpoints.

Our RoPE uses the same rotate_half layout as HF (see ``model/llama.py``), so converting is a renaming of
tensors and a translation of ``config.json``; no q/k permutation is needed. The exported directory loads
with ``transformers.AutoModelForCausalLM.from_pretrained`` (and from there lm-eval-harness, vLLM, llama.cpp's
converter). transformers itself is not imported here: the format is plain JSON + safetensors.

Weights are read with safetensors, or ``torch.load(weights_only=True)`` for legacy ``pytorch_model*.bin``;
never with unrestricted pickle.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from model.io import TOKENIZER_NAME, load_model, read_json_config, write_dir_atomic
from model.llama import Llama, LlamaConfig

# Our parameter name ↔ HF LlamaForCausalLM name; "{}" is the layer index.
_NAMES: list[tuple[str, str]] = [
    ("tok_embeddings.weight", "model.embed_tokens.weight"),
    ("norm.weight", "model.norm.weight"),
    ("output.weight", "lm_head.weight"),
    ("layers.{}.attention.wq.weight", "model.layers.{}.self_attn.q_proj.weight"),
    ("layers.{}.attention.wk.weight", "model.layers.{}.self_attn.k_proj.weight"),
    ("layers.{}.attention.wv.weight", "model.layers.{}.self_attn.v_proj.weight"),
    ("layers.{}.attention.wo.weight", "model.layers.{}.self_attn.o_proj.weight"),
    ("layers.{}.feed_forward.w1.weight", "model.layers.{}.mlp.gate_proj.weight"),
    ("layers.{}.feed_forward.w3.weight", "model.layers.{}.mlp.up_proj.weight"),
    ("layers.{}.feed_forward.w2.weight", "model.layers.{}.mlp.down_proj.weight"),
    ("layers.{}.attention_norm.weight", "model.layers.{}.input_layernorm.weight"),
    ("layers.{}.ffn_norm.weight", "model.layers.{}.post_attention_layernorm.weight"),
]


def _pattern(template: str) -> str:
    return re.escape(template).replace(r"\{\}", r"(\d+)")


_TO_HF = [(_pattern(ours), hf) for ours, hf in _NAMES]
_TO_OURS = [(_pattern(hf), ours) for ours, hf in _NAMES]
# Derived buffers that some older HF checkpoints stored; we recompute them.
_IGNORED_HF_KEYS = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
)
DEFAULT_MAX_SHARD_BYTES = 5 * 1024**3


def _rename(name: str, table: list[tuple[str, str]]) -> str:
    for pattern, template in table:
        m = re.fullmatch(pattern, name)
        if m:
            return template.format(*m.groups())
    raise KeyError(name)


def to_hf_name(name: str) -> str:
    """Our parameter name → the HF ``LlamaForCausalLM`` name."""
    return _rename(name, _TO_HF)


def from_hf_name(name: str) -> str:
    """HF ``LlamaForCausalLM`` parameter name → ours."""
    return _rename(name, _TO_OURS)


# ------------------------------------------------------------------------------------------------------
# config translation


def hf_config_dict(
    config: LlamaConfig, *, dtype: torch.dtype, bos_id: int = 1, eos_id: int = 2
) -> dict[str, Any]:
    """Our LlamaConfig as a transformers ``LlamaConfig`` config.json."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": config.vocab_size,
        "hidden_size": config.dim,
        "intermediate_size": config.ffn_hidden,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.norm_eps,
        "rope_theta": config.rope_theta,  # transformers < 5
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},  # transformers >= 5
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": config.tie_embeddings,
        "initializer_range": config.init_std,
        "bos_token_id": bos_id,
        "eos_token_id": eos_id,
        "dtype": str(dtype).removeprefix("torch."),
        "torch_dtype": str(dtype).removeprefix("torch."),
        "use_cache": True,
    }


def config_from_hf(hf: dict[str, Any], where: str = "config.json") -> LlamaConfig:
    """A transformers LLaMA config.json → our LlamaConfig; anything we would compute differently is an error."""
    model_type = hf.get("model_type")
    archs = hf.get("architectures")
    if model_type != "llama":
        raise ValueError(
            f"{where}: model_type is {model_type!r}, not 'llama'; only LLaMA checkpoints can be loaded"
        )
    if archs is not None and "LlamaForCausalLM" not in archs:
        raise ValueError(f"{where}: architectures {archs} does not include LlamaForCausalLM")
    if hf.get("hidden_act", "silu") != "silu":
        raise ValueError(f"{where}: hidden_act {hf['hidden_act']!r} is not supported (LLaMA uses silu)")
    for flag in ("attention_bias", "mlp_bias"):
        if hf.get(flag):
            raise ValueError(f"{where}: {flag}=true is not supported (LLaMA has no biases)")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default":
        raise ValueError(f"{where}: RoPE type {rope_type!r} is not supported (only plain RoPE, as in LLaMA)")
    try:
        dim, n_heads = int(hf["hidden_size"]), int(hf["num_attention_heads"])
        head_dim = hf.get("head_dim") or dim // n_heads
        if head_dim * n_heads != dim:
            raise ValueError(
                f"{where}: head_dim {head_dim} × heads {n_heads} != hidden_size {dim} (not supported)"
            )
        return LlamaConfig(
            dim=dim,
            n_layers=int(hf["num_hidden_layers"]),
            n_heads=n_heads,
            n_kv_heads=int(hf.get("num_key_value_heads") or n_heads),
            vocab_size=int(hf["vocab_size"]),
            ffn_hidden=int(hf["intermediate_size"]),
            norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))),
            max_seq_len=int(hf.get("max_position_embeddings", 2048)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            init_std=float(hf.get("initializer_range", 0.02)),
        )
    except KeyError as exc:
        raise ValueError(f"{where}: missing required field {exc.args[0]!r}") from exc
    except ValueError as exc:
        if str(exc).startswith(where):
            raise
        raise ValueError(f"{where}: {exc}") from exc


# ------------------------------------------------------------------------------------------------------
# load


def _read_weight_file(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ValueError(f"{path}: cannot read weights: {exc}") from exc


def _weight_files(directory: Path) -> list[Path]:
    for single, index in (
        ("model.safetensors", "model.safetensors.index.json"),
        ("pytorch_model.bin", "pytorch_model.bin.index.json"),
    ):
        if (directory / single).is_file():
            return [directory / single]
        if (directory / index).is_file():
            try:
                weight_map = json.loads((directory / index).read_text(encoding="utf-8"))["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{directory / index}: not a valid shard index ({exc})") from exc
            return [directory / name for name in sorted(set(weight_map.values()))]
    raise FileNotFoundError(
        f"no weights in {directory}: expected model.safetensors, model.safetensors.index.json, "
        "pytorch_model.bin or pytorch_model.bin.index.json"
    )


def load_hf(
    directory: str | os.PathLike[str], *, dtype: torch.dtype | None = None, device: str | torch.device = "cpu"
) -> Llama:
    """Load a HF LLaMA checkpoint directory (single or sharded safetensors / .bin) as our ``Llama``."""
    directory = Path(directory)
    config_path, hf = read_json_config(directory)
    config = config_from_hf(hf, where=str(config_path))
    sd: dict[str, torch.Tensor] = {}
    for path in _weight_files(directory):
        for hf_name, tensor in _read_weight_file(path).items():
            if _IGNORED_HF_KEYS.fullmatch(hf_name):
                continue
            try:
                name = from_hf_name(hf_name)
            except KeyError:
                raise ValueError(
                    f"{path}: unexpected tensor {hf_name!r} (not part of LlamaForCausalLM)"
                ) from None
            if dtype is not None:
                tensor = tensor.to(dtype)
            sd[name] = tensor.to(device)
    return Llama.from_state_dict(config, sd, where=str(directory))


# ------------------------------------------------------------------------------------------------------
# save


def _shards(sd: dict[str, torch.Tensor], max_bytes: int) -> list[dict[str, torch.Tensor]]:
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in sd.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    return shards


def _tokenizer_files(tokenizer_dir: Path) -> list[Path]:
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"tokenizer directory not found: {tokenizer_dir}")
    found = [tokenizer_dir / n for n in TOKENIZER_FILES if (tokenizer_dir / n).is_file()]
    if not found:
        raise FileNotFoundError(f"no tokenizer files ({', '.join(TOKENIZER_FILES)}) in {tokenizer_dir}")
    return found


def _sentencepiece_specials(model_file: Path) -> dict[str, Any]:
    """bos/eos/unk ids and pieces of a SentencePiece model, for config.json and tokenizer_config.json."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    out: dict[str, Any] = {}
    for role, idx in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unk", sp.unk_id()), ("pad", sp.pad_id())):
        if idx >= 0:
            out[f"{role}_id"] = idx
            out[f"{role}_token"] = sp.id_to_piece(idx)
    return out


def save_hf(
    model: Llama,
    directory: str | os.PathLike[str],
    tokenizer_dir: str | os.PathLike[str] | None = None,
    *,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> Path:
    """Write ``model`` as a HF ``LlamaForCausalLM`` directory (atomically), with the tokenizer files.

    Weights larger than ``max_shard_bytes`` are split into ``model-0000i-of-0000n.safetensors`` with a
    ``model.safetensors.index.json``, as ``save_pretrained`` does. A tied output head is not stored.
    If the tokenizer directory has only a SentencePiece ``tokenizer.model``, a minimal
    ``tokenizer_config.json`` (LlamaTokenizer, its special tokens) is written next to it.
    """
    directory = Path(directory)
    tok_files = _tokenizer_files(Path(tokenizer_dir)) if tokenizer_dir is not None else []
    specials: dict[str, Any] = {}
    sp_model = next((f for f in tok_files if f.name == "tokenizer.model"), None)
    if sp_model is not None:
        specials = _sentencepiece_specials(sp_model)
    sd: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        if name == "output.weight" and model.config.tie_embeddings:
            continue
        t = tensor.detach()
        if dtype is not None:
            t = t.to(dtype)
        sd[to_hf_name(name)] = t.contiguous().cpu()
    out_dtype = next(iter(sd.values())).dtype
    config = hf_config_dict(
        model.config, dtype=out_dtype, bos_id=specials.get("bos_id", 1), eos_id=specials.get("eos_id", 2)
    )
    if "pad_id" in specials:
        config["pad_token_id"] = specials["pad_id"]

    def fill(tmp: Path) -> None:
        (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        shards = _shards(sd, max_shard_bytes)
        if len(shards) == 1:
            save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        else:
            weight_map = {}
            for i, shard in enumerate(shards, start=1):
                fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
                save_file(shard, str(tmp / fname), metadata={"format": "pt"})
                weight_map.update({name: fname for name in shard})
            total = sum(t.numel() * t.element_size() for t in sd.values())
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            (tmp / "model.safetensors.index.json").write_text(
                json.dumps(index, indent=2) + "\n", encoding="utf-8"
            )
        for f in tok_files:
            shutil.copyfile(f, tmp / f.name)
        if sp_model is not None and not (tmp / "tokenizer_config.json").exists():
            tok_cfg: dict[str, Any] = {
                "tokenizer_class": "LlamaTokenizer",
                "model_max_length": model.config.max_seq_len,
                "add_bos_token": True,
                "add_eos_token": False,
            }
            for role in ("bos", "eos", "unk", "pad"):
                if f"{role}_token" in specials:
                    tok_cfg[f"{role}_token"] = specials[f"{role}_token"]
            (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n", encoding="utf-8")

    write_dir_atomic(directory, fill)
    return directory


# ------------------------------------------------------------------------------------------------------
# CLI


_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def main(argv: Iterable[str] | None = None) -> int:
    """``corral export-hf --checkpoint DIR --out DIR [--tokenizer-dir DIR] [--dtype D]``."""
    parser = argparse.ArgumentParser(prog="corral export-hf", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, help="corral model directory (config.json + model.safetensors)"
    )
    parser.add_argument("--out", required=True, help="output directory (HF LlamaForCausalLM layout)")
    parser.add_argument(
        "--tokenizer-dir",
        help="directory with tokenizer files; default: the checkpoint if it has tokenizer.model",
    )
    parser.add_argument("--dtype", choices=sorted(_DTYPES), help="cast weights (default: as stored)")
    parser.add_argument("--max-shard-gb", type=float, default=DEFAULT_MAX_SHARD_BYTES / 1024**3)
    args = parser.parse_args(None if argv is None else list(argv))
    try:
        model = load_model(args.checkpoint)
        tok_dir = args.tokenizer_dir
        if tok_dir is None and (Path(args.checkpoint) / TOKENIZER_NAME).is_file():
            tok_dir = args.checkpoint
        out = save_hf(
            model,
            args.out,
            tok_dir,
            dtype=_DTYPES[args.dtype] if args.dtype else None,
            max_shard_bytes=int(args.max_shard_gb * 1024**3),
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"corral export-hf: error: {exc}", file=sys.stderr)
        return 1
    n = model.num_params()
    print(f"wrote {out} ({n / 1e6:.1f}M parameters, tokenizer: {tok_dir or 'none'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
