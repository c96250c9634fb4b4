"""Model benchmark (CPU): our Llama against HF LlamaForCausalLM with the same config and weights.

Prints ratio lines measured side by side in one run (runs interleaved so machine noise hits both):
  fwd_bwd_vs_hf: N.NNx              training tokens/s, ours / HF (goal >= 1.0)
  generate_kvcache_vs_nocache: N.NNx  greedy decode tokens/s with the KV cache / recomputing everything
  generate_vs_hf: N.NNx             our cached greedy decode / HF generate (cached), tokens/s
Needs transformers (a dev dependency). Usage: python benchmarks/model.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import Llama, LlamaConfig  # noqa: E402
from model.generate import generate  # noqa: E402
from model.hf import save_hf  # noqa: E402


def _time(fn, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return time.perf_counter() - start


def interleaved(fns: dict[str, object], reps: int, rounds: int) -> dict[str, float]:
    """Best-of-rounds seconds per call for each fn, alternating between them every round."""
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            best[k] = min(best[k], _time(fn, reps) / reps)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args(argv)
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(dim=256, n_layers=4, n_heads=8, n_kv_heads=4, vocab_size=4096, max_seq_len=1024)
    ours = Llama(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        save_hf(ours, Path(tmp) / "hf")
        hf = transformers.AutoModelForCausalLM.from_pretrained(
            Path(tmp) / "hf", dtype=torch.float32, attn_implementation="sdpa"
        )
    batch, seq = (2, 256) if args.quick else (4, 512)
    reps, rounds = (1, 2) if args.quick else (2, 4)
    x = torch.randint(0, cfg.vocab_size, (batch, seq))
    targets = torch.cat([x[:, 1:], torch.full((batch, 1), -100)], dim=1)

    def ours_step() -> None:
        ours.zero_grad(set_to_none=True)
        ours(x, targets).backward()

    def hf_step() -> None:
        hf.zero_grad(set_to_none=True)
        hf(input_ids=x, labels=x).loss.backward()

    ours.train()
    hf.train()
    ours_step(), hf_step()  # warmup
    t = interleaved({"ours": ours_step, "hf": hf_step}, reps, rounds)
    toks = batch * seq
    print(
        f"config: dim {cfg.dim}, layers {cfg.n_layers}, heads {cfg.n_heads}/{cfg.n_kv_heads} kv, vocab {cfg.vocab_size}, "
        f"batch {batch}x{seq}, threads {args.threads}"
    )
    print(f"fwd_bwd_tokens_per_s: ours {toks / t['ours']:.0f}, hf {toks / t['hf']:.0f}")
    print(f"fwd_bwd_vs_hf: {t['hf'] / t['ours']:.2f}x")

    ours.eval()
    hf.eval()
    prompt_len, new = (32, 32) if args.quick else (64, 96)
    prompts = torch.randint(0, cfg.vocab_size, (2, prompt_len))
    plist = prompts.tolist()

    def gen_cache() -> None:
        generate(ours, plist, new)

    def gen_nocache() -> None:
        generate(ours, plist, new, use_cache=False)

    def gen_hf() -> None:
        with torch.no_grad():
            hf.generate(
                input_ids=prompts, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
            )

    gen_cache(), gen_hf()
    g = interleaved({"cache": gen_cache, "nocache": gen_nocache, "hf": gen_hf}, 1, 2 if args.quick else 3)
    gt = 2 * new
    print(
        f"generate_tokens_per_s: cached {gt / g['cache']:.0f}, no cache {gt / g['nocache']:.0f}, hf {gt / g['hf']:.0f}"
    )
    print(f"generate_kvcache_vs_nocache: {g['nocache'] / g['cache']:.2f}x")
    print(f"generate_vs_hf: {g['hf'] / g['cache']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
