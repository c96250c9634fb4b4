"""`corral train --config C [--dry-run] [--resume auto|DIR] [--verify] [--section.key value …]`.

Also `torchrun --nproc_per_node N -m trainer.train --config C …` (DDP or FSDP2; gloo on CPU, nccl on GPU).
LLaMA's recipe (arXiv:2302.13971 §2.3) on the `corral shards` output: AdamW (0.9, 0.95), weight decay 0.1,
clip 1.0, warmup then cosine to 10%, the global batch in tokens reached by gradient accumulation, bf16
autocast. The data order and the data position are described in `trainer/data.py`, checkpoints in
`trainer/checkpoint.py`, metrics and MFU in `trainer/observe.py`, the settings in `manifests/training.py`.

What is bit-identical: a run stopped (SIGTERM/SIGINT) and resumed at the same world size repeats the
losses of an uninterrupted run exactly — the model and AdamW state are restored bit for bit, the learning
rate is a function of the step, the data of a step is a function of the data position, and nothing else
draws random numbers (LLaMA has no dropout). At another world size the batches are the same sequences
(the same `batch_fingerprint`); the losses then agree to rounding: DDP's gradient all-reduce sums in
another order than one process's accumulation, and FSDP2 reduces the gradient norm shard by shard.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from manifests import shards as shard_format
from manifests import storage
from manifests.shards import ShardManifest
from manifests.training import ConfigError, TrainingConfig, load_config
from model.llama import PRESETS, Llama, LlamaConfig
from trainer import checkpoint as ckpt
from trainer.data import (
    VERIFIED_CACHE,
    BatchPlan,
    PackedSequences,
    SequenceOrder,
    ShardError,
    StepSampler,
    TokenStream,
    batch_fingerprint,
    find_tokenizer,
    make_loader,
    verify_shards,
)
from trainer.observe import MetricsLog, energy_estimate, mfu, peak_tflops
from trainer.optim import clip_grad_norm, lr_at, make_optimizer, set_lr

PAUSE_ENV = "CORRAL_TRAIN_PAUSE_AT_STEP"  # test aid: after step N, wait for a signal (preemption tests)
EXIT_PREEMPTED = {signal.SIGTERM: 143, signal.SIGINT: 130}
EXIT_NONFINITE = 3


class NonFiniteLoss(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------------------
# processes and devices


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    def _reduce(self, t: torch.Tensor, op: dist.ReduceOp) -> torch.Tensor:
        if self.world == 1:
            return t
        on_device = t.to(self.device)  # nccl reduces device tensors only
        dist.all_reduce(on_device, op=op)
        return on_device.to(t.device)

    def all_sum(self, t: torch.Tensor) -> torch.Tensor:
        return self._reduce(t, dist.ReduceOp.SUM)

    def all_max(self, t: torch.Tensor) -> torch.Tensor:
        return self._reduce(t, dist.ReduceOp.MAX)

    def broadcast(self, obj: Any) -> Any:
        if self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def setup_distributed(cfg: TrainingConfig) -> Dist:
    want = cfg.train.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError(cfg.path, "train.device", "cuda asked for, but torch sees no CUDA device")
    use_cuda = want == "cuda" or (want == "auto" and torch.cuda.is_available())
    if cfg.train.deterministic and use_cuda:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if "RANK" in os.environ and not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo",
            device_id=device if use_cuda else None,
            timeout=datetime.timedelta(minutes=30),
        )
    return Dist(rank, world, local_rank, device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


# ----------------------------------------------------------------------------------------------------------
# the model


def build_model_config(cfg: TrainingConfig, vocab_size: int) -> LlamaConfig:
    overrides = cfg.model.overrides()
    overrides.setdefault("max_seq_len", cfg.data.seq_len)
    if overrides["max_seq_len"] < cfg.data.seq_len:
        raise ConfigError(
            cfg.path,
            "model.max_seq_len",
            f"{overrides['max_seq_len']} is shorter than data.seq_len {cfg.data.seq_len}",
        )
    try:
        return LlamaConfig.from_preset(cfg.model.preset, vocab_size=vocab_size, **overrides)
    except ValueError as exc:
        key = "model.preset" if cfg.model.preset not in PRESETS else "model"
        raise ConfigError(cfg.path, key, str(exc)) from None


def _checkpointed(block: torch.nn.Module) -> None:
    """Recompute `block` in the backward pass (activation checkpointing); parameter names are unchanged."""
    from torch.utils.checkpoint import checkpoint

    inner = block.forward

    def forward(*args: Any, **kwargs: Any) -> torch.Tensor:
        return checkpoint(inner, *args, use_reentrant=False, **kwargs)

    block.forward = forward


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy in fp32, shape of `targets`."""
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none").view_as(targets)


