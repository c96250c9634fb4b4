"""The streaming trainer: config, data order, shard checks, the loop's bookkeeping, resume and parallelism.

Tiny models on synthetic shards (random token ids with a repeated motif per source) for everything about
order and arithmetic; a small SentencePiece model on real-looking text for the overfit test; the real
samples for the realdata test. Runs that must be isolated (signals, torchrun) are subprocesses.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import manifests.shards as shard_format
from manifests.shards import ShardManifest, manifest_sha256, write_shard
from manifests.training import ConfigError, load_config
from trainer.data import (
    BatchPlan,
    EpochPermutation,
    PackedSequences,
    SequenceOrder,
    StepSampler,
    TokenStream,
    batch_fingerprint,
    make_loader,
)
from trainer.optim import lr_at, param_groups
from trainer.train import main as train_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trainer_fixture import (  # noqa: E402
    sentences,
    shards_from_docs,
    synthetic_docs,
    synthetic_shards,
    text_shards,
    train_sentencepiece,
    write_config,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def run_cli(*args: str, env: dict | None = None, torchrun: int = 0) -> subprocess.CompletedProcess:
    launcher = (
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(torchrun)]
        if torchrun
        else [sys.executable]
    )
    cmd = [*launcher, "-m", "trainer.train", *args]
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=600)


# ----------------------------------------------------------------------------------------------------------
# config


def test_config_overrides_paths_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = tmp_path / "conf" / "c.toml"
    cfg_file.parent.mkdir()
    cfg_file.write_text(
        'run_dir = "runs/demo"\n[data]\nshards = "../shards"\nseq_len = 256\n[train]\nsteps = 10\n'
    )
    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        cfg_file, ["--train.steps", "20", "--optim.lr=3e-4", "--train.dtype", "fp32", "--run_dir", "r"]
    )
    assert cfg.train.steps == 20 and cfg.optim.lr == 3e-4 and cfg.train.dtype == "fp32"
    assert cfg.run_dir == str(tmp_path / "r")  # a command-line path: relative to the current directory
    assert cfg.data.shards == str(tmp_path / "shards")  # a path in the file: relative to the file
    assert cfg.optim.beta2 == 0.95 and cfg.optim.weight_decay == 0.1 and cfg.optim.warmup_steps == 2000
    with pytest.raises(ConfigError, match=r"c\.toml: train\.micro_btach: unknown key"):
        load_config(cfg_file, ["--train.micro_btach", "4"])
    with pytest.raises(ConfigError, match=r"train\.dtype: Input should be 'fp32' or 'bf16'"):
        load_config(cfg_file, ["--train.dtype", "fp16"])
    with pytest.raises(ConfigError, match="exactly one of train.steps and train.tokens"):
        load_config(cfg_file, ["--train.tokens", "1000"])
    with pytest.raises(ConfigError, match="optim.lr: missing value"):
        load_config(cfg_file, ["--optim.lr"])
    # the written config reads back as the same config
    again = tmp_path / "again.toml"
    again.write_text(cfg.to_toml())
    assert load_config(again).model_dump(exclude={"path"}) == cfg.model_dump(exclude={"path"})


def test_cli_reports_config_errors_with_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_shards(tmp_path / "shards")
    cfg = write_config(tmp_path / "c.toml", tmp_path / "shards", tmp_path / "run")
    assert train_main(["--config", str(cfg), "--train.batch_tokens", "100"]) == 2
    assert "train.batch_tokens" in capsys.readouterr().err
    assert train_main(["--config", str(cfg), "--model.preset", "llama-3b"]) == 2
    assert "model.preset: unknown LLaMA preset 'llama-3b'" in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


# ----------------------------------------------------------------------------------------------------------
# the order


@pytest.mark.parametrize("n", [1, 2, 3, 7, 64, 1000, 4097])
def test_epoch_permutation_is_a_bijection(n: int) -> None:
    perm = EpochPermutation(n, "key")
    out = perm(np.arange(n))
    assert sorted(out.tolist()) == list(range(n))
    assert np.array_equal(perm(np.arange(n)[::-1]), out[::-1])  # per index, not a sequence


def test_order_is_a_pure_function_of_manifest_seed_epoch_and_seq_len() -> None:
    n = 5000
    base = SequenceOrder(n, "a" * 64, 0, 256).indices(0, n)
    assert np.array_equal(base, SequenceOrder(n, "a" * 64, 0, 256).indices(0, n))
    assert abs(np.corrcoef(base, np.arange(n))[0, 1]) < 0.05  # shuffled, not a rotation of the identity
    for other in (
        SequenceOrder(n, "b" * 64, 0, 256),
        SequenceOrder(n, "a" * 64, 1, 256),
        SequenceOrder(n, "a" * 64, 0, 512),
    ):
        assert (other.indices(0, n) == base).mean() < 0.01
    two_epochs = SequenceOrder(n, "a" * 64, 0, 256).indices(0, 2 * n)
    assert np.array_equal(two_epochs[:n], base) and sorted(two_epochs[n:].tolist()) == list(range(n))
    assert (two_epochs[n:] == base).mean() < 0.01  # each epoch its own permutation


def test_token_stream_reads_across_batches_and_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard_format, "MAX_BATCH_TOKENS", 300)  # several record batches per file
    docs = synthetic_docs(120, 256, names=("a", "b", "c"))
    manifest = shards_from_docs(tmp_path, docs, ["a", "b", "c"], 256, "0" * 64, files=3)
    flat = np.concatenate([t for _, t in docs])
    src = np.concatenate([np.full(len(t), "abc".index(s)) for s, t in docs])
    stream = TokenStream(str(tmp_path), manifest.train, manifest.source_names)
    assert stream.total == len(flat) and len(stream._ensure_open()) > 6
    rng = np.random.default_rng(1)
    for _ in range(300):
        a = int(rng.integers(0, len(flat)))
        b = int(rng.integers(a, min(len(flat), a + 700) + 1))
        tok, s, _ = stream.read(a, b)
        assert np.array_equal(tok, flat[a:b]) and np.array_equal(s, src[a:b])
    # sequence i = tokens [i·T, i·T + T + 1); the source of each target token
    data = PackedSequences(stream, 50, 256)
    item = data.__getitems__([3, 0])
    assert np.array_equal(item["tokens"][0].numpy(), flat[150:201])
    assert np.array_equal(item["sources"][0].numpy(), src[151:201])
    assert len(data) == (len(flat) - 1) // 50


def _epoch_batches(folder: Path, workers: int, world: int) -> list[np.ndarray]:
    manifest = ShardManifest.read_from(str(folder))
    stream = TokenStream(str(folder), manifest.train, manifest.source_names)
    data = PackedSequences(stream, 16, manifest.tokenizer.vocab_size)
    plan = BatchPlan.make(8 * 16, 16, 4 // world, world)
    order = SequenceOrder(len(data), manifest_sha256(str(folder)), 0, 16)
    steps = -(-len(data) // plan.global_batch)
    out = []
    for rank in range(world):
        loader = make_loader(data, StepSampler(order, plan, rank, 0, steps), workers)
        out.append([b for b in loader])
    # interleave ranks back into global order: per step, rank 0's micro-batches then rank 1's
    merged = []
    per_rank = plan.accumulation
    for s in range(steps):
        for rank in range(world):
            merged += out[rank][s * per_rank : (s + 1) * per_rank]
    return merged


def test_loader_order_independent_of_workers_and_world_no_repeats_or_skips(tmp_path: Path) -> None:
    synthetic_shards(tmp_path, n_docs=150)
    zero = _epoch_batches(tmp_path, workers=0, world=1)
    two = _epoch_batches(tmp_path, workers=2, world=1)
    ranks = _epoch_batches(tmp_path, workers=0, world=2)
    assert len(two) == len(zero) and all(
        torch.equal(a["index"], b["index"]) for a, b in zip(zero, two, strict=True)
    )
    for other in (two, ranks):  # 2 ranks cut the same sequences into smaller micro-batches
        for key in ("index", "tokens", "sources"):
            assert torch.equal(torch.cat([b[key] for b in zero]), torch.cat([b[key] for b in other]))
    n = len(
        PackedSequences(
            TokenStream(str(tmp_path), ShardManifest.read_from(str(tmp_path)).train, ["web", "code"]), 16, 256
        )
    )
    seen = torch.cat([b["index"] for b in zero]).tolist()
    first_epoch = seen[:n]
    assert sorted(first_epoch) == list(range(n))  # every sequence once: no repeat, no skip
    assert first_epoch != list(range(n))


def test_batch_fingerprint_is_the_global_step() -> None:
    order = SequenceOrder(1000, "c" * 64, 3, 128)
    assert batch_fingerprint(order, 0, 8) == batch_fingerprint(SequenceOrder(1000, "c" * 64, 3, 128), 0, 8)
    assert batch_fingerprint(order, 0, 8) != batch_fingerprint(order, 8, 16)


# ----------------------------------------------------------------------------------------------------------
# optimiser


def test_lr_schedule_warmup_then_cosine_to_ten_percent() -> None:
    lrs = [lr_at(s, 1.0, 10, 100, 0.1) for s in range(120)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a >= b for a, b in zip(lrs[10:100], lrs[11:101], strict=False))
    assert (
        lrs[55] == pytest.approx(0.55) and lrs[100] == pytest.approx(0.1) and lrs[119] == pytest.approx(0.1)
    )


def test_weight_decay_on_2d_weights_only() -> None:
    from manifests.training import OptimSettings
    from model import Llama, LlamaConfig

    model = Llama(LlamaConfig(dim=32, n_layers=2, n_heads=2, vocab_size=64, multiple_of=16, max_seq_len=16))
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = param_groups(model, OptimSettings())
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert {names[id(p)] for p in no_decay["params"]} == {
        n for n, p in model.named_parameters() if p.dim() == 1
    }
    assert "tok_embeddings.weight" in {names[id(p)] for p in decay["params"]}
    decay, no_decay = param_groups(model, OptimSettings(decay_embeddings=False))
    assert "tok_embeddings.weight" in {names[id(p)] for p in no_decay["params"]}
    assert "output.weight" in {names[id(p)] for p in decay["params"]}


# ----------------------------------------------------------------------------------------------------------
# shard checks: refused before training, naming the file


def _refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    cfg = write_config(tmp_path / "c.toml", tmp_path / "shards", tmp_path / "run")
    assert train_main(["--config", str(cfg), *extra]) == 1
    assert (
        not (tmp_path / "run" / "metrics.jsonl").exists() and not (tmp_path / "run" / "checkpoints").exists()
    )
    return capsys.readouterr().err


def test_flipped_byte_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_shards(tmp_path / "shards")
    victim = tmp_path / "shards" / "train" / "shard-00001.arrow"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    err = _refused(tmp_path, capsys)
    assert str(victim) in err and "sha256" in err


def test_missing_shard_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_shards(tmp_path / "shards")
    victim = tmp_path / "shards" / "validation" / "shard-00000.arrow"
    victim.unlink()
    err = _refused(tmp_path, capsys)
    assert str(victim) in err and "missing" in err


def test_shards_of_another_tokenizer_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = sentences(400)
    tok_a = train_sentencepiece(tmp_path / "tok_a", lines, vocab_size=300)
    tok_b = train_sentencepiece(tmp_path / "tok_b", [s.upper() for s in lines], vocab_size=300)
    manifest = text_shards(tmp_path / "shards", {"web": lines[:200], "books": lines[200:]}, tok_a, files=2)
    # 1. the run's tokenizer is another one: the manifest is refused
    err = _refused(tmp_path, capsys, "--data.tokenizer", str(tok_b))
    assert str(tmp_path / "shards" / "manifest.json") in err and str(tok_b) in err
    # 2. one shard file comes from another tokenizer's shards (its manifest entry updated to match the bytes)
    rel = manifest.train[1].file
    sp_b = __import__("sentencepiece").SentencePieceProcessor(model_file=str(tok_b))
    foreign = write_shard(
        str(tmp_path / "shards"),
        rel,
        [np.asarray(sp_b.encode(s) + [2]) for s in lines[:50]],
        np.zeros(50, dtype=np.int16),
        [f"b:{i}" for i in range(50)],
        sp_b.vocab_size(),
        manifest.source_names,
        tokenizer_sha256=shard_format.storage.sha256_of(str(tok_b)),
    )
    manifest.train[1] = foreign
    manifest.write(str(tmp_path / "shards"))
    err = _refused(tmp_path, capsys)
    assert str(tmp_path / "shards" / rel) in err and "made with tokenizer" in err


def test_verify_scans_token_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = synthetic_docs(60, 256)
    docs[40] = ("web", np.append(np.full(10, 300), 2))  # ids past the vocabulary, a consistent sha256
    shards_from_docs(tmp_path / "shards", docs, ["web", "code"], 256, "0" * 64, files=2, stamp=False)
    err = _refused(tmp_path, capsys, "--verify")
    assert "shard-00001.arrow" in err and "token id 300" in err


# ----------------------------------------------------------------------------------------------------------
# the loop in one process


def test_run_metrics_per_source_losses_average_to_loss(tmp_path: Path) -> None:
    synthetic_shards(tmp_path / "shards")
    cfg = write_config(
        tmp_path / "c.toml",
        tmp_path / "shards",
        tmp_path / "run",
        train={"steps": 6},
        log={"every": 2, "tensorboard": True},
        eval={"every": 3, "sequences": 8, "samples": 1, "sample_tokens": 4},
    )
    assert train_main(["--config", str(cfg)]) == 0
    records = metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [2, 3, 4, 6]  # every 2, plus the eval steps and the last
    for r in records:
        for key in (
            "step",
            "tokens",
            "loss",
            "loss_by_source",
            "lr",
            "grad_norm",
            "tokens_per_s",
            "mfu",
            "mix",
            "batch_fingerprint",
        ):
            assert key in r
        counts = r["tokens_by_source"]
        weighted = sum(counts[s] * r["loss_by_source"][s] for s in counts) / sum(counts.values())
        assert weighted == pytest.approx(r["loss"], rel=1e-12)
        assert (
            sum(counts.values())
            == (r["step"] - (records[records.index(r) - 1]["step"] if records.index(r) else 0)) * 4 * 32
        )
        assert sum(m["realised"] for m in r["mix"].values()) == pytest.approx(1.0)
        assert r["mix"]["web"]["target"] == 0.5 and r["mfu"] is None  # a CPU has no peak in the table
    assert "val_loss" in records[1] and records[1]["val_ppl"] == pytest.approx(
        math.exp(records[1]["val_loss"])
    )
    assert set(records[-1]["val_loss_by_source"]) <= {"web", "code"}
    assert records[-1]["loss"] < records[0]["loss"]
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [3, 6] and len(samples[0]["output_ids"]) <= 4
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    # the final export is a model directory `corral generate` reads
    from model.io import load_model

    model = load_model(tmp_path / "run" / "final")
    assert model.config.vocab_size == 256 and model.config.dim == 32
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    e = summary["energy"]
    assert e["mwh"] == pytest.approx(e["device_hours"] * 400 * 1.1 / 1e6) and e["tco2eq"] == pytest.approx(
        e["mwh"] * 0.385
    )
    saved = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert saved == ["step-00000005", "step-00000006"]  # every 5 and the end, keep 2


def test_existing_run_needs_resume_and_keeps_the_data_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic_shards(tmp_path / "shards")
    cfg = write_config(tmp_path / "c.toml", tmp_path / "shards", tmp_path / "run", train={"steps": 5})
    assert train_main(["--config", str(cfg)]) == 0
    capsys.readouterr()
    assert train_main(["--config", str(cfg), "--train.steps", "8"]) == 1
    assert "--resume auto" in capsys.readouterr().err
    assert train_main(["--config", str(cfg), "--resume", "auto", "--data.seq_len", "16"]) == 2
    assert "data.seq_len: is 16 but the checkpoint" in capsys.readouterr().err
    assert train_main(["--config", str(cfg), "--resume", "auto", "--train.steps", "8"]) == 0
    assert [r["step"] for r in metrics(tmp_path / "run")] == list(range(1, 9))


def test_nonfinite_loss_stops_naming_step_and_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    synthetic_shards(tmp_path / "shards")
    cfg = write_config(tmp_path / "c.toml", tmp_path / "shards", tmp_path / "run", model={"init_std": 1e30})
    assert train_main(["--config", str(cfg)]) == 3
    err = capsys.readouterr().err
    assert "non-finite loss at step 1" in err and "Last good checkpoint: none yet" in err


def test_dry_run_reports_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synthetic_shards(tmp_path / "shards")
    cfg = write_config(tmp_path / "c.toml", tmp_path / "shards", tmp_path / "run", train={"steps": 1000})
    assert train_main(["--config", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    for text in (
        "parameters 43,168",
        "FLOPs/token",
        "memory     per device",
        "optimizer",
        "activations",
        "1,000 steps",
        "epochs of the shards",
        "s/step",
        "estimate",
    ):
        assert text in out
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------------------
# preemption, resume and parallelism (subprocesses)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A straight 20-step reference run (1 process, accumulation 2) on shared shards."""
    root = tmp_path_factory.mktemp("trainer_runs")
    synthetic_shards(root / "shards")
    cfg = write_config(root / "c.toml", root / "shards", root / "ref")
    proc = run_cli("--config", str(cfg))
    assert proc.returncode == 0, proc.stderr
    return {"root": root, "config": cfg, "ref": root / "ref"}


