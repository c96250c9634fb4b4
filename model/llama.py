"""LLaMA (Touvron et al. 2023, arXiv:2302.13971 §2.2) in one readable file.

The architecture is exactly LLaMA-1 (arXiv:2302.13971 §2.2): pre-normalisation with RMSNorm (eps 1e-5,
the default of Meta's `ModelArgs`; the released `params.json` files set 1e-6, which a loaded checkpoint's
config carries), SwiGLU feed-forward with hidden size ``multiple_of * ceil(int(8 * dim / 3) / multiple_of)``,
rotary position embeddings (theta 10,000), no biases anywhere, untied input/output embeddings.
Grouped-query attention (``n_kv_heads``) and tied embeddings are optional extras so that LLaMA-2/3-style
and small HF checkpoints load too.

RoPE layout: we rotate the pair (i, i + head_dim/2) of every head ("rotate_half", the Hugging Face
layout), not Meta's adjacent pairs (2i, 2i+1). The two are the same model up to a fixed permutation of the
rows of wq/wk per head, so weights move to and from HF without any permutation (see ``model/hf.py``);
converting a Meta ``consolidated.*.pth`` would need ``permute_meta_to_hf`` below.

Initialisation (``Llama.init_weights``): every Linear and the embedding ~ N(0, 0.02); the two projections
that write into the residual stream (attention ``wo`` and feed-forward ``w2``) ~ N(0, 0.02 / sqrt(2 *
n_layers)) so the residual stream's variance does not grow with depth (GPT-2 / nanoGPT); RMSNorm gains = 1.

Presets. The paper's four (``llama-7b`` … ``llama-65b``, peak lr and batch from Table 2), and small ones
for small budgets. Parameter counts below are totals with the 32,000-token vocabulary (untied), as
``Llama.num_params()`` reports them; "non-emb" excludes the input embedding table (the output head stays: it is a matmul per token). The learning rates
follow the published trend for models of that size trained with AdamW at these batch sizes (GPT-3 Table 2.1:
125M 6e-4, 350M 3e-4, 1.3B 2e-4; Pythia: 70M 1e-3, 1B 3e-4): smaller models tolerate larger steps. The
batches are the smallest that keep gradient noise low for that size (the critical batch grows with model
size and loss; GPT-3 used 0.5M tokens up to 350M, 1M at 1.3B) while still fitting a few GPUs.

| preset       | dim  | layers | heads | ffn    | params | non-emb | peak lr | batch (tokens)     |
|--------------|------|--------|-------|--------|--------|---------|---------|--------------------|
| llama-10m    | 128  | 6      | 4     | 512    | 9.8M   | 5.7M    | 2.0e-3  | 131,072 (64×2048)  |
| llama-60m    | 512  | 8      | 8     | 1536   | 60.0M  | 43.7M   | 1.0e-3  | 262,144 (128×2048) |
| llama-125m   | 768  | 12     | 12    | 2048   | 134.1M | 109.5M  | 6.0e-4  | 524,288 (256×2048) |
| llama-350m   | 1024 | 24     | 16    | 2816   | 373.9M | 341.1M  | 3.0e-4  | 524,288 (256×2048) |
| llama-1b     | 2048 | 18     | 16    | 5632   | 1.06B  | 0.99B   | 3.0e-4  | 1,048,576 (512×2048)|
| llama-7b     | 4096 | 32     | 32    | 11008  | 6.74B  | 6.61B   | 3.0e-4  | 4M (2048×2048)     |
| llama-13b    | 5120 | 40     | 40    | 13824  | 13.0B  | 12.85B  | 3.0e-4  | 4M                 |
| llama-33b    | 6656 | 60     | 52    | 17920  | 32.5B  | 32.3B   | 1.5e-4  | 4M                 |
| llama-65b    | 8192 | 80     | 64    | 22016  | 65.3B  | 65.0B   | 1.5e-4  | 4M                 |
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LlamaConfig:
    """Architecture hyper-parameters; validated on construction so a bad config fails before any allocation."""

    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int | None = None  # None = n_heads (multi-head attention, as in LLaMA-1)
    vocab_size: int = 32000
    multiple_of: int = 256  # SwiGLU hidden size is rounded up to a multiple of this
    # None = LLaMA's 256·ceil(int(8d/3)/256) rule; set explicitly to load other checkpoints
    ffn_hidden: int | None = None
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    max_seq_len: int = 2048
    tie_embeddings: bool = False
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"LlamaConfig.{name} must be a positive integer, got {value!r}")
        if self.dim % self.n_heads != 0:
            raise ValueError(
                f"LlamaConfig: dim ({self.dim}) is not divisible by n_heads ({self.n_heads}); "
                "each head needs dim / n_heads channels"
            )
        if (self.dim // self.n_heads) % 2 != 0:
            raise ValueError(
                f"LlamaConfig: head dim {self.dim // self.n_heads} (dim / n_heads) must be even for RoPE"
            )
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(
                f"LlamaConfig: n_heads ({self.n_heads}) is not divisible by n_kv_heads ({self.n_kv_heads}); "
                "grouped-query attention shares each key/value head among n_heads / n_kv_heads query heads"
            )
        if self.ffn_hidden is None:
            self.ffn_hidden = self.multiple_of * math.ceil(int(8 * self.dim / 3) / self.multiple_of)
        elif self.ffn_hidden <= 0:
            raise ValueError(f"LlamaConfig.ffn_hidden must be positive, got {self.ffn_hidden}")
        if not self.norm_eps > 0 or not self.rope_theta > 0:
            raise ValueError(
                f"LlamaConfig: norm_eps and rope_theta must be > 0 ({self.norm_eps}, {self.rope_theta})"
            )

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LlamaConfig:
        """A named preset (see the module docstring), with any field overridden (e.g. ``vocab_size``)."""
        if name not in PRESETS:
            raise ValueError(f"unknown LLaMA preset {name!r}; known presets: {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name].arch, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LlamaConfig:
        """Inverse of ``to_dict``; unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"LlamaConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)