def prepare_model(cfg: TrainingConfig, mcfg: LlamaConfig, d: Dist) -> tuple[Llama, torch.nn.Module]:
    """(the Llama, the module to call): init on CPU with the run's seed (the same on every rank), optional
    activation checkpointing and per-block torch.compile (torchtitan's order), then DDP or FSDP2."""
    torch.manual_seed(cfg.train.seed)
    model = Llama(mcfg)
    for block in model.layers:
        if cfg.train.activation_checkpointing:
            _checkpointed(block)
        if cfg.train.compile:
            block.compile()
    model.to(d.device)
    if d.world == 1 or not dist.is_initialized():
        return model, model
    if cfg.train.parallelism == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mp = None
        if cfg.train.dtype == "bf16" and d.device.type == "cuda":
            mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        kwargs = {"mp_policy": mp} if mp is not None else {}
        for block in model.layers:
            fully_shard(block, **kwargs)
        fully_shard(model, **kwargs)
        return model, model
    from torch.nn.parallel import DistributedDataParallel as DDP

    # The only buffers are the RoPE tables, computed identically on every rank: no need to broadcast them
    # before every forward. Gradients as views of the all-reduce buckets: one copy of them, not two.
    ddp = DDP(
        model,
        device_ids=[d.local_rank] if d.device.type == "cuda" else None,
        broadcast_buffers=False,
        gradient_as_bucket_view=True,
    )
    return model, ddp


def _sync_grads(module: torch.nn.Module, last: bool) -> contextlib.AbstractContextManager:
    """Reduce gradients only on the last micro-batch of a step (DDP `no_sync`, FSDP2 gradient sync off)."""
    from torch.distributed.fsdp import FSDPModule
    from torch.nn.parallel import DistributedDataParallel as DDP

    if isinstance(module, DDP):
        return contextlib.nullcontext() if last else module.no_sync()
    if isinstance(module, FSDPModule):
        module.set_requires_gradient_sync(last)
    return contextlib.nullcontext()


def memory_estimate(mcfg: LlamaConfig, n_params: int, cfg: TrainingConfig, world: int) -> dict[str, float]:
    """Bytes per device: fp32 weights, fp32 gradients, AdamW's two fp32 moments (all / world under FSDP),
    and the activations one micro-batch keeps for backward (an estimate: per token and layer about 11·d + 4·f
    values — block input, norms, q/k/v and their rotations, attention output, the SwiGLU branches — plus
    the logits in bf16/fp32 and their fp32 copy for the loss; only the block inputs with checkpointing)."""
    shard = world if cfg.train.parallelism == "fsdp" else 1
    weights = 4 * n_params / shard
    elem = 2 if cfg.train.dtype == "bf16" else 4
    tokens = cfg.train.micro_batch * cfg.data.seq_len
    d, f, layers = mcfg.dim, mcfg.ffn_hidden, mcfg.n_layers
    if cfg.train.activation_checkpointing:
        per_layer = tokens * d * elem
        block = tokens * (11 * d + 4 * f) * elem
    else:
        per_layer, block = tokens * (11 * d + 4 * f) * elem, 0
    logits = tokens * mcfg.vocab_size * (elem + 8)
    return {
        "weights": weights,
        "gradients": weights,
        "optimizer": 2 * weights,
        "activations": layers * per_layer + block + logits,
    }


# ----------------------------------------------------------------------------------------------------------
# the trainer


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


