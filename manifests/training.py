"""The trainer's TOML config (`corral train --config C [--section.key value …]`), validated with pydantic.

Every knob of a training run and its default is in this file. Sections: top-level `run_dir`, `[model]`
(a preset plus any architecture field), `[data]`, `[train]`, `[optim]` (LLaMA §2.3's recipe by default),
`[checkpoint]`, `[log]`, `[eval]`, `[energy]` (LLaMA §6's estimate). Errors name the file and the dotted key
(`train.micro_batch`), like the job manifest's. Paths written in the file are relative to the file; paths
given on the command line are relative to the current directory.

`None` in the defaults means "take it from the model preset" (peak lr, batch in tokens) or "derive it"
(`model.max_seq_len` = `data.seq_len`); the run directory's `config.toml` holds the values as resolved.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from manifests.schema import ManifestError
from manifests.toml_file import dump_toml, parse_value, read_toml

PATH_KEYS = ("run_dir", "data.shards", "data.tokenizer")
# The architecture fields of model.llama.LlamaConfig a config may set (vocab_size comes from the tokenizer).
ARCH_FIELDS = (
    "dim",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "multiple_of",
    "ffn_hidden",
    "norm_eps",
    "rope_theta",
    "max_seq_len",
    "tie_embeddings",
    "init_std",
)


class ConfigError(ManifestError):
    """A training config that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelSettings(_Strict):
    """`[model]`: a preset of model/llama.py, any LlamaConfig field overriding it."""

    preset: str = "llama-10m"
    dim: int | None = Field(None, ge=1)
    n_layers: int | None = Field(None, ge=1)
    n_heads: int | None = Field(None, ge=1)
    n_kv_heads: int | None = Field(None, ge=1)
    multiple_of: int | None = Field(None, ge=1)
    ffn_hidden: int | None = Field(None, ge=1)
    norm_eps: float | None = Field(None, gt=0)
    rope_theta: float | None = Field(None, gt=0)
    max_seq_len: int | None = Field(None, ge=1)  # None: data.seq_len
    tie_embeddings: bool | None = None
    init_std: float | None = Field(None, gt=0)

    def overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ARCH_FIELDS if getattr(self, k) is not None}


class DataSettings(_Strict):
    """`[data]`: the `corral shards` output and how it is cut into training sequences."""

    shards: str = "shards"
    seq_len: int = Field(2048, ge=1)  # tokens per training sequence (each sample reads seq_len + 1)
    # SentencePiece model (or its folder) for decoding sample generations and for checking that the shards
    # were made with it; None: `tokenizer/` beside the shards folder when its sha256 matches the manifest's.
    tokenizer: str | None = None
    num_workers: int = Field(1, ge=0)  # DataLoader workers; the order does not depend on it
    verify: bool = False  # full scan of every shard at start (also `--verify`)


class TrainSettings(_Strict):
    """`[train]`: how long, how big a batch, which numerics and which parallelism."""

    steps: int | None = Field(None, ge=1)  # exactly one of steps / tokens
    tokens: int | None = Field(None, ge=1)  # a budget in tokens: steps = ceil(tokens / batch_tokens)
    batch_tokens: int | None = Field(None, ge=1)  # global batch; None: the preset's
    micro_batch: int = Field(8, ge=1)  # sequences per forward/backward on one device
    seed: int = 0  # model init and data order
    dtype: Literal["fp32", "bf16"] = "bf16"  # bf16 = autocast (weights and optimiser stay fp32)
    compile: bool = False  # torch.compile each transformer block and the loss
    activation_checkpointing: bool = False  # recompute each block in the backward pass
    parallelism: Literal["ddp", "fsdp"] = "ddp"  # under torchrun; fsdp = FSDP2 fully_shard per block
    device: Literal["auto", "cpu", "cuda"] = "auto"
    deterministic: bool = False  # torch.use_deterministic_algorithms (repeatable compiled kernels too)
    threads: int | None = Field(None, ge=1)  # CPU threads per process; None: torch's default

    @model_validator(mode="after")
    def _one_budget(self) -> TrainSettings:
        if (self.steps is None) == (self.tokens is None):
            raise ValueError("set exactly one of train.steps and train.tokens")
        return self


class OptimSettings(_Strict):
    """`[optim]`: AdamW with LLaMA's hyper-parameters (§2.3); peak lr from the preset unless set."""

    lr: float | None = Field(None, gt=0)
    warmup_steps: int = Field(2000, ge=0)  # linear warmup from 0, then cosine decay
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # the cosine ends at this fraction of the peak
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    weight_decay: float = Field(0.1, ge=0)  # on 2-D weights only; norms (1-D) never decay
    decay_embeddings: bool = True  # the token embedding is 2-D; decayed like nanoGPT / GPT-3 do
    grad_clip: float = Field(1.0, gt=0)  # max global gradient L2 norm
    fused: bool | None = None  # fused AdamW kernel; None: where the device supports it


