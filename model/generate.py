"""Text generation with a KV cache: greedy, temperature and top-p sampling, EOS stop, batched prompts.

Prompts of different lengths are left-padded into one batch; the attention mask hides the padding and
positions are counted from each row's first real token, so every row decodes exactly as it would alone.
Also ``corral generate --checkpoint DIR --prompt TEXT``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from model.llama import KVCache, Llama


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One token per row from (B, vocab) logits: argmax when temperature is 0, else nucleus sampling."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # drop a token when the tokens ranked above it already hold top_p of the mass (the first always stays)
        sorted_p = sorted_p.masked_fill(sorted_p.cumsum(dim=-1) - sorted_p > top_p, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_p)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(
    model: Llama,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    top_p: float = 1.0,
    eos_id: int | None = None,
    pad_id: int = 0,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> list[list[int]]:
    """New tokens for each prompt (up to and including ``eos_id`` when it is produced).

    ``use_cache=False`` recomputes the whole sequence every step (for checking the cache and benchmarks).
    """
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("generate: every prompt needs at least one token")
    if max_new_tokens < 0 or temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(
            f"generate: need max_new_tokens >= 0, temperature >= 0, 0 < top_p <= 1 "
            f"(got {max_new_tokens}, {temperature}, {top_p})"
        )
    vocab = model.config.vocab_size
    for i, p in enumerate(prompts):
        bad = [t for t in p if not 0 <= t < vocab]
        if bad:
            raise ValueError(f"generate: prompt {i} has token ids outside [0, {vocab}): {bad[:5]}")
    longest = max(len(p) for p in prompts)
    total = longest + max_new_tokens
    if total > model.config.max_seq_len:
        raise ValueError(
            f"generate: prompt ({longest}) + max_new_tokens ({max_new_tokens}) = {total} exceeds "
            f"max_seq_len {model.config.max_seq_len}"
        )
    device = model.tok_embeddings.weight.device
    bsz = len(prompts)
    tokens = torch.full((bsz, longest), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((bsz, longest), dtype=torch.long, device=device)
    for i, p in enumerate(prompts):
        tokens[i, longest - len(p) :] = torch.tensor(list(p), dtype=torch.long, device=device)
        mask[i, longest - len(p) :] = 1
    padded = bool((mask == 0).any())
    out: list[list[int]] = [[] for _ in range(bsz)]
    if max_new_tokens == 0:
        return out

    cache = (
        KVCache(model.config, bsz, total, device, model.tok_embeddings.weight.dtype) if use_cache else None
    )
    logits = model(tokens, cache=cache, attention_mask=mask if padded else None)[:, -1]
    done = torch.zeros(bsz, dtype=torch.bool, device=device)
    for step in range(max_new_tokens):
        nxt = sample_next(logits, temperature, top_p, generator)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        for i in torch.nonzero(~done).flatten().tolist():
            out[i].append(int(nxt[i]))
        if eos_id is not None:
            done |= nxt == eos_id
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones((bsz, 1), dtype=mask.dtype, device=device)], dim=1)
        if cache is not None:
            logits = model(nxt[:, None], cache=cache, attention_mask=mask if padded else None)[:, -1]
        else:
            tokens = torch.cat([tokens, nxt[:, None]], dim=1)
            logits = model(tokens, attention_mask=mask if padded else None)[:, -1]
    return out


# ------------------------------------------------------------------------------------------------------
# CLI


def load_any(checkpoint: Path, device: str, dtype: torch.dtype | None) -> Llama:
    """A corral model directory or a HF LLaMA directory, told apart by config.json."""
    from model.hf import load_hf
    from model.io import is_hf_config, load_model, read_json_config

    _, config = read_json_config(checkpoint)
    is_hf = is_hf_config(config)
    if is_hf:
        return load_hf(checkpoint, device=device, dtype=dtype)
    return load_model(checkpoint, device=device, dtype=dtype)


def _parse_ids(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--prompt-ids must be comma-separated integers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    """``corral generate --checkpoint DIR --prompt TEXT [...]``: print completions (or ids)."""
    parser = argparse.ArgumentParser(
        prog="corral generate", description="Generate text with a LLaMA checkpoint."
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="corral model dir or HF LLaMA dir")
    parser.add_argument("--prompt", action="append", default=[], help="text prompt (repeat for a batch)")
    parser.add_argument("--prompt-ids", action="append", default=[], help="token ids '1,2,3' (repeatable)")
    parser.add_argument(
        "--tokenizer", type=Path, help="SentencePiece .model (default: <checkpoint>/tokenizer.model)"
    )
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.6, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], help="cast weights")
    args = parser.parse_args(argv)
    if bool(args.prompt) == bool(args.prompt_ids):
        parser.error("give either --prompt TEXT or --prompt-ids 1,2,3 (not both, not neither)")
    try:
        sp = None
        tok_path = args.tokenizer or args.checkpoint / "tokenizer.model"
        if args.tokenizer is not None and not args.tokenizer.is_file():
            raise FileNotFoundError(f"tokenizer not found: {args.tokenizer}")
        if args.prompt:
            if not tok_path.is_file():
                raise FileNotFoundError(
                    f"no tokenizer at {tok_path}: pass --tokenizer PATH, or --prompt-ids to work in token ids"
                )
            import sentencepiece as spm

            sp = spm.SentencePieceProcessor(model_file=str(tok_path))
        dtype = getattr(torch, args.dtype) if args.dtype else None
        model = load_any(args.checkpoint, args.device, dtype).eval()
        if sp is not None and sp.vocab_size() > model.config.vocab_size:
            raise ValueError(
                f"tokenizer {tok_path} has {sp.vocab_size()} pieces but the model only {model.config.vocab_size}"
            )
        if sp is not None:
            prompts = [([sp.bos_id()] if sp.bos_id() >= 0 else []) + sp.encode(p) for p in args.prompt]
            eos_id = sp.eos_id() if sp.eos_id() >= 0 else None
        else:
            prompts = [_parse_ids(p) for p in args.prompt_ids]
            eos_id = None
        gen = torch.Generator(device=args.device).manual_seed(args.seed)
        outs = generate(
            model,
            prompts,
            args.max_new_tokens,
            temperature=args.temperature,
            top_p=args.top_p,
            eos_id=eos_id,
            generator=gen,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"corral generate: error: {exc}", file=sys.stderr)
        return 1
    for i, new in enumerate(outs):
        if sp is None:
            print(",".join(str(t) for t in new))
        else:
            text = sp.decode([t for t in new if t != eos_id])
            if i:
                print()
            print(args.prompt[i] + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
