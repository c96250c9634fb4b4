"""The LLaMA model on its own: presets vs the paper, config errors, init, KV-cache generation, checkpoint IO."""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import model.io
from model import PRESETS, Llama, LlamaConfig
from model.generate import generate, sample_next
from model.generate import main as generate_main
from model.io import load_model, save_model
from model.llama import RMSNorm, apply_rope, permute_meta_to_hf


@pytest.fixture(autouse=True)
def _one_thread():
    """Small matmuls on a shared 2-core box are fastest (and steady) single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(**kw) -> Llama:
    torch.manual_seed(kw.pop("seed", 0))
    cfg = dict(dim=64, n_layers=2, n_heads=4, vocab_size=300, max_seq_len=128, init_std=0.1)
    cfg.update(kw)
    return Llama(LlamaConfig(**cfg)).eval()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------------------------
# presets and config


@pytest.mark.parametrize(
    ("name", "paper_params", "ffn"),
    [
        ("llama-7b", 6.7e9, 11008),
        ("llama-13b", 13.0e9, 13824),
        ("llama-33b", 32.5e9, 17920),
        ("llama-65b", 65.2e9, 22016),
    ],
)
def test_paper_presets_on_meta_device(name: str, paper_params: float, ffn: int) -> None:
    before = _rss_bytes()
    with torch.device("meta"):
        model = Llama(LlamaConfig.from_preset(name))
    grown = _rss_bytes() - before
    assert all(p.is_meta for p in model.parameters())
    assert grown < 256 * 1024**2, f"building {name} on meta grew RSS by {grown / 1e6:.0f} MB"
    assert model.config.ffn_hidden == ffn  # LLaMA Table 2, from the 256·ceil(int(8d/3)/256) rule
    assert model.config.vocab_size == 32000
    assert abs(model.num_params() / paper_params - 1) < 0.01


def test_small_presets_have_a_recipe_and_grow() -> None:
    sizes = []
    for name in ("llama-10m", "llama-60m", "llama-125m", "llama-350m", "llama-1b"):
        preset = PRESETS[name]
        assert 0 < preset.peak_lr <= 3e-3 and preset.batch_tokens >= 64 * 2048
        with torch.device("meta"):
            sizes.append(Llama(LlamaConfig.from_preset(name)).num_params())
    nominal = [10e6, 60e6, 125e6, 350e6, 1e9]
    assert sizes == sorted(sizes)
    for got, want in zip(sizes, nominal, strict=True):
        assert 0.9 < got / want < 1.15, (got, want)


def test_flops_per_token_follows_spec_7() -> None:
    with torch.device("meta"):
        model = Llama(LlamaConfig.from_preset("llama-7b"))
    n_total = model.num_params()
    n_nonemb = n_total - 32000 * 4096
    assert model.num_params(non_embedding=True) == n_nonemb
    assert model.flops_per_token(2048) == 6 * n_nonemb + 12 * 32 * 4096 * 2048
    tied = tiny(tie_embeddings=True)
    assert tied.num_params() == tied.num_params(non_embedding=True)  # the shared matrix is the output matmul


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(dim=100, n_heads=3), "not divisible by n_heads"),
        (dict(dim=64, n_heads=8, n_kv_heads=3), "not divisible by n_kv_heads"),
        (dict(dim=64, n_heads=0), "positive integer"),
        (dict(dim=60, n_heads=4), "must be even"),
    ],
)
def test_bad_config_says_what_is_wrong(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LlamaConfig(**kwargs)


def test_unknown_preset_and_fields() -> None:
    with pytest.raises(ValueError, match="unknown LLaMA preset 'llama-2b'.*llama-7b"):
        LlamaConfig.from_preset("llama-2b")
    with pytest.raises(ValueError, match="unknown field"):
        LlamaConfig.from_dict({"dim": 64, "n_layers": 2, "n_heads": 4, "window": 3})


def test_sequence_longer_than_max_seq_len() -> None:
    model = tiny(max_seq_len=32)
    model(torch.zeros(1, 32, dtype=torch.long))
    with pytest.raises(ValueError, match="33.*exceeds max_seq_len 32"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="exceeds max_seq_len"):
        generate(model, [[1] * 30], 5)


# ---------------------------------------------------------------------------------------------------------
# components and init


def test_init_is_documented_normal_with_scaled_residuals() -> None:
    torch.manual_seed(0)
    model = Llama(LlamaConfig(dim=256, n_layers=8, n_heads=4, vocab_size=1000, max_seq_len=64))
    std = 0.02
    assert model.layers[0].attention.wq.weight.std().item() == pytest.approx(std, rel=0.05)
    assert model.layers[3].feed_forward.w1.weight.std().item() == pytest.approx(std, rel=0.05)
    assert model.tok_embeddings.weight.std().item() == pytest.approx(std, rel=0.05)
    residual = std / math.sqrt(2 * 8)
    assert model.layers[5].attention.wo.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert model.layers[5].feed_forward.w2.weight.std().item() == pytest.approx(residual, rel=0.05)
    assert torch.equal(model.norm.weight, torch.ones(256))
    assert not any("bias" in name for name, _ in model.named_parameters())


def test_rope_tables_stay_fp32_under_dtype_casts() -> None:
    model = tiny().to(torch.bfloat16)
    ref = tiny()
    assert model.tok_embeddings.weight.dtype == torch.bfloat16
    assert model.rope_cos.dtype == torch.float32 and torch.equal(model.rope_cos, ref.rope_cos)
    assert torch.equal(model.rope_sin, ref.rope_sin)
    assert model(torch.randint(0, 300, (1, 8))).dtype == torch.bfloat16


def test_meta_build_then_materialise_and_init() -> None:
    cfg = LlamaConfig(dim=64, n_layers=2, n_heads=4, vocab_size=300, max_seq_len=64)
    with torch.device("meta"):
        model = Llama(cfg)
    model.to_empty(device="cpu")
    model.init_weights()
    ref = Llama(cfg)
    assert torch.allclose(model.rope_cos, ref.rope_cos) and torch.allclose(model.rope_sin, ref.rope_sin)
    logits = model(torch.randint(0, 300, (2, 16)))
    assert torch.isfinite(logits).all()


def test_rmsnorm_normalises_in_fp32_then_scales() -> None:
    torch.manual_seed(0)
    norm = RMSNorm(32, eps=1e-5)
    with torch.no_grad():
        norm.weight.normal_()
    x = (torch.randn(4, 32) * 30).to(torch.bfloat16)
    xf = x.float()
    expected = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)).to(torch.bfloat16) * norm.weight
    got = norm(x)
    assert got.dtype == torch.float32  # bf16 activations × fp32 gain promote, as in Meta's code
    assert torch.equal(got, expected)


def test_loss_is_next_token_cross_entropy() -> None:
    model = tiny()
    x = torch.randint(0, 300, (2, 20))
    y = torch.randint(0, 300, (2, 20))
    y[0, :5] = -100
    logits = model(x)
    want = F.cross_entropy(logits.reshape(-1, 300), y.reshape(-1), ignore_index=-100)
    assert model(x, y).item() == pytest.approx(want.item(), rel=1e-6)


def test_permute_meta_to_hf_matches_rotation_conventions() -> None:
    """A Meta-layout (adjacent pair) rotation equals ours after permuting rows: the converter is right."""
    torch.manual_seed(0)
    n_heads, head_dim, dim, seq = 2, 8, 16, 5
    w_meta = torch.randn(n_heads * head_dim, dim)
    x = torch.randn(seq, dim)
    inv = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    angles = torch.outer(torch.arange(seq).float(), inv)
    q = (x @ w_meta.T).view(seq, n_heads, head_dim // 2, 2)
    rot = torch.view_as_real(torch.view_as_complex(q) * torch.polar(torch.ones_like(angles), angles)[:, None])
    model = tiny(dim=dim, n_heads=n_heads, max_seq_len=seq)
    qh = (x @ permute_meta_to_hf(w_meta, n_heads).T).view(seq, n_heads, head_dim).transpose(0, 1)
    ours = apply_rope(qh, model.rope_cos[:seq], model.rope_sin[:seq])  # (heads, seq, head_dim)
    # Meta's (real, imag) pair j sits at (j, j + head_dim/2) in our layout
    expected = rot.transpose(-1, -2).reshape(seq, n_heads, head_dim).transpose(0, 1)
    assert torch.allclose(ours, expected, atol=1e-5)
    assert not torch.allclose(ours, rot.reshape(seq, n_heads, head_dim).transpose(0, 1), atol=1e-2)


# ---------------------------------------------------------------------------------------------------------
# generation


@pytest.mark.parametrize("n_kv_heads", [4, 2])
def test_greedy_with_and_without_cache_identical(n_kv_heads: int) -> None:
    model = tiny(n_kv_heads=n_kv_heads)
    prompt = [[5, 17, 42, 7, 99, 3]]
    cached = generate(model, prompt, 32, use_cache=True)
    plain = generate(model, prompt, 32, use_cache=False)
    assert cached == plain and len(cached[0]) == 32
    # reference: argmax over the full forward, token by token
    seq = list(prompt[0])
    for _ in range(32):
        seq.append(int(model(torch.tensor([seq]))[0, -1].argmax()))
    assert cached[0] == seq[6:]


def test_batched_left_padding_decodes_each_row_as_alone() -> None:
    model = tiny(n_kv_heads=2)
    prompts = [[5, 17, 42, 7, 99, 3, 8, 8], [11, 12], [250, 4, 4, 9]]
    batched = generate(model, prompts, 24)
    alone = [generate(model, [p], 24)[0] for p in prompts]
    assert batched == alone
    assert generate(model, prompts, 24, use_cache=False) == alone


def test_eos_stops_a_row() -> None:
    model = tiny()
    free = generate(model, [[1, 2, 3], [9, 8]], 16)[0]
    eos = free[4]
    first = free.index(eos)
    out = generate(model, [[1, 2, 3], [9, 8]], 16, eos_id=eos)
    assert out[0] == free[: first + 1]
    assert len(out[1]) == 16 or out[1][-1] == eos


def test_sampling_is_seeded_and_top_p_limits_the_choice() -> None:
    model = tiny()
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    a = generate(model, [[1, 2, 3]], 16, temperature=1.0, top_p=0.9, generator=g())
    b = generate(model, [[1, 2, 3]], 16, temperature=1.0, top_p=0.9, generator=g())
    assert a == b
    # a tiny nucleus keeps only the most likely token: sampling becomes greedy
    assert generate(model, [[1, 2, 3]], 16, temperature=1.0, top_p=1e-6, generator=g()) == generate(
        model, [[1, 2, 3]], 16
    )
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    draws = {int(sample_next(logits, 1.0, 0.7, torch.Generator().manual_seed(s))) for s in range(200)}
    assert draws == {0, 1}  # 0.5 + 0.3 covers 0.7; tokens 2 and 3 never drawn
    with pytest.raises(ValueError, match="top_p"):
        generate(model, [[1]], 4, top_p=0.0)
    with pytest.raises(ValueError, match="outside"):
        generate(model, [[1, 300]], 4)


# ---------------------------------------------------------------------------------------------------------
# checkpoint directory


@pytest.mark.parametrize("tied", [False, True])
def test_save_load_roundtrip(tmp_path: Path, tied: bool) -> None:
    model = tiny(tie_embeddings=tied, n_kv_heads=2)
    out = tmp_path / "ck"
    save_model(model, out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_model(out)
    assert loaded.config == model.config
    x = torch.randint(0, 300, (2, 40))
    assert torch.equal(loaded(x), model(x))
    if tied:
        assert loaded.output.weight is loaded.tok_embeddings.weight


def test_save_is_atomic_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "ck"
    save_model(tiny(seed=1), out)
    second = tiny(seed=2)
    save_model(second, out)
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]  # no temp or old dirs left behind
    assert torch.equal(load_model(out).output.weight, second.output.weight)

    with pytest.raises(FileNotFoundError, match="tokenizer"):
        save_model(tiny(seed=3), out, tokenizer=tmp_path / "missing.model")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model.io, "save_file", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_model(tiny(seed=3), out)
    assert [p.name for p in tmp_path.iterdir()] == [
        "ck"
    ]  # the failed write left nothing, the old model stays
    assert torch.equal(load_model(out).output.weight, second.output.weight)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(tmp_path)
    out = tmp_path / "ck"
    save_model(tiny(), out)
    (out / "config.json").write_text('{"format": "corral-llama", ', encoding="utf-8")
    with pytest.raises(ValueError, match=r"config.json: invalid JSON at line 1"):
        load_model(out)
    (out / "config.json").write_text(json.dumps({"model_type": "llama"}), encoding="utf-8")
    with pytest.raises(ValueError, match="Hugging Face checkpoint"):
        load_model(out)
    wrong = tiny(dim=32)
    save_model(wrong, tmp_path / "w")
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    cfg["config"]["dim"] = 64
    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"model.safetensors: weight .* has shape"):
        load_model(tmp_path / "w")
    (tmp_path / "w" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    with pytest.raises(ValueError, match="cannot read safetensors"):
        load_model(tmp_path / "w")


# ---------------------------------------------------------------------------------------------------------
# CLI


def _train_sentencepiece(directory: Path) -> Path:
    import sentencepiece as spm

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 7))) for _ in range(200)]
    lines = [" ".join(rng.choice(words) for _ in range(10)) for _ in range(1500)]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(directory / "tokenizer"),
        vocab_size=300,
        model_type="bpe",
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        num_threads=1,
        minloglevel=2,
    )
    return directory / "tokenizer.model"


def test_generate_cli_text_and_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = _train_sentencepiece(tmp_path)
    model = tiny()
    ck = tmp_path / "ck"
    save_model(model, ck, tokenizer=tok)
    rc = generate_main(
        ["--checkpoint", str(ck), "--prompt", "abc def", "--max-new-tokens", "8", "--temperature", "0"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("abc def") and len(out.strip()) > len("abc def")

    rc = generate_main(
        ["--checkpoint", str(ck), "--prompt-ids", "1,5,9", "--max-new-tokens", "6", "--temperature", "0"]
    )
    ids = [int(t) for t in capsys.readouterr().out.strip().split(",")]
    assert rc == 0 and ids == generate(model, [[1, 5, 9]], 6)[0]

    bare = tmp_path / "bare"
    save_model(model, bare)
    rc = generate_main(["--checkpoint", str(bare), "--prompt", "abc"])
    assert rc == 1 and "no tokenizer" in capsys.readouterr().err
    rc = generate_main(["--checkpoint", str(bare), "--prompt-ids", "1,x"])
    assert rc == 1 and "comma-separated integers" in capsys.readouterr().err