class CheckpointSettings(_Strict):
    """`[checkpoint]`: `run_dir/checkpoints/step-N/`, also written on SIGTERM/SIGINT and at the end."""

    every: int = Field(500, ge=0)  # steps; 0: only on a signal and at the end
    keep: int = Field(3, ge=1)  # newest complete checkpoints kept
    export: bool = True  # write `run_dir/final/` (model/io.py format) when the run finishes


class LogSettings(_Strict):
    """`[log]`: `run_dir/metrics.jsonl`, the progress bar, TensorBoard, MFU."""

    every: int = Field(10, ge=1)  # steps per metrics line (eval steps and the last step always log)
    progress: bool = True  # a progress bar on a terminal (plain lines otherwise)
    tensorboard: bool = True  # scalars under run_dir/tensorboard when the `tensorboard` package is installed
    peak_tflops: float | None = Field(None, gt=0)  # per device, for MFU; None: the table of known GPUs


class EvalSettings(_Strict):
    """`[eval]`: validation loss/perplexity per source and a few sample generations."""

    every: int = Field(500, ge=0)  # steps; 0: only at the end
    sequences: int = Field(256, ge=0)  # validation sequences scored (from the start of the stream)
    samples: int = Field(2, ge=0)  # generations, prompted with the start of validation documents
    prompt_tokens: int = Field(16, ge=1)
    sample_tokens: int = Field(48, ge=1)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)


class EnergySettings(_Strict):
    """`[energy]`: LLaMA §6: MWh = device-hours × power × PUE; tCO2eq = MWh × carbon intensity."""

    power_watts: float = Field(400.0, gt=0)  # per device; LLaMA §6 takes 400 W for an A100-80GB
    pue: float = Field(1.1, ge=1)  # data-centre power usage effectiveness (LLaMA §6)
    tco2_per_mwh: float = Field(0.385, ge=0)  # US national average used by LLaMA §6


class TrainingConfig(_Strict):
    """A whole training config; `path` is the file it was read from."""

    run_dir: str
    model: ModelSettings = Field(default_factory=ModelSettings)
    data: DataSettings = Field(default_factory=DataSettings)
    train: TrainSettings
    optim: OptimSettings = Field(default_factory=OptimSettings)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    energy: EnergySettings = Field(default_factory=EnergySettings)
    path: str = ""

    def to_toml(self) -> str:
        """The config as TOML (no `path`; None values left out, so they read back as defaults)."""
        data = self.model_dump(mode="json", exclude={"path"})
        return dump_toml(data)

    def steps_for(self, batch_tokens: int) -> int:
        if self.train.steps is not None:
            return self.train.steps
        return math.ceil(self.train.tokens / batch_tokens)


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<top level>"


def apply_overrides(data: dict[str, Any], overrides: list[str], file: str) -> dict[str, Any]:
    """Apply `--section.key value` / `--section.key=value` / `--run_dir X` pairs to a parsed config."""
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    i = 0
    while i < len(overrides):
        arg = overrides[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(file, "<command line>", f"expected --section.key value, got {arg!r}")
        name, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(overrides):
                raise ConfigError(file, name, "missing value on the command line")
            value = overrides[i + 1]
            i += 1
        i += 1
        parsed: Any = parse_value(value)
        if name in PATH_KEYS:
            parsed = str(Path(value).expanduser().resolve())  # command-line paths: relative to the cwd
        parts = name.split(".")
        if len(parts) == 1:
            data[name] = parsed
        elif len(parts) == 2:
            table = data.setdefault(parts[0], {})
            if not isinstance(table, dict):
                raise ConfigError(file, parts[0], "is not a table")
            table[parts[1]] = parsed
        else:
            raise ConfigError(file, name, "expected section.key")
    return data


def parse_config(data: dict[str, Any], file: str) -> TrainingConfig:
    """Validate a parsed config; the first error becomes a ConfigError naming its key. Relative paths
    resolve against the config file's folder."""
    if "path" in data:
        raise ConfigError(file, "path", "unknown key")
    try:
        cfg = TrainingConfig.model_validate({**data, "path": file})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise ConfigError(file, _key(err["loc"]), msg + more) from None
    base = Path(file).parent if file else Path.cwd()

    def resolve(value: str) -> str:
        if "://" in value or Path(value).is_absolute():
            return value
        return str((base / value).resolve())

    cfg.run_dir = resolve(cfg.run_dir)
    cfg.data.shards = resolve(cfg.data.shards)
    if cfg.data.tokenizer is not None:
        cfg.data.tokenizer = resolve(cfg.data.tokenizer)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainingConfig:
    """Read a config TOML file, apply command-line overrides, validate; errors name the file and key."""
    file, data = read_toml(path, ConfigError)
    return parse_config(apply_overrides(data, overrides or [], file), file)
