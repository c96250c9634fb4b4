"""Trainer benchmark (CPU): the loader, `corral train`, a minimal hand loop and `transformers.Trainer`.

Prints ratio lines measured side by side in one run (rounds alternate so machine noise hits every side):
  loader_vs_trainer: N.Nx        tokens/s the loader delivers / tokens/s `corral train` consumes (goal >= 50)
  train_vs_minimal_loop: N.NNx   `corral train` / a hand loop (model, AdamW, random batches, nothing else)
                                 with the same model, batch and dtype (goal >= 0.95)
  train_vs_hf_trainer: N.NNx     `corral train` / `transformers.Trainer` on LlamaForCausalLM of the same
                                 size, batch, dtype and optimiser (goal >= 1.0)
The model is the llama-10m preset (vocabulary 32,000) at seq 256, micro-batch 8, bf16 autocast, on
synthetic shards. Each side's throughput is its best step after the first `warmup` ones, by wall clock
(`corral train`: between consecutive `elapsed_s` of metrics.jsonl, so logging and loading count): on a
machine shared with other work, the best step is the one least disturbed, for every side alike.
Usage: python -m benchmarks.trainer [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manifests.shards import ShardManifest  # noqa: E402
from manifests.training import dump_toml  # noqa: E402
from model import Llama, LlamaConfig  # noqa: E402
from trainer.data import BatchPlan, PackedSequences, SequenceOrder, StepSampler, TokenStream, make_loader  # noqa: E402
from trainer.train import main as train_main  # noqa: E402

VOCAB, SEQ, MICRO = 32000, 256, 8


def make_shards(folder: Path, tokens: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from trainer_fixture import shards_from_docs

    rng = np.random.default_rng(0)
    docs, total = [], 0
    while total < tokens:
        n = int(rng.integers(50, 2000))
        docs.append((("web", "code")[len(docs) % 2], np.append(rng.integers(3, VOCAB, n), 2)))
        total += n + 1
    shards_from_docs(folder, docs, ["web", "code"], VOCAB, "0" * 64, files=4, validation_docs=4)


def corral_config(tmp: Path, run: str, steps: int, threads: int, workers: int) -> Path:
    cfg = {
        "run_dir": str(tmp / run),
        "model": {"preset": "llama-10m"},
        "data": {"shards": str(tmp / "shards"), "seq_len": SEQ, "num_workers": workers},
        "train": {
            "steps": steps,
            "batch_tokens": MICRO * SEQ,
            "micro_batch": MICRO,
            "dtype": "bf16",
            "threads": threads,
        },
        "optim": {"warmup_steps": 2},
        "checkpoint": {"every": 0, "export": False},
        "log": {"every": 1, "progress": False, "tensorboard": False},
        "eval": {"every": 0, "sequences": 0, "samples": 0},
    }
    path = tmp / f"{run}.toml"
    path.write_text(dump_toml(cfg))
    return path


def run_corral(tmp: Path, run: str, steps: int, warmup: int, threads: int, workers: int) -> float:
    """Best per-step tokens/s of `corral train` after `warmup` steps (wall clock between metric lines)."""
    import contextlib
    import io

    config = corral_config(tmp, run, steps, threads, workers)
    with contextlib.redirect_stdout(io.StringIO()):
        rc = train_main(["--config", str(config)])
    if rc != 0:
        raise SystemExit(f"corral train failed ({rc})")
    records = [json.loads(line) for line in (tmp / run / "metrics.jsonl").read_text().splitlines()]
    pairs = zip(records[warmup - 1 :], records[warmup:], strict=False)
    return max((b["tokens"] - a["tokens"]) / (b["elapsed_s"] - a["elapsed_s"]) for a, b in pairs)


def run_minimal(steps: int, warmup: int) -> float:
    """The hand loop: same model, AdamW settings, batch and dtype; random token batches, nothing else."""
    torch.manual_seed(0)
    model = Llama(LlamaConfig.from_preset("llama-10m", vocab_size=VOCAB, max_seq_len=SEQ))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    best = 0.0
    for i in range(steps):
        start = time.perf_counter()
        batch = torch.randint(0, VOCAB, (MICRO, SEQ + 1))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= warmup:
            best = max(best, MICRO * SEQ / (time.perf_counter() - start))
    return best


def run_hf(steps: int, warmup: int, tmp: Path) -> float:
    """transformers.Trainer on LlamaForCausalLM of the llama-10m shape, same batch, bf16, AdamW, clipping."""
    import transformers

    cfg = LlamaConfig.from_preset("llama-10m", vocab_size=VOCAB, max_seq_len=SEQ)
    hf_cfg = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=cfg.dim,
        intermediate_size=cfg.ffn_hidden,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        max_position_embeddings=SEQ,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(hf_cfg)
    data = torch.randint(0, VOCAB, (steps * MICRO, SEQ + 1))

    class Data(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(data)

        def __getitem__(self, i: int) -> dict:
            return {"input_ids": data[i, :-1], "labels": data[i, :-1]}

    stamps: list[float] = []

    class Clock(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            stamps.append(time.perf_counter())

    args = transformers.TrainingArguments(
        output_dir=str(tmp / "hf"),
        per_device_train_batch_size=MICRO,
        max_steps=steps,
        learning_rate=2e-3,
        weight_decay=0.1,
        adam_beta1=0.9,
        adam_beta2=0.95,
        max_grad_norm=1.0,
        warmup_steps=2,
        lr_scheduler_type="cosine",
        bf16=True,
        use_cpu=True,
        optim="adamw_torch_fused",
        logging_steps=10**9,
        save_strategy="no",
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Data(), callbacks=[Clock()])
    trainer.train()
    return max(MICRO * SEQ / (b - a) for a, b in zip(stamps[warmup - 1 :], stamps[warmup:], strict=False))


def run_loader(tmp: Path, steps: int, workers: int) -> float:
    """tokens/s the DataLoader delivers with the trainer's sampler (nothing else consumes them)."""
    folder = str(tmp / "shards")
    manifest = ShardManifest.read_from(folder)
    from manifests.shards import manifest_sha256

    stream = TokenStream(folder, manifest.train, manifest.source_names)
    data = PackedSequences(stream, SEQ, VOCAB)
    plan = BatchPlan.make(MICRO * SEQ, SEQ, MICRO, 1)
    order = SequenceOrder(len(data), manifest_sha256(folder), 0, SEQ)
    loader = make_loader(data, StepSampler(order, plan, 0, 0, steps), workers)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    n = 0
    for batch in it:
        n += batch["tokens"].shape[0] * SEQ
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (a smoke run)")
    # one thread per side is the steadiest measure on a machine shared with other work
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of corral train")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps, warmup, rounds = (6, 2, 1) if args.quick else (12, 3, 3)
    best = {"loader": 0.0, "corral": 0.0, "minimal": 0.0, "hf": 0.0}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_shards(tmp / "shards", 3_000_000)
        sides = {
            "minimal": lambda r: run_minimal(steps, warmup),
            "corral": lambda r: run_corral(tmp, f"run{r}", steps, warmup, args.threads, args.workers),
            "hf": lambda r: run_hf(steps, warmup, tmp),
            "loader": lambda r: run_loader(tmp, 400, args.workers),
        }
        for r in range(rounds):  # the order alternates, so no side always runs first (or last)
            for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
                best[name] = max(best[name], sides[name](r))
    for k, v in best.items():
        print(f"# {k}: {v:,.0f} tokens/s", file=sys.stderr)
    print(f"loader_vs_trainer: {best['loader'] / best['corral']:.1f}x")
    print(f"train_vs_minimal_loop: {best['corral'] / best['minimal']:.2f}x")
    print(f"train_vs_hf_trainer: {best['corral'] / best['hf']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