@dataclass(frozen=True)
class Preset:
    """A preset's architecture plus the training recipe it was sized for (peak lr, batch in tokens)."""

    arch: dict[str, Any]
    peak_lr: float
    batch_tokens: int
    seq_len: int = 2048


PRESETS: dict[str, Preset] = {
    "llama-10m": Preset(dict(dim=128, n_layers=6, n_heads=4), 2.0e-3, 64 * 2048),
    "llama-60m": Preset(dict(dim=512, n_layers=8, n_heads=8), 1.0e-3, 128 * 2048),
    "llama-125m": Preset(dict(dim=768, n_layers=12, n_heads=12), 6.0e-4, 256 * 2048),
    "llama-350m": Preset(dict(dim=1024, n_layers=24, n_heads=16), 3.0e-4, 256 * 2048),
    "llama-1b": Preset(dict(dim=2048, n_layers=18, n_heads=16), 3.0e-4, 512 * 2048),
    "llama-7b": Preset(dict(dim=4096, n_layers=32, n_heads=32), 3.0e-4, 2048 * 2048),
    "llama-13b": Preset(dict(dim=5120, n_layers=40, n_heads=40), 3.0e-4, 2048 * 2048),
    "llama-33b": Preset(dict(dim=6656, n_layers=60, n_heads=52), 1.5e-4, 2048 * 2048),
    "llama-65b": Preset(dict(dim=8192, n_layers=80, n_heads=64), 1.5e-4, 2048 * 2048),
}