def _losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in metrics(run_dir)]


def _fingerprints(run_dir: Path) -> list[str]:
    return [r["batch_fingerprint"] for r in metrics(run_dir)]


@pytest.fixture(scope="module")
def preempted(runs: dict[str, Path]) -> Path:
    """The same run killed with SIGTERM after step 10 (a checkpoint, then exit 143); not resumed."""
    run_dir = runs["root"] / "killed"
    cmd = [sys.executable, "-m", "trainer.train", "--config", str(runs["config"]), "--run_dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CORRAL_TRAIN_PAUSE_AT_STEP": "10"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (run_dir / "paused-at-10").exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM after step 10" in out
    assert [s for s, _ in __import__("trainer.checkpoint").checkpoint.complete_checkpoints(str(run_dir))] == [
        5,
        10,
    ]
    frozen = runs["root"] / "killed-at-10"
    shutil.copytree(run_dir, frozen)
    return frozen


@pytest.mark.slow
def test_sigterm_then_resume_is_bit_identical(runs: dict[str, Path], preempted: Path) -> None:
    run_dir = runs["root"] / "resumed"
    shutil.copytree(preempted, run_dir)
    proc = run_cli("--config", str(runs["config"]), "--run_dir", str(run_dir), "--resume", "auto")
    assert proc.returncode == 0, proc.stderr
    assert "resumed from" in proc.stdout and "at step 10" in proc.stdout
    assert [r["step"] for r in metrics(run_dir)] == list(range(1, 21))
    assert _losses(run_dir) == _losses(runs["ref"])  # exactly equal, every step
    assert [r["grad_norm"] for r in metrics(run_dir)] == [r["grad_norm"] for r in metrics(runs["ref"])]
    from safetensors.torch import load_file

    a, b = (
        load_file(run_dir / "final" / "model.safetensors"),
        load_file(runs["ref"] / "final" / "model.safetensors"),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_under_torchrun_with_two_processes(runs: dict[str, Path], preempted: Path) -> None:
    run_dir = runs["root"] / "resumed-2"
    shutil.copytree(preempted, run_dir)
    proc = run_cli("--config", str(runs["config"]), "--run_dir", str(run_dir), "--resume", "auto", torchrun=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "micro-batch 2 × 1 accumulation × 2 processes" in proc.stdout
    assert _fingerprints(run_dir) == _fingerprints(runs["ref"])
    assert np.allclose(_losses(run_dir), _losses(runs["ref"]), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_ddp_two_ranks_matches_one_process_with_accumulation(runs: dict[str, Path]) -> None:
    run_dir = runs["root"] / "ddp"
    proc = run_cli("--config", str(runs["config"]), "--run_dir", str(run_dir), torchrun=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _fingerprints(run_dir) == _fingerprints(runs["ref"])
    assert np.allclose(_losses(run_dir), _losses(runs["ref"]), rtol=0, atol=1e-6)


@pytest.mark.slow
def test_fsdp2_two_ranks_and_reshard_into_one_process(runs: dict[str, Path]) -> None:
    run_dir = runs["root"] / "fsdp"
    proc = run_cli(
        "--config", str(runs["config"]), "--run_dir", str(run_dir), "--train.parallelism", "fsdp", torchrun=2
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FSDP2" in proc.stdout
    assert _fingerprints(run_dir) == _fingerprints(runs["ref"])
    assert np.allclose(_losses(run_dir), _losses(runs["ref"]), rtol=0, atol=2e-5)
    # the 2-rank sharded checkpoint of step 15 loads into one process, which finishes the run
    one = runs["root"] / "fsdp-then-1"
    shutil.copytree(run_dir, one, ignore=shutil.ignore_patterns("step-00000020", "final"))
    proc = run_cli("--config", str(runs["config"]), "--run_dir", str(one), "--resume", "auto")
    assert proc.returncode == 0, proc.stderr
    assert "at step 15" in proc.stdout
    assert np.allclose(_losses(one), _losses(runs["ref"]), rtol=0, atol=2e-5)


@pytest.mark.slow
def test_activation_checkpointing_same_losses_and_compiled_bf16_trains(runs: dict[str, Path]) -> None:
    ac = runs["root"] / "ac"
    proc = run_cli(
        "--config", str(runs["config"]), "--run_dir", str(ac), "--train.activation_checkpointing", "true"
    )
    assert proc.returncode == 0, proc.stderr
    assert np.allclose(_losses(ac), _losses(runs["ref"]), rtol=0, atol=1e-6)
    compiled = runs["root"] / "compiled"
    proc = run_cli(
        "--config",
        str(runs["config"]),
        "--run_dir",
        str(compiled),
        "--train.compile",
        "true",
        "--train.dtype",
        "bf16",
        "--train.steps",
        "8",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = _losses(compiled)
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert np.allclose(losses, _losses(runs["ref"])[:8], rtol=0, atol=0.05)  # bf16 rounding only


# ----------------------------------------------------------------------------------------------------------
# learning


@pytest.mark.slow
def test_tiny_model_overfits_one_small_shard(tmp_path: Path) -> None:
    """Memorising 2,048 tokens of text must beat what any context-free model can do on it.

    The threshold is derived from the data: the unigram entropy H1 of the shard's targets (the loss of the
    best model that ignores context). Generalisation cannot get far below it on a grammar this random, but
    memorisation can: a model that has memorised the 32 sequences predicts most targets from their
    position in a seen sequence, so its loss must fall below 1/4 of H1 (about 1.2 nats here; a fresh
    model starts near ln(vocab) ≈ 6)."""
    lines = sentences(300, seed=1)
    tok = train_sentencepiece(tmp_path / "tok", lines, vocab_size=400)
    manifest = text_shards(tmp_path / "shards", {"web": lines[:140]}, tok)
    stream = TokenStream(str(tmp_path / "shards"), manifest.train, manifest.source_names)
    n_tokens = 32 * 64 + 1
    assert stream.total >= n_tokens
    # keep only the first 32 sequences of 64 tokens: one small shard, 4 sequences per batch, 8 steps an epoch
    tokens, _, _ = stream.read(0, n_tokens)
    small = tmp_path / "small"
    shards_from_docs(
        small, [("web", tokens)], ["web"], manifest.tokenizer.vocab_size, manifest.tokenizer.sha256, files=1
    )
    counts = np.bincount(tokens[1:], minlength=manifest.tokenizer.vocab_size)
    p = counts[counts > 0] / counts.sum()
    unigram_entropy = float(-(p * np.log(p)).sum())
    cfg = write_config(
        tmp_path / "c.toml",
        small,
        tmp_path / "run",
        model={"dim": 64, "n_layers": 2, "n_heads": 4},
        data={"seq_len": 64},
        train={"steps": 160, "batch_tokens": 4 * 64, "micro_batch": 4},
        optim={"lr": 1e-2, "warmup_steps": 10},
        checkpoint={"every": 0},
        log={"every": 8},
    )
    assert train_main(["--config", str(cfg)]) == 0
    records = metrics(tmp_path / "run")
    assert records[0]["loss"] > unigram_entropy  # it starts knowing nothing
    assert records[-1]["loss"] < unigram_entropy / 4, (records[-1]["loss"], unigram_entropy)
    assert records[-1]["epoch"] == 19  # 160 steps × 4 sequences over 32 sequences = 20 epochs


@pytest.mark.realdata
@pytest.mark.slow
def test_trains_on_shards_of_the_real_samples(tmp_path: Path, shared_data: Path) -> None:
    """Real text of three sources (Gutenberg, Wikipedia, StackExchange) in the corpus format → a SentencePiece
    tokenizer with its card → `corral shards` (pipeline.shards.main, the real job) → `corral train`."""
    from corpus_fixture import write_corpus

    from filters.sources.base import ReadStats
    from filters.sources.registry import get_reader
    from manifests.tokenizer import TokenizerCard
    from pipeline.shards import main as shards_main

    def read(reader: str, path: Path, limit: int) -> list[str]:
        with open(path, "rb") as f:
            docs = get_reader(reader).load_reader()(f, str(path), ReadStats())
            return [d.text for _, d in zip(range(limit), docs, strict=False)]

    books = [t for p in sorted((shared_data / "gutenberg").glob("*.txt.gz")) for t in read("gutenberg", p, 1)]
    wiki = next((shared_data / "wikipedia").glob("enwiki-latest-*.bz2"))
    posts = shared_data / "stackexchange" / "coffee.stackexchange.Posts.xml.gz"
    texts = {
        "books": [b[i : i + 3000] for b in books for i in range(0, 24000, 3000)],
        "wikipedia": [t[:4000] for t in read("wikipedia_xml", wiki, 60)],
        "stackexchange": [t[:4000] for t in read("stackexchange", posts, 60)],
    }
    shards_toml = "[shards]\ntotal_tokens = 120000\nshard_tokens = 40000\nvalidation_fraction = 0.05\n"
    job = write_corpus(
        tmp_path,
        texts,
        weights={"books": 0.5, "wikipedia": 0.3, "stackexchange": 0.2},
        extra_toml=shards_toml,
    )
    lines = [line for docs in texts.values() for d in docs for line in d.splitlines() if line.strip()]
    tok = train_sentencepiece(tmp_path / "tokenizer", lines, vocab_size=2000)
    TokenizerCard(sha256=shard_format.storage.sha256_of(str(tok)), vocab_size=2000, settings={}).write(
        str(tmp_path / "tokenizer")
    )
    assert shards_main(["--manifest", str(job)]) == 0
    manifest = ShardManifest.read_from(str(tmp_path / "shards"))
    assert manifest.validation and len(manifest.train) >= 2
    cfg = write_config(
        tmp_path / "c.toml",
        tmp_path / "shards",
        tmp_path / "run",
        model={"dim": 64, "n_layers": 2, "n_heads": 4},
        data={"seq_len": 64},
        train={"steps": 40, "batch_tokens": 8 * 64, "micro_batch": 8},
        optim={"lr": 5e-3, "warmup_steps": 5},
        log={"every": 5},
        eval={"every": 20, "sequences": 16, "samples": 1},
    )
    assert train_main(["--config", str(cfg)]) == 0
    records = metrics(tmp_path / "run")
    # It learns: from about ln(vocab) (a fresh model predicts nearly uniformly) to well below it, on
    # training and on held-out validation text alike.
    uniform = math.log(2000)
    assert records[0]["loss"] > uniform - 0.3 and records[-1]["loss"] < uniform - 0.75
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [20, 40] and evals[-1]["val_loss"] < evals[0]["val_loss"] < uniform
    assert set(records[-1]["loss_by_source"]) == set(texts)
    assert "val_loss_by_source" in records[-1]
    sample = json.loads((tmp_path / "run" / "samples.jsonl").read_text().splitlines()[-1])
    assert isinstance(sample["output"], str)  # decoded with the tokenizer found beside the shards
    assert (tmp_path / "run" / "final" / "tokenizer.model").is_file()


def test_resume_after_the_last_checkpoint_finishes_the_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after its last checkpoint but before `final/`: `--resume auto` exports, it does not retrain."""
    import shutil

    synthetic_shards(tmp_path / "shards")
    cfg = write_config(tmp_path / "c.toml", tmp_path / "shards", tmp_path / "run", train={"steps": 5})
    assert train_main(["--config", str(cfg)]) == 0
    weights = (tmp_path / "run" / "final" / "model.safetensors").read_bytes()
    shutil.rmtree(tmp_path / "run" / "final")
    (tmp_path / "run" / "summary.json").unlink()
    capsys.readouterr()
    assert train_main(["--config", str(cfg), "--resume", "auto"]) == 0
    assert (tmp_path / "run" / "final" / "model.safetensors").read_bytes() == weights
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 5
    assert [r["step"] for r in metrics(tmp_path / "run")] == list(range(1, 6))
    assert train_main(["--config", str(cfg), "--resume", "auto"]) == 0
    assert "nothing to do" in capsys.readouterr().out