class Trainer:
    def __init__(
        self, cfg: TrainingConfig, d: Dist, *, resume: str | None, verify: bool, dry_run: bool
    ) -> None:
        self.cfg, self.d, self.dry_run = cfg, d, dry_run
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.run_dir = cfg.run_dir
        shards_dir = cfg.data.shards
        self.manifest = ShardManifest.read_from(shards_dir)
        self.manifest_sha = shard_format.manifest_sha256(shards_dir)
        self.tokenizer_path = find_tokenizer(shards_dir, self.manifest, cfg.data.tokenizer)

        # where to start
        self.resume_from = self._resume_path(resume)
        self.saved = ckpt.read_trainer_state(self.resume_from) if self.resume_from else None
        if self.saved is not None:
            self._check_resumable(self.saved)

        # shards: checked on rank 0, the verdict shared so every rank stops with the same message
        error = None
        if d.main:
            try:
                cache = None if dry_run else os.path.join(self.run_dir, VERIFIED_CACHE)
                if cache:
                    os.makedirs(self.run_dir, exist_ok=True)
                verify_shards(shards_dir, self.manifest, full=verify or cfg.data.verify, cache_file=cache)
            except ShardError as exc:
                error = str(exc)
        error = d.broadcast(error)
        if error:
            raise ShardError(error)

        # model, optimiser, schedule
        self.mcfg = build_model_config(cfg, self.manifest.tokenizer.vocab_size)
        preset = PRESETS[cfg.model.preset]
        self.batch_tokens = cfg.train.batch_tokens or preset.batch_tokens
        self.peak_lr = cfg.optim.lr or preset.peak_lr
        try:
            self.plan = BatchPlan.make(self.batch_tokens, cfg.data.seq_len, cfg.train.micro_batch, d.world)
        except ValueError as exc:
            raise ConfigError(cfg.path, "train.batch_tokens", str(exc)) from None
        self.total_steps = cfg.steps_for(self.batch_tokens)
        self.model, self.module = prepare_model(cfg, self.mcfg, d)
        self.optimizer = make_optimizer(self.model, cfg.optim, self.peak_lr, d.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.flops_per_token = self.model.flops_per_token(cfg.data.seq_len)
        self.n_params = self.model.num_params()
        self.loss_fn = torch.compile(token_losses) if cfg.train.compile else token_losses
        self.autocast = (
            torch.autocast(d.device.type, dtype=torch.bfloat16)
            if cfg.train.dtype == "bf16"
            else contextlib.nullcontext()
        )

        # data
        names = self.manifest.source_names
        self.sources = names
        self.train_stream = TokenStream(shards_dir, self.manifest.train, names)
        self.dataset = PackedSequences(self.train_stream, cfg.data.seq_len, self.mcfg.vocab_size)
        if len(self.dataset) < 1:
            raise ShardError(
                f"{storage.join(shards_dir, shard_format.MANIFEST)}: {self.train_stream.total} training tokens "
                f"make no sequence of data.seq_len {cfg.data.seq_len} + 1"
            )
        self.order = SequenceOrder(len(self.dataset), self.manifest_sha, cfg.train.seed, cfg.data.seq_len)
        self.val_stream = (
            TokenStream(shards_dir, self.manifest.validation, names) if self.manifest.validation else None
        )
        self.val_data = (
            PackedSequences(self.val_stream, cfg.data.seq_len, self.mcfg.vocab_size)
            if self.val_stream
            else None
        )

        # state carried by checkpoints
        s = self.saved or {}
        self.step = int(s.get("step", 0))
        self.position = int(s.get("data_position", 0))
        self.run_tokens_by_source = np.asarray(s.get("tokens_by_source", [0] * len(names)), dtype=np.int64)
        self.device_seconds = float(s.get("device_seconds", 0.0))
        self.interval = s.get("interval") or self._empty_interval()
        self.last_checkpoint = self.resume_from
        self.stop_signal: int | None = None

    # -- resume -------------------------------------------------------------------------------------------

    def _resume_path(self, resume: str | None) -> str | None:
        existing = ckpt.latest(self.run_dir)
        if resume is None:
            if existing and not self.dry_run:
                raise ckpt.ResumeError(
                    f"{self.run_dir}: holds checkpoints (newest {existing}); continue it with --resume auto, "
                    "or choose another run_dir"
                )
            return None
        if resume == "auto":
            return existing
        path = os.path.abspath(resume)
        if not os.path.isfile(os.path.join(path, ckpt.COMPLETE)):
            raise ckpt.ResumeError(f"{path}: not a complete checkpoint (no {ckpt.COMPLETE})")
        return path

    def _check_resumable(self, saved: dict[str, Any]) -> None:
        where = self.resume_from
        if saved["manifest_sha256"] != self.manifest_sha:
            raise ckpt.ResumeError(
                f"{where}: was trained on shards with manifest sha256 {saved['manifest_sha256']}, but "
                f"{storage.join(self.cfg.data.shards, shard_format.MANIFEST)} is {self.manifest_sha}"
            )
        if saved["tokenizer_sha256"] != self.manifest.tokenizer.sha256:
            raise ckpt.ResumeError(f"{where}: trained with tokenizer {saved['tokenizer_sha256']}")
        import tomllib

        before = tomllib.loads(saved["config"])
        for section, key in (
            ("data", "seq_len"),
            ("train", "seed"),
            ("train", "batch_tokens"),
            ("model", "preset"),
            *(
                ("model", k)
                for k in ("dim", "n_layers", "n_heads", "n_kv_heads", "ffn_hidden", "tie_embeddings")
            ),
        ):
            old = before.get(section, {}).get(key)
            new = self._resolved().get(section, {}).get(key)
            if old != new:
                raise ConfigError(
                    self.cfg.path,
                    f"{section}.{key}",
                    f"is {new!r} but the checkpoint {where} was made with {old!r}; it fixes the data order and "
                    "the model, so a resumed run must keep it",
                )

    def _resolved(self) -> dict[str, Any]:
        """The config with what the preset and the data decide filled in (what `config.toml` records)."""
        import tomllib

        data = tomllib.loads(self.cfg.to_toml())
        preset = PRESETS.get(self.cfg.model.preset)
        if preset is not None:
            data["train"].setdefault("batch_tokens", self.cfg.train.batch_tokens or preset.batch_tokens)
            data["optim"].setdefault("lr", self.cfg.optim.lr or preset.peak_lr)
            for key, value in preset.arch.items():
                data["model"].setdefault(key, value)
        data["model"].setdefault("max_seq_len", self.cfg.data.seq_len)
        return data

    def resolved_toml(self) -> str:
        from manifests.training import dump_toml

        return dump_toml(self._resolved())

    # -- one step -----------------------------------------------------------------------------------------

    def _empty_interval(self) -> dict[str, Any]:
        n = len(self.manifest.source_names)
        return {"loss_sum": [0.0] * n, "count": [0] * n, "grad_norm_sum": 0.0, "steps": 0, "seconds": 0.0}

    def train_step(self, batches: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step over `accumulation` micro-batches; returns (per-source loss sums, per-source
        target counts — this rank's — and the global gradient norm)."""
        n = len(self.sources)
        dev = self.d.device
        loss_sum = torch.zeros(n, dtype=torch.float64, device=dev)
        count = torch.zeros(n, dtype=torch.int64, device=dev)
        accum = self.plan.accumulation
        sampler_lo, sampler_hi = self.sampler.rank_positions(self.position)
        expected = self.order.indices(sampler_lo, sampler_hi)
        got = []
        for m in range(accum):
            batch = next(batches)
            got.append(batch["index"].numpy())
            tokens = batch["tokens"].to(dev, non_blocking=True)
            sources = batch["sources"].to(dev, non_blocking=True).long().flatten()
            with _sync_grads(self.module, m == accum - 1), self.autocast:
                logits = self.module(tokens[:, :-1])
                per_token = self.loss_fn(logits, tokens[:, 1:])
                loss = per_token.mean() / accum
            loss.backward()
            loss_sum.index_add_(0, sources, per_token.detach().flatten().double())
            count += torch.bincount(sources, minlength=n)
        if not np.array_equal(np.concatenate(got), expected):
            raise RuntimeError(
                f"step {self.step + 1}: the loader delivered other sequences than the sampler planned"
            )
        grad_norm = clip_grad_norm(self.params, self.cfg.optim.grad_clip)
        return loss_sum, count, grad_norm

    def _check_and_step(self, loss_sum: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Agree across ranks on a stop signal and on a non-finite loss, then apply the update (or not)."""
        local_loss = loss_sum.sum()
        bad = (~torch.isfinite(local_loss)) | (~torch.isfinite(grad_norm))
        flags = torch.stack(
            [bad.to(torch.float32), torch.tensor(float(self.stop_signal or 0), device=bad.device)]
        )
        flags = self.d.all_max(flags).tolist()
        if flags[1] and self.stop_signal is None:
            self.stop_signal = int(flags[1])
        if flags[0]:
            where = self.last_checkpoint or "none yet (no checkpoint was written)"
            raise NonFiniteLoss(
                f"non-finite loss at step {self.step + 1} (this rank's loss sum {local_loss.item()}, gradient "
                f"norm {grad_norm.item()}); the update was not applied. Last good checkpoint: {where}. "
                "Resume from it with a lower optim.lr or a longer optim.warmup_steps"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    # -- evaluation ---------------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, Any]:
        """Validation loss and perplexity, overall and per source, on the first `eval.sequences` sequences
        of the validation stream (in stream order; each rank scores an equal share)."""
        if self.val_data is None or self.cfg.eval.sequences == 0:
            return {}
        n = len(self.sources)
        total = min(len(self.val_data), self.cfg.eval.sequences)
        per_rank = total // self.d.world
        if per_rank == 0:
            return {}
        loss_sum = torch.zeros(n, dtype=torch.float64, device=self.d.device)
        count = torch.zeros(n, dtype=torch.int64, device=self.d.device)
        first = self.d.rank * per_rank
        mb = self.cfg.train.micro_batch
        for lo in range(first, first + per_rank, mb):
            batch = self.val_data.__getitems__(list(range(lo, min(lo + mb, first + per_rank))))
            tokens = batch["tokens"].to(self.d.device)
            sources = batch["sources"].to(self.d.device).long().flatten()
            with self.autocast:
                per_token = token_losses(self.module(tokens[:, :-1]), tokens[:, 1:])
            loss_sum.index_add_(0, sources, per_token.flatten().double())
            count += torch.bincount(sources, minlength=n)
        loss_sum, count = self.d.all_sum(loss_sum), self.d.all_sum(count)
        ls, c = loss_sum.cpu().numpy(), count.cpu().numpy()
        val = float(ls.sum() / c.sum())
        by_source = {name: float(ls[i] / c[i]) for i, name in enumerate(self.sources) if c[i]}
        return {
            "val_loss": val,
            "val_ppl": math.exp(min(val, 700.0)),
            "val_loss_by_source": by_source,
            "val_ppl_by_source": {k: math.exp(min(v, 700.0)) for k, v in by_source.items()},
        }

    @torch.no_grad()
    def samples(self) -> list[dict[str, Any]]:
        """A few generations prompted with the start of validation (else training) documents."""
        from model.generate import generate

        k = self.cfg.eval.samples
        stream = self.val_stream or self.train_stream
        if k == 0:
            return []
        prompts = document_prefixes(stream, k, self.cfg.eval.prompt_tokens)
        if not prompts:
            return []
        fsdp = self.cfg.train.parallelism == "fsdp" and self.d.world > 1
        if not (self.d.main or fsdp):  # FSDP2: every rank takes part in each forward (all-gathers)
            return []
        room = self.mcfg.max_seq_len - max(len(p) for p in prompts)
        gen = torch.Generator(device=self.d.device).manual_seed(self.cfg.train.seed * 1_000_003 + self.step)
        with self.autocast:
            outs = generate(
                self.model,
                prompts,
                max(0, min(self.cfg.eval.sample_tokens, room)),
                temperature=self.cfg.eval.temperature,
                top_p=self.cfg.eval.top_p,
                eos_id=self.manifest.tokenizer.eos_id,
                generator=gen,
            )
        sp = None
        if self.tokenizer_path is not None:
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=self.tokenizer_path)
        out = []
        for p, o in zip(prompts, outs, strict=True):
            rec: dict[str, Any] = {"step": self.step, "prompt_ids": p, "output_ids": o}
            if sp is not None:
                rec["prompt"], rec["output"] = sp.decode(p), sp.decode(o)
            out.append(rec)
        return out

    # -- the run ------------------------------------------------------------------------------------------

    def _trainer_state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "data_position": self.position,
            "tokens_by_source": self.run_tokens_by_source.tolist(),
            "device_seconds": self.device_seconds,
            "interval": self.interval,
            "manifest_sha256": self.manifest_sha,
            "tokenizer_sha256": self.manifest.tokenizer.sha256,
            "config": self.resolved_toml(),
            "world_size": self.d.world,
        }

    def save_checkpoint(self) -> str:
        path = ckpt.save(
            self.run_dir,
            self.step,
            self.module,
            self.optimizer,
            self._trainer_state(),
            self.resolved_toml(),
            self.cfg.checkpoint.keep,
        )
        self.last_checkpoint = path
        return path

    def export_final(self) -> str | None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        from model.io import save_model

        sd = get_model_state_dict(
            self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if not self.d.main:
            return None
        final = Llama.from_state_dict(self.mcfg, sd, where="final export")
        path = os.path.join(self.run_dir, "final")
        save_model(final, path, tokenizer=self.tokenizer_path)
        return path

    def describe(self) -> str:
        cfg, m = self.cfg, self.mcfg
        n_tokens = self.total_steps * self.batch_tokens
        epochs = self.total_steps * self.plan.global_batch / len(self.dataset)
        mem = memory_estimate(m, self.n_params, cfg, self.d.world)
        lines = [
            f"model      {cfg.model.preset}: dim {m.dim}, {m.n_layers} layers, {m.n_heads} heads "
            f"({m.n_kv_heads} kv), ffn {m.ffn_hidden}, vocab {m.vocab_size}, seq {cfg.data.seq_len}",
            f"parameters {self.n_params:,} ({self.model.num_params(non_embedding=True):,} non-embedding)",
            f"FLOPs/token {self.flops_per_token:,} (6·N_non-embedding + 12·L·d·T)",
            f"batch      {self.batch_tokens:,} tokens = {self.plan.global_batch} sequences = micro-batch "
            f"{self.plan.micro_batch} × {self.plan.accumulation} accumulation × {self.d.world} processes",
            f"schedule   {self.total_steps:,} steps = {n_tokens:,} tokens; peak lr {self.peak_lr:g}, "
            f"{cfg.optim.warmup_steps} warmup steps, cosine to {cfg.optim.min_lr_ratio:g}×",
            f"data       {len(self.dataset):,} sequences per epoch ({self.train_stream.total:,} tokens, "
            f"{len(self.manifest.train)} files); the budget is {epochs:.3f} epochs of the shards",
            f"device     {device_name(self.d.device)} × {self.d.world}, {cfg.train.dtype}, "
            f"{'FSDP2' if cfg.train.parallelism == 'fsdp' and self.d.world > 1 else 'DDP' if self.d.world > 1 else 'single process'}"
            f"{', compiled' if cfg.train.compile else ''}{', activation checkpointing' if cfg.train.activation_checkpointing else ''}",
            "memory     per device (estimate): "
            + ", ".join(f"{k} {_gib(v)}" for k, v in mem.items())
            + f"; total {_gib(sum(mem.values()))}",
            f"tokenizer  {self.tokenizer_path or 'not found (samples are shown as token ids)'}",
        ]
        if cfg.optim.warmup_steps >= self.total_steps:
            lines.append(
                f"warning    optim.warmup_steps ({cfg.optim.warmup_steps}) >= the run's {self.total_steps} steps: "
                "the learning rate never reaches its peak"
            )
        return "\n".join(lines)

    def _record(self, lr: float) -> dict[str, Any]:
        """The metrics of the log interval that ends at this step (losses summed over every rank)."""
        iv = self.interval
        ls = self.d.all_sum(torch.tensor(iv["loss_sum"], dtype=torch.float64)).numpy()
        c = self.d.all_sum(torch.tensor(iv["count"], dtype=torch.int64)).numpy()
        self.run_tokens_by_source += c
        run_total = max(1, int(self.run_tokens_by_source.sum()))
        tokens_per_s = iv["steps"] * self.batch_tokens / iv["seconds"] if iv["seconds"] > 0 else 0.0
        peak = peak_tflops(device_name(self.d.device), self.cfg.log.peak_tflops)
        weights = {
            n: (self.manifest.sources[n].weight if n in self.manifest.sources else None) for n in self.sources
        }
        record = {
            "step": self.step,
            "tokens": self.step * self.batch_tokens,
            "loss": float(ls.sum() / max(1, c.sum())),
            "loss_by_source": {n: float(ls[i] / c[i]) for i, n in enumerate(self.sources) if c[i]},
            "tokens_by_source": {n: int(c[i]) for i, n in enumerate(self.sources) if c[i]},
            "lr": lr,
            "grad_norm": iv["grad_norm_sum"] / max(1, iv["steps"]),
            "tokens_per_s": tokens_per_s,
            "mfu": mfu(tokens_per_s, self.flops_per_token, peak, self.d.world),
            "mix": {
                n: {"realised": int(self.run_tokens_by_source[i]) / run_total, "target": weights[n]}
                for i, n in enumerate(self.sources)
            },
            "batch_fingerprint": batch_fingerprint(
                self.order, self.position - self.plan.global_batch, self.position
            ),
            "epoch": (self.position - 1) // len(self.dataset),
            "elapsed_s": self.device_seconds / self.d.world,  # wall seconds of training, over all resumes
        }
        self.interval = self._empty_interval()
        return record

    def run(self) -> int:
        cfg, d = self.cfg, self.d
        if d.main:
            print(f"corral train: config (resolved)\n{self.resolved_toml()}", flush=True)
            print(self.describe(), flush=True)
        if self.resume_from:
            ckpt.load(self.resume_from, self.module, self.optimizer)
            if d.main:
                print(f"resumed from {self.resume_from} at step {self.step} (data position {self.position})")
        if self.step >= self.total_steps and not self.dry_run:
            finished = os.path.exists(os.path.join(self.run_dir, "summary.json"))
            if not finished and cfg.checkpoint.export:
                # Stopped after its last checkpoint but before the export: finish the run, do not retrain.
                final = self.export_final()
                if d.main:
                    self._summary(final)
            elif d.main:
                print(f"nothing to do: step {self.step} reached train.steps {self.total_steps}")
            return 0
        if self.dry_run:
            return self._dry_run()

        os.makedirs(self.run_dir, exist_ok=True)
        if d.main:
            storage.write_text_atomic(os.path.join(self.run_dir, "config.toml"), self.resolved_toml())
            for name in ("metrics.jsonl", "samples.jsonl"):
                MetricsLog.truncate(os.path.join(self.run_dir, name), self.step)
        log = MetricsLog(self.run_dir, enabled=d.main, tensorboard=cfg.log.tensorboard)
        self._install_signals()
        pause_at = int(os.environ.get(PAUSE_ENV, "-1"))

        self.sampler = StepSampler(self.order, self.plan, d.rank, self.position, self.total_steps - self.step)
        loader = make_loader(
            self.dataset, self.sampler, cfg.data.num_workers, pin_memory=d.device.type == "cuda"
        )
        batches = iter(loader)
        bar = _progress(cfg, d, self.step, self.total_steps)
        loop_start = time.perf_counter()
        seconds_before = self.device_seconds
        exit_code = 0
        try:
            while self.step < self.total_steps:
                lr = lr_at(
                    self.step, self.peak_lr, cfg.optim.warmup_steps, self.total_steps, cfg.optim.min_lr_ratio
                )
                set_lr(self.optimizer, lr)
                t0 = time.perf_counter()
                loss_sum, count, grad_norm = self.train_step(batches)
                self._check_and_step(loss_sum, grad_norm)
                self.step += 1
                self.position += self.plan.global_batch
                iv = self.interval
                iv["loss_sum"] = (np.asarray(iv["loss_sum"]) + loss_sum.cpu().numpy()).tolist()
                iv["count"] = (np.asarray(iv["count"]) + count.cpu().numpy()).tolist()
                iv["grad_norm_sum"] += float(grad_norm)
                iv["steps"] += 1
                iv["seconds"] += time.perf_counter() - t0
                self.device_seconds = seconds_before + (time.perf_counter() - loop_start) * d.world

                last = self.step == self.total_steps
                do_eval = last or (cfg.eval.every and self.step % cfg.eval.every == 0)
                if do_eval or last or self.step % cfg.log.every == 0 or self.stop_signal:
                    record = self._record(lr)
                    if do_eval:
                        record.update(self.evaluate())
                        samples = self.samples()
                        if d.main and samples:
                            with open(
                                os.path.join(self.run_dir, "samples.jsonl"), "a", encoding="utf-8"
                            ) as f:
                                for s in samples:
                                    f.write(json.dumps(s, ensure_ascii=False) + "\n")
                            for s in samples:
                                bar.write(
                                    f"sample @ {self.step}: {s.get('prompt', s['prompt_ids'])!r} → "
                                    f"{s.get('output', s['output_ids'])!r}"
                                )
                    log.write(record)
                    if d.main:
                        bar.write(_log_line(record))
                bar.update(1)
                if self.step == pause_at:
                    marker = os.path.join(self.run_dir, f"paused-at-{self.step}")
                    open(marker, "w").close()
                    while self.stop_signal is None:
                        time.sleep(0.02)
                    os.remove(marker)
                if self.stop_signal:
                    break
                if cfg.checkpoint.every and self.step % cfg.checkpoint.every == 0 and not last:
                    self.save_checkpoint()
            path = self.save_checkpoint()
            if self.stop_signal:
                if d.main:
                    print(
                        f"stopped by {signal.Signals(self.stop_signal).name} after step {self.step}; checkpoint "
                        f"{path}; continue with --resume auto",
                        flush=True,
                    )
                exit_code = EXIT_PREEMPTED.get(signal.Signals(self.stop_signal), 1)
            else:
                final = self.export_final() if cfg.checkpoint.export else None
                if d.main:
                    self._summary(final)
        finally:
            bar.close()
            log.close()
            del batches
        return exit_code

    def _summary(self, final: str | None) -> None:
        cfg = self.cfg
        energy = energy_estimate(
            self.device_seconds / 3600, cfg.energy.power_watts, cfg.energy.pue, cfg.energy.tco2_per_mwh
        )
        summary = {
            "steps": self.step,
            "tokens": self.step * self.batch_tokens,
            "device": device_name(self.d.device),
            "devices": self.d.world,
            "final": final,
            "last_checkpoint": self.last_checkpoint,
            "energy": energy,
        }
        storage.write_text_atomic(
            os.path.join(self.run_dir, "summary.json"), json.dumps(summary, indent=2) + "\n"
        )
        print(
            f"done: {self.step} steps, {summary['tokens']:,} tokens; model in {final or '(not exported)'}\n"
            f"energy (LLaMA §6): {energy['device_hours']:.3g} device-hours × {energy['power_watts']:g} W × PUE "
            f"{energy['pue']:g} = {energy['mwh']:.3g} MWh ≈ {energy['tco2eq']:.3g} tCO2eq",
            flush=True,
        )

    def _dry_run(self) -> int:
        """Time a few real steps (forward, backward, update) and extrapolate; writes nothing."""
        measure = 3
        self.sampler = StepSampler(self.order, self.plan, self.d.rank, self.position, measure + 1)
        batches = iter(make_loader(self.dataset, self.sampler, 0))
        times = []
        for i in range(measure + 1):
            set_lr(
                self.optimizer,
                lr_at(self.step, self.peak_lr, self.cfg.optim.warmup_steps, self.total_steps, 0.1),
            )
            t0 = time.perf_counter()
            loss_sum, _, grad_norm = self.train_step(batches)
            self._check_and_step(loss_sum, grad_norm)
            self.position += self.plan.global_batch
            if self.d.device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first step warms up (and compiles)
                times.append(time.perf_counter() - t0)
        per_step = float(np.median(times))
        remaining = self.total_steps - self.step
        if self.d.main:
            peak = peak_tflops(device_name(self.d.device), self.cfg.log.peak_tflops)
            rate = self.batch_tokens / per_step
            m = mfu(rate, self.flops_per_token, peak, self.d.world)
            msg = f"measured   {per_step:.3f} s/step ({rate:,.0f} tokens/s"
            msg += f", MFU {m:.1%})" if m is not None else ")"
            if self.d.device.type == "cuda":
                msg += f"; peak memory {_gib(torch.cuda.max_memory_allocated(self.d.device))}"
            print(msg)
            print(
                f"estimate   {remaining:,} steps ≈ {datetime.timedelta(seconds=round(per_step * remaining))}"
            )
        return 0

    def _install_signals(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            if self.stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now, without a checkpoint
            self.stop_signal = signum

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def document_prefixes(stream: TokenStream, k: int, length: int) -> list[list[int]]:
    """The first `length` tokens (EOS excluded) of the first `k` documents of a stream."""
    out: list[list[int]] = []
    for seg in stream._ensure_open():
        for r in range(len(seg.row_source)):
            lo, hi = int(seg.offsets[r]), int(seg.offsets[r + 1])
            doc = seg.values[lo : min(hi - 1, lo + length)].astype(np.int64).tolist()
            if doc:
                out.append(doc)
            if len(out) == k:
                return out
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def write(self, text: str) -> None:
        print(text, flush=True)

    def close(self) -> None:
        pass


def _progress(cfg: TrainingConfig, d: Dist, start: int, total: int) -> Any:
    if not d.main:
        bar = _NoBar()
        bar.write = lambda text: None  # type: ignore[method-assign]
        return bar
    if cfg.log.progress and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
    return _NoBar()


def _log_line(r: dict[str, Any]) -> str:
    parts = [f"step {r['step']}", f"loss {r['loss']:.4f}", f"lr {r['lr']:.3g}", f"gnorm {r['grad_norm']:.3f}"]
    parts.append(f"{r['tokens_per_s']:,.0f} tok/s")
    if r.get("mfu") is not None:
        parts.append(f"mfu {r['mfu']:.1%}")
    if "val_loss" in r:
        parts.append(f"val {r['val_loss']:.4f} (ppl {r['val_ppl']:.1f})")
    return "  ".join(parts)


# ----------------------------------------------------------------------------------------------------------
# CLI


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="corral train",
        allow_abbrev=False,
        description="Train a LLaMA model on `corral shards` output. Any --section.key value overrides the "
        "config (e.g. --train.steps 100 --optim.lr 3e-4 --run_dir runs/x).",
    )
    parser.add_argument("--config", required=True, help="the training config (TOML)")
    parser.add_argument(
        "--dry-run", action="store_true", help="print sizes, memory and a time estimate; write nothing"
    )
    parser.add_argument(
        "--resume", help="'auto' (the newest complete checkpoint, or a fresh start) or a checkpoint dir"
    )
    parser.add_argument("--verify", action="store_true", help="rehash and scan every shard before training")
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"corral train: {exc}", file=sys.stderr)
        return 2
    d = None
    try:
        d = setup_distributed(cfg)
        trainer = Trainer(cfg, d, resume=args.resume, verify=args.verify, dry_run=args.dry_run)
        return trainer.run()
    except ConfigError as exc:
        print(f"corral train: {exc}", file=sys.stderr)
        return 2
    except (ShardError, ckpt.ResumeError, FileNotFoundError) as exc:
        print(f"corral train: {exc}", file=sys.stderr)
        return 1
    except NonFiniteLoss as exc:
        print(f"corral train: {exc}", file=sys.stderr)
        return EXIT_NONFINITE
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
