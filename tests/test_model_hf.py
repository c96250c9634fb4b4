"""Parity with Hugging Face transformers' LlamaForCausalLM (fp32, CPU, 4 layers, T = 256, vocab 1000)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model import Llama, LlamaConfig
from model.generate import generate
from model.hf import from_hf_name, load_hf, save_hf, to_hf_name
from model.hf import main as export_main
from model.io import save_model
from model.llama import permute_meta_to_hf

transformers = pytest.importorskip("transformers")

VOCAB, T = 1000, 256
CASES = [
    pytest.param(4, False, id="mha-untied"),
    pytest.param(2, False, id="gqa-untied"),
    pytest.param(4, True, id="mha-tied"),
    pytest.param(2, True, id="gqa-tied"),
]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def hf_model(n_kv_heads: int, tied: bool, seed: int = 0) -> transformers.LlamaForCausalLM:
    """A random HF LLaMA whose weights are large enough (std 0.1, random norm gains) that attention is
    sharp and every position matters: a wrong RoPE layout or mask cannot hide in near-uniform softmaxes."""
    cfg = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=128,
        intermediate_size=352,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=n_kv_heads,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        tie_word_embeddings=tied,
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
            else:
                p.normal_(0.0, 0.1)
    return model.eval()


def tokens(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, T), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("n_kv", "tied"), CASES)
def test_load_hf_gives_hf_logits(tmp_path: Path, n_kv: int, tied: bool) -> None:
    hf = hf_model(n_kv, tied)
    hf.save_pretrained(tmp_path)
    ours = load_hf(tmp_path).eval()
    assert ours.config.n_kv_heads == n_kv and ours.config.tie_embeddings == tied
    x = tokens()
    with torch.no_grad():
        want = hf(x).logits
        got = ours(x)
    assert want.std() > 1.0  # not a degenerate near-constant output
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_parity_fails_with_the_wrong_rope_layout(tmp_path: Path) -> None:
    """Negative control: the parity check above would catch Meta-vs-HF RoPE layout mix-ups."""
    hf = hf_model(4, False)
    hf.save_pretrained(tmp_path)
    ours = load_hf(tmp_path).eval()
    with torch.no_grad():
        for layer in ours.layers:
            layer.attention.wq.weight.copy_(permute_meta_to_hf(layer.attention.wq.weight, 4))
            layer.attention.wk.weight.copy_(permute_meta_to_hf(layer.attention.wk.weight, 4))
        x = tokens()
        assert (ours(x) - hf(x).logits).abs().max() > 1e-2


@pytest.mark.parametrize(("n_kv", "tied"), CASES)
def test_save_hf_loads_in_transformers_with_same_logits(tmp_path: Path, n_kv: int, tied: bool) -> None:
    torch.manual_seed(3)
    ours = Llama(
        LlamaConfig(
            dim=128,
            n_layers=4,
            n_heads=4,
            n_kv_heads=n_kv,
            vocab_size=VOCAB,
            max_seq_len=512,
            init_std=0.1,
            tie_embeddings=tied,
        )
    ).eval()
    save_hf(ours, tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    assert type(hf).__name__ == "LlamaForCausalLM"
    assert hf.config.rms_norm_eps == 1e-5 and hf.config.tie_word_embeddings == tied
    x = tokens()
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, ours(x), atol=1e-5, rtol=0)


def test_sharded_checkpoints_both_ways(tmp_path: Path) -> None:
    hf = hf_model(2, False)
    hf.save_pretrained(tmp_path / "hf_sharded", max_shard_size="300KB")
    assert (tmp_path / "hf_sharded" / "model.safetensors.index.json").is_file()
    ours = load_hf(tmp_path / "hf_sharded").eval()
    x = tokens(1)
    with torch.no_grad():
        want = hf(x).logits
        torch.testing.assert_close(ours(x), want, atol=1e-5, rtol=0)
    save_hf(ours, tmp_path / "ours_sharded", max_shard_bytes=300_000)
    index = json.loads((tmp_path / "ours_sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    back = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ours_sharded").eval()
    with torch.no_grad():
        torch.testing.assert_close(back(x).logits, want, atol=1e-5, rtol=0)


def test_legacy_bin_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    hf = hf_model(4, False)
    sd = {k: v.contiguous() for k, v in hf.state_dict().items()}
    sd["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(16)  # stored by old checkpoints; ignored
    torch.save(sd, tmp_path / "pytorch_model.bin")
    hf.config.save_pretrained(tmp_path)
    ours = load_hf(tmp_path).eval()
    x = tokens(1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), hf(x).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("n_kv", "tied"), [CASES[0], CASES[3]])
def test_greedy_decode_matches_hf_generate(tmp_path: Path, n_kv: int, tied: bool) -> None:
    hf = hf_model(n_kv, tied)
    hf.save_pretrained(tmp_path)
    ours = load_hf(tmp_path).eval()
    prompts = [[3, 14, 15, 92, 65, 35, 89, 79], [271, 828, 18]]
    cached = generate(ours, prompts, 32)
    assert cached == generate(ours, prompts, 32, use_cache=False)
    # HF, batched with left padding and an attention mask
    ids = torch.zeros(2, 8, dtype=torch.long)
    mask = torch.zeros(2, 8, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, 8 - len(p) :] = torch.tensor(p)
        mask[i, 8 - len(p) :] = 1
    out = hf.generate(
        input_ids=ids,
        attention_mask=mask,
        max_new_tokens=32,
        do_sample=False,
        eos_token_id=None,
        pad_token_id=0,
    )
    assert out[:, 8:].tolist() == cached


@pytest.mark.parametrize(("n_kv", "tied"), [CASES[1], CASES[2]])
def test_one_training_step_gradients_agree(tmp_path: Path, n_kv: int, tied: bool) -> None:
    hf = hf_model(n_kv, tied).train()
    hf.save_pretrained(tmp_path)
    ours = load_hf(tmp_path).train()
    x = tokens(2, seed=5)
    hf_loss = hf(input_ids=x, labels=x).loss  # HF shifts labels inside
    targets = torch.cat([x[:, 1:], torch.full((2, 1), -100)], dim=1)
    our_loss = ours(x, targets)
    torch.testing.assert_close(our_loss, hf_loss, atol=1e-5, rtol=0)
    hf_loss.backward()
    our_loss.backward()
    hf_grads = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, hf_grads[to_hf_name(name)].grad, atol=1e-5, rtol=0, msg=name)
    assert all(from_hf_name(to_hf_name(n)) == n for n, _ in ours.named_parameters())


def _train_sentencepiece(directory: Path) -> Path:
    """A real (tiny) SentencePiece BPE model with LLaMA's settings, trained on generated words."""
    import random

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


