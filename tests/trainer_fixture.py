"""Shards written directly in the shard format (no Beam), and trainer configs, for the trainer's tests.

`synthetic_shards` makes documents of random token ids (for loader and parallelism tests, where only the
order and the arithmetic matter); `text_shards` tokenizes real text with a small SentencePiece model
trained here (for the overfit and real-data tests). Both write `manifest.json` the way `corral shards`
does, so the trainer reads them through the same code as a real run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from manifests import storage
from manifests.shards import ShardManifest, SourceMix, TokenizerRef, token_type, write_shard
from manifests.training import dump_toml

EOS = 2


def write_manifest(
    folder: Path,
    train: Sequence[Any],
    validation: Sequence[Any],
    names: Sequence[str],
    vocab_size: int,
    tokenizer_sha256: str,
) -> ShardManifest:
    total = sum(f.tokens for f in train)
    per_source = {n: sum(f.tokens_per_source.get(n, 0) for f in train) for n in names}
    sources = {
        n: SourceMix(
            weight=1 / len(names),
            target=total // len(names),
            tokens=per_source[n],
            achieved=per_source[n] / total,
            epochs=1.0,
            unique_tokens=per_source[n],
            documents=0,
        )
        for n in names
    }
    manifest = ShardManifest(
        tokenizer=TokenizerRef(sha256=tokenizer_sha256, vocab_size=vocab_size, eos_id=EOS),
        token_type=str(token_type(vocab_size)),
        seed=0,
        total_tokens=total,
        validation_fraction=0.1,
        max_epochs=16.0,
        shard_tokens=max(f.tokens for f in train),
        source_names=list(names),
        sources=sources,
        train=list(train),
        validation=list(validation),
    )
    manifest.write(str(folder))
    return manifest


def shards_from_docs(
    folder: Path,
    docs: Sequence[tuple[str, np.ndarray]],
    names: Sequence[str],
    vocab_size: int,
    tokenizer_sha256: str,
    files: int = 2,
    validation_docs: int = 0,
    stamp: bool = True,
) -> ShardManifest:
    """Documents (source, token ids ending with EOS) → `files` train shards (+ one validation shard)."""
    val, train = list(docs[:validation_docs]), list(docs[validation_docs:])
    sid = {n: i for i, n in enumerate(names)}

    def write(rel: str, chunk: list[tuple[str, np.ndarray]]) -> Any:
        return write_shard(
            str(folder),
            rel,
            [t for _, t in chunk],
            np.array([sid[s] for s, _ in chunk], dtype=np.int16),
            [f"{s}:{i}" for i, (s, _) in enumerate(chunk)],
            vocab_size,
            names,
            tokenizer_sha256=tokenizer_sha256 if stamp else None,
        )

    per = -(-len(train) // files)
    train_files = [write(f"train/shard-{k:05d}.arrow", train[k * per : (k + 1) * per]) for k in range(files)]
    val_files = [write("validation/shard-00000.arrow", val)] if val else []
    return write_manifest(folder, train_files, val_files, names, vocab_size, tokenizer_sha256)


def synthetic_docs(
    n_docs: int, vocab_size: int, names: Sequence[str] = ("web", "code"), seed: int = 0, max_len: int = 120
) -> list[tuple[str, np.ndarray]]:
    """Random documents: a repeated motif per source (so a model can learn something), EOS-terminated."""
    rng = np.random.default_rng(seed)
    motifs = {n: rng.integers(3, vocab_size, size=7) for n in names}
    out = []
    for i in range(n_docs):
        name = names[i % len(names)]
        length = int(rng.integers(5, max_len))
        body = np.where(
            rng.random(length) < 0.7,
            np.resize(motifs[name], length),
            rng.integers(3, vocab_size, size=length),
        )
        out.append((name, np.append(body, EOS).astype(np.int64)))
    return out


def synthetic_shards(
    folder: Path,
    n_docs: int = 200,
    vocab_size: int = 256,
    seed: int = 0,
    files: int = 2,
    validation_docs: int = 20,
    tokenizer_sha256: str = "0" * 64,
) -> ShardManifest:
    docs = synthetic_docs(n_docs + validation_docs, vocab_size, seed=seed)
    return shards_from_docs(
        folder,
        docs,
        ["web", "code"],
        vocab_size,
        tokenizer_sha256,
        files=files,
        validation_docs=validation_docs,
    )


def train_sentencepiece(directory: Path, lines: Sequence[str], vocab_size: int = 400) -> Path:
    """A small SentencePiece BPE with LLaMA's special ids (unk 0, bos 1, eos 2) and byte fallback."""
    import sentencepiece as spm

    directory.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=str(directory / "tokenizer"),
        vocab_size=vocab_size,
        model_type="bpe",
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        num_threads=1,
        minloglevel=2,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
    )
    return directory / "tokenizer.model"


def text_shards(
    folder: Path,
    texts: Mapping[str, Sequence[str]],
    tokenizer_model: Path,
    files: int = 1,
    validation_docs: int = 0,
) -> ShardManifest:
    """Tokenize real text per source (EOS appended) and write shards made with `tokenizer_model`."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    names = list(texts)
    docs = [(n, np.asarray(sp.encode(t) + [EOS], dtype=np.int64)) for n in names for t in texts[n]]
    random.Random(0).shuffle(docs)
    sha = storage.sha256_of(str(tokenizer_model))
    return shards_from_docs(
        folder, docs, names, sp.vocab_size(), sha, files=files, validation_docs=validation_docs
    )


def sentences(n: int, seed: int = 0) -> list[str]:
    """English-like sentences from a small grammar (the fixture corpus style of tests/fixtures)."""
    rng = random.Random(seed)
    subjects = ["The old bridge", "A group of students", "The harbour", "The museum", "Many visitors"]
    verbs = ["repaired", "studied", "protected", "documented", "planned", "measured"]
    objects = ["the first map of the region", "a collection of letters", "the mountain path", "a long report"]
    tails = [
        "before the war began.",
        "in the spring of that year.",
        "after a long winter.",
        "despite the rain.",
    ]
    return [
        " ".join([rng.choice(subjects), rng.choice(verbs), rng.choice(objects), rng.choice(tails)])
        for _ in range(n)
    ]


def write_config(path: Path, shards: Path, run_dir: Path, **sections: Mapping[str, Any]) -> Path:
    """A trainer config for a tiny model: fp32, single thread, log every step, no eval unless asked."""
    data: dict[str, Any] = {
        "run_dir": str(run_dir),
        "model": {"preset": "llama-10m", "dim": 32, "n_layers": 2, "n_heads": 2, "multiple_of": 16},
        "data": {"shards": str(shards), "seq_len": 32, "num_workers": 0},
        "train": {
            "steps": 20,
            "batch_tokens": 4 * 32,
            "micro_batch": 2,
            "seed": 0,
            "dtype": "fp32",
            "threads": 1,
        },
        "optim": {"lr": 3e-3, "warmup_steps": 4},
        "checkpoint": {"every": 5, "keep": 2},
        "log": {"every": 1, "progress": False, "tensorboard": False},
        "eval": {"every": 0, "sequences": 8, "samples": 0},
    }
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(dump_toml(data), encoding="utf-8")
    return path
