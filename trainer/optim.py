"""LLaMA's optimiser recipe (arXiv:2302.13971 §2.3): AdamW β = (0.9, 0.95), weight decay 0.1, gradient
clipping at 1.0, linear warmup then cosine decay to 10% of the peak learning rate.

Weight decay goes to 2-D weights only: every Linear (attention, feed-forward, output head) and, by default,
the token embedding — nanoGPT's `configure_optimizers` rule ("all weight tensors in matmuls + embeddings
decay, all biases and layernorms don't"), which is also GPT-3's. RMSNorm gains (1-D) never decay: shrinking
a gain towards 0 fights the normalisation it scales. `optim.decay_embeddings = false` exempts the embedding
(the OLMo / Gopher-style choice); a tied embedding is the output head and always decays.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from manifests.training import OptimSettings


def param_groups(model: nn.Module, settings: OptimSettings) -> list[dict]:
    """Two AdamW groups: decayed 2-D weights and undecayed ones, each parameter once (tied = shared)."""
    decay, no_decay, seen = [], [], set()
    tied = getattr(getattr(model, "config", None), "tie_embeddings", False)
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        is_embedding = name.endswith("tok_embeddings.weight") and not tied
        if p.dim() >= 2 and (settings.decay_embeddings or not is_embedding):
            decay.append(p)
        else:
            no_decay.append(p)
    return [
        {"params": decay, "weight_decay": settings.weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]


def make_optimizer(
    model: nn.Module, settings: OptimSettings, lr: float, device: torch.device
) -> torch.optim.AdamW:
    fused = settings.fused
    if fused is None:
        fused = device.type in ("cuda", "cpu")  # fused AdamW exists for both (CPU since torch 2.4)
    return torch.optim.AdamW(
        param_groups(model, settings),
        lr=lr,
        betas=(settings.beta1, settings.beta2),
        eps=settings.eps,
        fused=fused,
        foreach=None if fused else True,
    )


def lr_at(step: int, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """The learning rate of optimiser step `step` (0-based): linear warmup over `warmup` steps to `peak`,
    then a half cosine from `peak` down to `min_ratio × peak` at step `total`; flat after that."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return peak * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def clip_grad_norm(parameters: list[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """Global L2 norm of the gradients (before clipping), then scale them to at most `max_norm`.

    With FSDP2 the gradients are DTensor shards: their norm is a partial result, reduced across ranks by
    `full_tensor()` (torchtitan's `clip_grad_norm_` does the same)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads, 2.0, error_if_nonfinite=False, foreach=True)
    if hasattr(total, "full_tensor"):
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total, foreach=True)
    return total