def _write_config(directory: Path, **changes: object) -> None:
    hf_model(4, False).save_pretrained(directory)
    cfg = json.loads((directory / "config.json").read_text())
    cfg.update(changes)
    (directory / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model_type": "mistral"}, "model_type is 'mistral', not 'llama'"),
        ({"architectures": ["LlamaForSequenceClassification"]}, "does not include LlamaForCausalLM"),
        ({"attention_bias": True}, "attention_bias"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        (
            {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}},
            "RoPE type 'llama3'",
        ),
        ({"head_dim": 64}, "head_dim 64"),
        ({"num_key_value_heads": 3}, "not divisible by n_kv_heads"),
    ],
)
def test_load_hf_rejects_other_architectures(tmp_path: Path, changes: dict, message: str) -> None:
    _write_config(tmp_path, **changes)
    with pytest.raises(ValueError, match=message):
        load_hf(tmp_path)


def test_load_hf_rejects_foreign_tensors_and_missing_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    _write_config(tmp_path)
    sd = load_file(str(tmp_path / "model.safetensors"))
    sd["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(128)
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"unexpected tensor 'model.layers.0.self_attn.q_proj.bias'"):
        load_hf(tmp_path)
    del sd["model.layers.0.self_attn.q_proj.bias"], sd["model.layers.3.mlp.up_proj.weight"]
    save_file(sd, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"missing weights \['layers.3.feed_forward.w3.weight'\]"):
        load_hf(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights in"):
        load_hf(tmp_path)


def test_export_hf_cli_with_tokenizer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = _train_sentencepiece(tmp_path)
    torch.manual_seed(0)
    ours = Llama(LlamaConfig(dim=64, n_layers=2, n_heads=4, vocab_size=300, max_seq_len=128)).eval()
    save_model(ours, tmp_path / "ck", tokenizer=tok)
    rc = export_main(
        ["--checkpoint", str(tmp_path / "ck"), "--out", str(tmp_path / "hf"), "--dtype", "bfloat16"]
    )
    assert rc == 0 and "wrote" in capsys.readouterr().out
    out = tmp_path / "hf"
    assert (out / "tokenizer.model").read_bytes() == tok.read_bytes()
    tok_cfg = json.loads((out / "tokenizer_config.json").read_text())
    assert tok_cfg["bos_token"] == "<s>" and tok_cfg["eos_token"] == "</s>"
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert hf.dtype == torch.bfloat16
    assert hf.config.bos_token_id == 1 and hf.config.eos_token_id == 2
    hf_sd = hf.state_dict()
    for name, p in ours.named_parameters():
        assert torch.equal(hf_sd[to_hf_name(name)], p.detach().to(torch.bfloat16)), name

    rc = export_main(["--checkpoint", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert rc == 1 and "no config.json" in capsys.readouterr().err
    rc = export_main(
        [
            "--checkpoint",
            str(tmp_path / "ck"),
            "--out",
            str(tmp_path / "y"),
            "--tokenizer-dir",
            str(out / "nope"),
        ]
    )
    assert rc == 1 and "tokenizer directory not found" in capsys.readouterr().err


def test_export_of_a_checkpoint_ships_the_fast_tokenizer_beside_its_model(tmp_path: Path) -> None:
    """A checkpoint saved with a `corral tokenizer` output (tokenizer.model + tokenizer.json + config) and
    exported without --tokenizer-dir: the HF folder loads the fast tokenizer that encodes exactly like
    SentencePiece (transformers' own LlamaTokenizer disagrees on leading spaces)."""
    import random

    import sentencepiece as spm

    from tokenizer_training.bpe import trainer_settings
    from tokenizer_training.hf import write_hf_files

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 7))) for _ in range(200)]
    lines = [" ".join(rng.choice(words) for _ in range(10)) for _ in range(1500)]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_prefix=str(tmp_path / "tokenizer"), minloglevel=2,
        **trainer_settings(vocab_size=300, threads=1),
    )  # fmt: skip
    tok = tmp_path / "tokenizer.model"
    write_hf_files(str(tok), str(tmp_path))
    ours = Llama(LlamaConfig(dim=64, n_layers=2, n_heads=4, vocab_size=300, max_seq_len=128)).eval()
    save_model(ours, tmp_path / "ck", tokenizer=tok)
    assert (tmp_path / "ck" / "tokenizer.json").read_bytes() == (tmp_path / "tokenizer.json").read_bytes()
    assert export_main(["--checkpoint", str(tmp_path / "ck"), "--out", str(tmp_path / "hf")]) == 0
    hf_tok = transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")
    sp = spm.SentencePieceProcessor(model_file=str(tok))
    for text in ["abc def", "  leading spaces", "tabs\tand\nnewlines 12345", "ünïcode ☃ bytes"]:
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == sp.encode(text), text
