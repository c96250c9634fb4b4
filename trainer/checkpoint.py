"""Checkpoints that survive preemption and load at any world size.

`run_dir/checkpoints/step-NNNNNNNN/` holds:
- the model and AdamW state through `torch.distributed.checkpoint` (DCP: each rank writes its own shards
  plus one `.metadata`; loading reshards, so a checkpoint of 2 FSDP2 ranks loads into 1 process or 4 DDP
  ranks), with the state dicts from `torch.distributed.checkpoint.state_dict` (plain FQNs whatever the
  wrapper: DDP, FSDP2, compiled blocks);
- `trainer_state.pt` (`torch.save` of plain values, read back with `weights_only=True`): step, data position
  (global sequences consumed), the partial log interval, token counts per source, device-seconds, the shard
  manifest's and tokenizer's sha256, the config as TOML;
- `rng/rank-NNNNN.pt`: each rank's torch / CUDA / numpy / Python RNG states;
- `config.toml`, and `complete.json` written last.

It is assembled in `checkpoints/.tmp-step-NNNNNNNN/` and renamed into place once every rank has written
its part, so a kill mid-save leaves no directory that `--resume auto` would take: it takes the newest
`step-*` holding `complete.json`. The newest `keep` are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import warnings
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

CHECKPOINTS = "checkpoints"
COMPLETE = "complete.json"
TRAINER_STATE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed (missing, incomplete, or from an incompatible run)."""


def step_dir(run_dir: str, step: int) -> str:
    return os.path.join(run_dir, CHECKPOINTS, f"step-{step:08d}")


def complete_checkpoints(run_dir: str) -> list[tuple[int, str]]:
    """(step, path) of the complete checkpoints in `run_dir`, oldest first."""
    root = os.path.join(run_dir, CHECKPOINTS)
    out = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        m = _STEP_DIR.match(name)
        if m and os.path.isfile(os.path.join(root, name, COMPLETE)):
            out.append((int(m.group(1)), os.path.join(root, name)))
    return out


def latest(run_dir: str) -> str | None:
    found = complete_checkpoints(run_dir)
    return found[-1][1] if found else None


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def save(
    run_dir: str,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_state: dict[str, Any],
    config_toml: str,
    keep: int,
) -> str:
    """Write checkpoint `step` (every rank calls this); returns its directory."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    final = step_dir(run_dir, step)
    tmp = os.path.join(run_dir, CHECKPOINTS, f".tmp-step-{step:08d}")
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(os.path.join(tmp, "rng"))
    _barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    with warnings.catch_warnings():  # one process without a process group is a supported case, not news
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
    torch.save(rng_state(), os.path.join(tmp, "rng", f"rank-{rank:05d}.pt"))
    _barrier()
    if rank == 0:
        torch.save(trainer_state, os.path.join(tmp, TRAINER_STATE))
        with open(os.path.join(tmp, "config.toml"), "w", encoding="utf-8") as f:
            f.write(config_toml)
        world = dist.get_world_size() if dist.is_initialized() else 1
        with open(os.path.join(tmp, COMPLETE), "w", encoding="utf-8") as f:
            json.dump({"step": step, "world_size": world, "torch": torch.__version__}, f)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):  # the same step saved again (e.g. a signal right after a periodic save)
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in complete_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def read_trainer_state(path: str) -> dict[str, Any]:
    if not os.path.isfile(os.path.join(path, COMPLETE)):
        raise ResumeError(f"{path}: not a complete checkpoint (no {COMPLETE})")
    return torch.load(os.path.join(path, TRAINER_STATE), weights_only=True)


def load(path: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Load model and optimiser state (resharded to this world size) and this rank's RNG states."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(state, checkpoint_id=path)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    rank = dist.get_rank() if dist.is_initialized() else 0
    own = os.path.join(path, "rng", f"rank-{rank:05d}.pt")
    # A different world size has no file for the new ranks; nothing in training draws random numbers (the
    # data order is a pure function), so rank 0's states are as good as any.
    rng_file = own if os.path.exists(own) else os.path.join(path, "rng", "rank-00000.pt")
    set_rng_state(torch.load(rng_file, weights_only=True))