def permute_meta_to_hf(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder wq/wk rows from Meta's adjacent-pair RoPE layout to the rotate_half layout used here (HF `convert_llama_weights_to_hf.permute`)."""
    out_features, in_features = w.shape
    head_dim = out_features // n_heads
    return w.view(n_heads, head_dim // 2, 2, in_features).transpose(1, 2).reshape(out_features, in_features)


class RMSNorm(nn.Module):
    """RMSNorm: normalise in fp32, cast back to the input dtype, then scale (Meta and HF both do this)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x) * self.weight


def rope_tables(head_dim: int, max_seq_len: int, theta: float, device: torch.device | None = None):
    """cos/sin tables of shape (max_seq_len, head_dim) in fp32, duplicated over the two halves."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    t = torch.arange(max_seq_len, dtype=torch.float32, device=device)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (i, i + d/2) pairs of x (B, H, T, D) in fp32, then cast back (accurate under bf16 training)."""
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    rotated = torch.cat((-x2, x1), dim=-1)
    return (xf * cos + rotated * sin).type_as(x)


class KVCache:
    """Pre-allocated keys/values for every layer, plus which cached positions are real (not left padding)."""

    def __init__(
        self, config: LlamaConfig, batch_size: int, max_len: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        if max_len > config.max_seq_len:
            raise ValueError(f"KV cache length {max_len} exceeds max_seq_len {config.max_seq_len}")
        shape = (batch_size, config.n_kv_heads, max_len, config.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layers)]
        self.max_len = max_len
        self.length = 0  # number of positions filled, the same for every row

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store this step's k/v for ``layer`` and return all keys/values so far."""
        end = self.length + k.shape[2]
        self.k[layer][:, :, self.length : end] = k
        self.v[layer][:, :, self.length : end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer_id: int) -> None:
        super().__init__()
        self.layer_id = layer_id
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None,
    ) -> torch.Tensor:
        bsz, seqlen, _ = x.shape
        q = self.wq(x).view(bsz, seqlen, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.layer_id, k, v)
        # No mask and no cache = plain causal training: is_causal lets SDPA pick flash / efficient kernels.
        causal = mask is None and cache is None
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=self.n_kv_heads != self.n_heads
        )
        return self.wo(y.transpose(1, 2).reshape(bsz, seqlen, self.n_heads * self.head_dim))


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=False)  # gate
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_hidden, bias=False)  # up
        self.w2 = nn.Linear(cfg.ffn_hidden, cfg.dim, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer_id: int) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg, layer_id)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None,
    ) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, cache)
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    """The LLaMA decoder. ``forward(tokens)`` gives logits; ``forward(tokens, targets)`` gives the mean loss."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(Block(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # RoPE tables are derived state: not saved, rebuilt by init_rope() (e.g. after to_empty()).
        self.register_buffer("rope_cos", torch.empty(config.max_seq_len, config.head_dim), persistent=False)
        self.register_buffer("rope_sin", torch.empty(config.max_seq_len, config.head_dim), persistent=False)
        self.init_weights()

    # ----------------------------------------------------------------------------------------------------
    # initialisation and bookkeeping

    def init_rope(self) -> None:
        """(Re)compute the RoPE tables on the buffers' device, in fp32."""
        cos, sin = rope_tables(
            self.config.head_dim, self.config.max_seq_len, self.config.rope_theta, self.rope_cos.device
        )
        with torch.no_grad():
            self.rope_cos = cos
            self.rope_sin = sin

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> Llama:
        """Keep the RoPE tables fp32 and exact through ``.to(bfloat16)``, ``.half()`` or ``to_empty()``."""
        super()._apply(fn, recurse)
        self.init_rope()  # recomputed in fp32 on the (possibly new) device; cheap
        return self

    @torch.no_grad()
    def init_weights(self) -> None:
        """N(0, std) for matrices, std / sqrt(2 * n_layers) for residual projections, ones for norms.

        Safe to call on the ``meta`` device (allocates nothing) and after ``to_empty(device=...)``.
        """
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layers)
        nn.init.normal_(self.tok_embeddings.weight, mean=0.0, std=std)
        if not self.config.tie_embeddings:
            nn.init.normal_(self.output.weight, mean=0.0, std=std)
        for layer in self.layers:
            for lin in (layer.attention.wq, layer.attention.wk, layer.attention.wv):
                nn.init.normal_(lin.weight, mean=0.0, std=std)
            nn.init.normal_(layer.feed_forward.w1.weight, mean=0.0, std=std)
            nn.init.normal_(layer.feed_forward.w3.weight, mean=0.0, std=std)
            nn.init.normal_(layer.attention.wo.weight, mean=0.0, std=residual_std)
            nn.init.normal_(layer.feed_forward.w2.weight, mean=0.0, std=residual_std)
            nn.init.ones_(layer.attention_norm.weight)
            nn.init.ones_(layer.ffn_norm.weight)
        nn.init.ones_(self.norm.weight)
        self.init_rope()

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameter count (shared tensors once). ``non_embedding`` drops the input lookup table, unless it is
        tied to the output head (then the weight does a matmul per token and stays counted)."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding and not self.config.tie_embeddings:
            n -= self.tok_embeddings.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token (the nanoGPT / torchtitan MFU convention): 6·N_non-embedding + 12·L·d·T."""
        cfg = self.config
        return 6 * self.num_params(non_embedding=True) + 12 * cfg.n_layers * cfg.dim * seq_len

    @classmethod
    def from_state_dict(
        cls, config: LlamaConfig, state_dict: dict[str, torch.Tensor], *, where: str = "state dict"
    ) -> Llama:
        """Build a model that adopts ``state_dict``'s tensors (no random init, no extra copy).

        Missing or unexpected keys and shape mismatches are errors that name the key and ``where``.
        """
        with torch.device("meta"):
            model = cls(config)
        expected = {k: v.shape for k, v in model.state_dict().items()}
        sd = dict(state_dict)
        if config.tie_embeddings:
            if "output.weight" in sd and "tok_embeddings.weight" in sd:
                if not torch.equal(sd["output.weight"], sd["tok_embeddings.weight"]):
                    raise ValueError(
                        f"{where}: tie_embeddings is set but output and embedding weights differ"
                    )
            sd["output.weight"] = sd.get("tok_embeddings.weight", sd.get("output.weight"))
        missing = sorted(set(expected) - set(sd))
        unexpected = sorted(set(sd) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{where}: missing weights {missing[:8]}, unexpected weights {unexpected[:8]}")
        for key, shape in expected.items():
            if tuple(sd[key].shape) != tuple(shape):
                raise ValueError(
                    f"{where}: weight {key} has shape {tuple(sd[key].shape)}, expected {tuple(shape)}"
                )
        model.load_state_dict(sd, strict=True, assign=True)
        if config.tie_embeddings:
            model.output.weight = model.tok_embeddings.weight
        device = model.tok_embeddings.weight.device
        model.rope_cos = torch.empty(config.max_seq_len, config.head_dim, device=device)
        model.rope_sin = torch.empty(config.max_seq_len, config.head_dim, device=device)
        model.init_rope()
        return model

    # ----------------------------------------------------------------------------------------------------
    # forward

    def forward(
        self,
        tokens: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B, T, vocab), or with ``targets`` (B, T) the mean cross-entropy (targets -100 ignored).

        ``cache`` appends this step to a KVCache (generation). ``attention_mask`` (B, past + T), 1 = real
        token and 0 = left padding, covers the cached positions and these ones; positions are counted from
        each row's first real token, so a left-padded row computes exactly what it would alone.
        """
        bsz, seqlen = tokens.shape
        past = cache.length if cache is not None else 0
        total = past + seqlen
        if total > self.config.max_seq_len:
            raise ValueError(
                f"sequence length {total} (cached {past} + new {seqlen}) exceeds max_seq_len {self.config.max_seq_len}"
            )
        if cache is not None and total > cache.max_len:
            raise ValueError(f"sequence length {total} exceeds the KV cache length {cache.max_len}")

        mask = None
        if attention_mask is None:
            cos, sin = self.rope_cos[past:total], self.rope_sin[past:total]  # (T, D), broadcast over B, H
            if cache is not None and seqlen > 1:
                q_pos = torch.arange(past, total, device=tokens.device)[:, None]
                mask = torch.arange(total, device=tokens.device)[None, :] <= q_pos
        else:
            if attention_mask.shape != (bsz, total):
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}, expected {(bsz, total)}"
                )
            valid = attention_mask.bool()
            positions = (valid.long().cumsum(-1) - 1).clamp(min=0)[:, past:]  # (B, T)
            cos, sin = self.rope_cos[positions].unsqueeze(1), self.rope_sin[positions].unsqueeze(1)
            q_idx = torch.arange(past, total, device=tokens.device)[:, None]
            k_idx = torch.arange(total, device=tokens.device)[None, :]
            # causal, real keys only; a padding query sees itself so its softmax row is never empty (NaN).
            mask = (k_idx <= q_idx) & (valid[:, None, :] | (k_idx == q_idx))
            mask = mask.unsqueeze(1)  # (B, 1, T, past + T)

        h = self.tok_embeddings(tokens)
        for layer in self.layers:
            h = layer(h, cos, sin, mask, cache)
        if cache is not None:
            cache.length = total
        logits = self.output(self.norm(h))
        if targets is None:
            return logits
        return F.cross_entropy(
            logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100
        )
