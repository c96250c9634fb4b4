"""`corral shards`: tokenize, mix by token weight × epochs, shuffle, lineage, takedowns, inspect.

The corpora are written in the corpus format directly (`tests/corpus_fixture.py`, no Beam build), the
tokenizers are real SentencePiece BPE models trained here on the fixture text, and every run goes
through `pipeline.shards.main` exactly as `corral shards` does.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sentencepiece as spm
from corpus_fixture import write_corpus, write_source

from filters import mixture
from manifests import storage
from manifests.corpus import iter_rows
from manifests.schema import ManifestError, load_manifest
from manifests.shards import (
    ShardManifest,
    TokenizedSource,
    open_shard,
    read_lineage,
    shard_schema,
)
from manifests.tokenizer import TokenizerCard
from pipeline.inspect_shards import main as inspect_main
from pipeline.shards import main

WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have "
    "an they you were her she there one all we their river water city 1887 42 naïve café Москва 東京 λόγος"
).split()
CODE = "def f{i}(x):\n\tif x > {i}:\n\t\treturn x  *  {i}\n\treturn {{'k': [x, {i}]}}\n"


def _texts(seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)

    def prose(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    return {
        "web": [prose(10, 250) for _ in range(2500)],
        "code": [CODE.format(i=i) * rng.randint(1, 12) for i in range(700)],
        "wiki": [prose(100, 900) for _ in range(60)],
    }


def make_tokenizer(folder: Path, texts: list[str], vocab_size: int = 320, symbols: int = 0) -> Path:
    """A real SentencePiece BPE model (LLaMA's id layout, byte fallback) and its card."""
    folder.mkdir(parents=True, exist_ok=True)
    extra = {"user_defined_symbols": [f"<sym{i}>" for i in range(symbols)]} if symbols else {}
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(folder / "tokenizer"),
        model_type="bpe",
        vocab_size=vocab_size + symbols,
        byte_fallback=True,
        split_digits=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        hard_vocab_limit=False,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
        **extra,
    )
    model = folder / "tokenizer.model"
    pieces = spm.SentencePieceProcessor(model_file=str(model)).get_piece_size()
    TokenizerCard(sha256=storage.sha256_of(str(model)), vocab_size=pieces, settings={}).write(str(folder))
    return folder


SHARDS = """
[shards]
tokenizer = "tokenizer"
total_tokens = {total}
shard_tokens = 150000
validation_fraction = 0.02
"""
WEIGHTS = {"web": 0.74, "code": 0.11, "wiki": 0.15}  # ≈ 1.1, 0.64 and 2.45 epochs


def set_weights(manifest: Path, weights: dict[str, float]) -> None:
    lines = manifest.read_text().splitlines()
    current = None
    for i, line in enumerate(lines):
        if line.startswith("[sources."):
            current = line.removeprefix("[sources.").removesuffix("]")
        elif line.startswith("weight =") and current in weights:
            lines[i] = f"weight = {weights[current]}"
    manifest.write_text("\n".join(lines) + "\n")


def make_job(root: Path, total: int = 1_800_000, weights: dict[str, float] | None = None) -> Path:
    texts = _texts(0)
    m = write_corpus(root, texts, weights=weights or WEIGHTS, extra_toml=SHARDS.format(total=total))
    make_tokenizer(root / "tokenizer", texts["web"][:400] + texts["code"][:50] + texts["wiki"][:20])
    return m


def run(manifest: Path, *more: str) -> int:
    return main(["--manifest", str(manifest), *more])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shards")
    assert run(make_job(root)) == 0
    return root


def rows_of(shards: Path, split: str = "train") -> list[dict]:
    out = []
    for f in sorted((shards / split).glob("shard-*.arrow")):
        t = open_shard(str(f)).read_all()
        for i, (doc_id, source) in enumerate(
            zip(t.column("doc_id").to_pylist(), t.column("source").to_pylist(), strict=True)
        ):
            out.append({"file": f"{split}/{f.name}", "row": i, "doc_id": doc_id, "source": source,
                        "tokens": np.asarray(t.column("tokens")[i].values)})  # fmt: skip
    return out


def file_state(folder: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_mtime_ns, storage.sha256_of(str(p)))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------------- the mixture


def test_achieved_share_within_half_a_point_and_epochs_follow_the_weights(built: Path) -> None:
    m = ShardManifest.read_from(str(built / "shards"))
    assert m.total_tokens == 1_800_000 and m.seed == 7
    assert abs(m.train_tokens - m.total_tokens) <= max(s.max_document_tokens for s in m.sources.values())
    for name, s in m.sources.items():
        assert abs(s.achieved - WEIGHTS[name]) < 0.005, (name, s.achieved)
        assert s.target == round(WEIGHTS[name] * m.total_tokens)
        assert abs(s.tokens - s.target) <= s.boundary_document_tokens / 2 + 1, name
        assert s.epochs == pytest.approx(s.tokens / s.unique_tokens)
    # the fixture is sized so that one source is repeated (wiki > 2 epochs) and one sub-sampled (code < 1)
    assert m.sources["wiki"].epochs > 2 and m.sources["code"].epochs < 1 < m.sources["web"].epochs


def test_every_document_repeated_floor_or_ceil_of_its_epochs(built: Path) -> None:
    m = ShardManifest.read_from(str(built / "shards"))
    lineage = read_lineage(str(built / "shards"), m).to_pylist()
    train_counts = Counter(r["doc_id"] for r in lineage if r["file"].startswith("train/"))
    for name, s in m.sources.items():
        whole = int(s.target // s.unique_tokens)
        counts = Counter(c for d, c in train_counts.items() if d.startswith(name + ":"))
        assert set(counts) <= {whole, whole + 1}, (name, counts)
        seen = sum(counts.values())
        assert seen == s.documents if whole >= 1 else seen < s.documents
        assert sum(k * v for k, v in counts.items()) == s.rows
    # repeats of a document are numbered 0..n-1
    reps: dict[str, list[int]] = {}
    for r in lineage:
        if r["file"].startswith("train/"):
            reps.setdefault(r["doc_id"], []).append(r["repeat"])
    assert all(sorted(v) == list(range(len(v))) for v in reps.values())


def test_no_validation_document_in_training_and_split_by_id_hash(built: Path) -> None:
    shards = built / "shards"
    train = {r["doc_id"] for r in rows_of(shards, "train")}
    val = [r["doc_id"] for r in rows_of(shards, "validation")]
    assert val and len(val) == len(set(val)) and not train & set(val)
    all_ids = [i for t in _texts(0).values() for i in range(len(t))]
    assert 0.005 < len(val) / len(all_ids) < 0.04  # validation_fraction 0.02
    expected = mixture.validation_mask(mixture.doc_hashes(val), 0.02)
    assert expected.all()


def test_rows_are_the_tokenized_documents_with_eos_and_decode_to_the_corpus(built: Path) -> None:
    shards = built / "shards"
    m = ShardManifest.read_from(str(shards))
    sp = spm.SentencePieceProcessor(model_file=str(built / "tokenizer" / "tokenizer.model"))
    texts = {
        r["id"]: r["text"] for s in m.sources for r in iter_rows(str(built / "corpus" / s), ["id", "text"])
    }
    rows = rows_of(shards)
    assert m.token_type == "uint16" and m.eos_appended and not m.bos_prepended
    for r in rows[:: max(1, len(rows) // 300)]:
        ids = r["tokens"]
        assert ids.dtype == np.uint16 and ids[-1] == sp.eos_id() and sp.bos_id() not in ids
        assert ids[:-1].tolist() == sp.encode(texts[r["doc_id"]])
        assert sp.decode(ids[:-1].tolist()) == texts[r["doc_id"]]
        assert r["source"] == r["doc_id"].split(":")[0]
    reader = open_shard(str(shards / m.train[0].file))
    assert reader.schema.remove_metadata() == shard_schema(m.tokenizer.vocab_size)
    assert pa.ipc.open_file(str(shards / m.train[0].file)).num_record_batches >= 1


def test_rows_shuffled_globally_and_shards_sized_by_tokens(built: Path) -> None:
    m = ShardManifest.read_from(str(built / "shards"))
    assert len(m.train) == -(-m.train_tokens // m.shard_tokens)
    for f in m.train:  # uniform key ranges: sizes within sampling noise of the mean
        assert 0.5 * m.train_tokens / len(m.train) < f.tokens < 1.5 * m.train_tokens / len(m.train)
        assert sum(f.tokens_per_source.values()) == f.tokens
    rows = rows_of(built / "shards")
    first = [r["source"] for r in rows[:300]]
    assert len(set(first)) == 3  # sources interleaved, not concatenated
    assert sorted(r["doc_id"] for r in rows[:50]) != [r["doc_id"] for r in rows[:50]]


def test_lineage_points_at_every_row(built: Path) -> None:
    shards = built / "shards"
    table = pq.read_table(shards / "lineage.parquet")
    lineage = {(r["file"], r["row"]): r for r in table.to_pylist()}
    rows = rows_of(shards) + rows_of(shards, "validation")
    assert len(lineage) == len(rows) == table.num_rows
    for r in rows:
        entry = lineage[(r["file"], r["row"])]
        assert entry["doc_id"] == r["doc_id"] and entry["source"] == r["source"]


def test_zero_token_document_skipped_and_counted(tmp_path: Path) -> None:
    texts = _texts(1)
    texts["wiki"] = [*texts["wiki"][:40], "", ""]
    m = write_corpus(tmp_path, texts, weights=WEIGHTS, extra_toml=SHARDS.format(total=300_000))
    make_tokenizer(tmp_path / "tokenizer", texts["web"][:300])
    assert run(m) == 0
    out = ShardManifest.read_from(str(tmp_path / "shards"))
    assert out.sources["wiki"].skipped_empty == 2 and out.sources["web"].skipped_empty == 0
    assert TokenizedSource.read_from(str(tmp_path / "shards" / "tokenized" / "wiki")).skipped_empty == 2


# ---------------------------------------------------------------------------- caching, reruns


def test_rerun_changes_nothing_and_weight_change_only_remixes(built: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "job"
    shutil.copytree(built, root)
    tokenized = file_state(root / "shards" / "tokenized")
    shards_before = file_state(root / "shards" / "train")
    capsys.readouterr()
    assert run(root / "manifest.toml") == 0
    assert "nothing changed" in capsys.readouterr().out
    assert file_state(root / "shards" / "train") == shards_before
    new = {"web": 2.0, "code": 1.0, "wiki": 1.0}  # sums to 4: normalised with a note
    set_weights(root / "manifest.toml", new)
    assert run(root / "manifest.toml") == 0
    out = capsys.readouterr().out
    assert "note: weights sum to 4" in out and "tokenized cache reused" in out and "tokenizing" not in out
    assert file_state(root / "shards" / "tokenized") == tokenized  # not one tokenized file rewritten
    m = ShardManifest.read_from(str(root / "shards"))
    for name, w in new.items():
        assert abs(m.sources[name].achieved - w / 4) < 0.005
    assert any("weights sum to 4" in n for n in m.notes)


def test_dataflow_dry_run_translates_and_leaves_the_cache_alone(built: Path, tmp_path: Path, capsys) -> None:
    """`--runner DataflowRunner --dry_run True` (no credentials, no network): the tokenize job translates,
    no cached tokenized file is deleted or written, and the command says why it stops before the mix."""
    pytest.importorskip("google.auth", reason="apache-beam[gcp] is not installed: Dataflow cannot translate")
    root = tmp_path / "job"
    shutil.copytree(built, root)
    before = file_state(root / "shards")
    capsys.readouterr()
    flags = ["--runner", "DataflowRunner", "--project", "corral-test", "--region", "us-central1",
             "--temp_location", "gs://corral-test/tmp", "--dry_run", "True"]  # fmt: skip
    assert run(root / "manifest.toml", "--force", *flags) == 0
    assert "dry run: the tokenize job translated" in capsys.readouterr().out
    assert file_state(root / "shards") == before


def test_seed_change_reshuffles_and_keeps_the_validation_set(built: Path, tmp_path: Path) -> None:
    root = tmp_path / "job"
    shutil.copytree(built, root)
    before_val = sorted(r["doc_id"] for r in rows_of(root / "shards", "validation"))
    before = [r["doc_id"] for r in rows_of(root / "shards")]
    text = (root / "manifest.toml").read_text().replace("[shards]\n", "[shards]\nseed = 123\n")
    (root / "manifest.toml").write_text(text)
    assert run(root / "manifest.toml") == 0
    assert sorted(r["doc_id"] for r in rows_of(root / "shards", "validation")) == before_val
    after = [r["doc_id"] for r in rows_of(root / "shards")]
    assert after[:100] != before[:100] and ShardManifest.read_from(str(root / "shards")).seed == 123


def test_new_tokenizer_retokenizes(built: Path, tmp_path: Path, capsys) -> None:
    root = tmp_path / "job"
    shutil.copytree(built, root)
    shutil.rmtree(root / "tokenizer")
    make_tokenizer(root / "tokenizer", _texts(0)["wiki"][:60], vocab_size=500)
    new_sha = TokenizerCard.read_from(str(root / "tokenizer")).sha256
    capsys.readouterr()
    assert run(root / "manifest.toml") == 0
    assert "tokenized cache is stale" in capsys.readouterr().out
    m = ShardManifest.read_from(str(root / "shards"))
    assert m.tokenizer.sha256 == new_sha
    for name in m.sources:
        assert (
            TokenizedSource.read_from(str(root / "shards" / "tokenized" / name)).tokenizer_sha256 == new_sha
        )
    sp = spm.SentencePieceProcessor(model_file=str(root / "tokenizer" / "tokenizer.model"))
    row = rows_of(root / "shards")[0]
    texts = {r["id"]: r["text"] for r in iter_rows(str(root / "corpus" / row["source"]), ["id", "text"])}
    assert row["tokens"][:-1].tolist() == sp.encode(texts[row["doc_id"]])


@pytest.mark.slow
def test_one_and_two_workers_give_identical_bytes(built: Path, tmp_path: Path) -> None:
    text = (built / "manifest.toml").read_text()
    tokenizer = built / "tokenizer"
    for name, workers in (("one", "1"), ("two", "2")):
        manifest = built / f"m-{name}.toml"
        out = tmp_path / name
        manifest.write_text(
            text.replace('tokenizer = "tokenizer"', f'tokenizer = "{tokenizer}"\noutput = "{out}"')
        )
        assert run(manifest, "--direct_num_workers", workers) == 0
    one, two = file_state(tmp_path / "one"), file_state(tmp_path / "two")
    assert {k: v[1] for k, v in one.items()} == {k: v[1] for k, v in two.items()}
    assert any(k.startswith("train/") for k in one) and any(k.startswith("tokenized/") for k in one)


# ------------------------------------------------------------------------------------ takedowns


def test_drop_ids_removes_exactly_those_documents_and_rewrites_only_their_files(
    built: Path, tmp_path: Path
) -> None:
    root = tmp_path / "job"
    shutil.copytree(built, root)
    shards = root / "shards"
    before = rows_of(shards) + rows_of(shards, "validation")
    lineage = pq.read_table(shards / "lineage.parquet").to_pylist()
    repeated = next(d for d, c in Counter(r["doc_id"] for r in lineage).items() if c >= 2)
    val_doc = next(r["doc_id"] for r in lineage if r["file"].startswith("validation/"))
    drop = {repeated, val_doc, "web:000003"}
    (tmp_path / "ids.txt").write_text("# takedown 2024-05\n" + "\n".join(sorted(drop)) + "\nnot-a-document\n")
    state = file_state(shards)
    assert run(root / "manifest.toml", "--drop-ids", str(tmp_path / "ids.txt")) == 0
    after = rows_of(shards) + rows_of(shards, "validation")
    key = lambda r: (r["doc_id"], r["tokens"].tobytes())  # noqa: E731
    assert Counter(map(key, after)) == Counter(key(r) for r in before if r["doc_id"] not in drop)
    touched = {r["file"] for r in before if r["doc_id"] in drop}
    new_state = file_state(shards)
    for rel, (mtime, sha) in state.items():
        if rel.startswith(("train/", "validation/")):
            assert (new_state[rel] != (mtime, sha)) == (rel in touched), rel
    m = ShardManifest.read_from(str(shards))
    assert not {r["doc_id"] for r in read_lineage(str(shards), m).to_pylist()} & drop
    assert sum(f.rows for f in m.train + m.validation) == len(after)
    assert m.sources["web"].tokens == sum(len(r["tokens"]) for r in rows_of(shards) if r["source"] == "web")
    assert (shards / "dropped_ids.txt").read_text().split() == sorted(drop | {"not-a-document"})
    assert inspect_main([str(shards), "--rows", "0"]) == 0
    # later runs keep the takedown: a rerun changes nothing, a re-mix leaves the ids out
    assert (
        run(root / "manifest.toml") == 0 and file_state(shards)["manifest.json"] == new_state["manifest.json"]
    )
    set_weights(root / "manifest.toml", {"web": 0.5, "code": 0.25, "wiki": 0.25})
    assert run(root / "manifest.toml") == 0
    remixed = {r["doc_id"] for r in rows_of(shards) + rows_of(shards, "validation")}
    assert not remixed & drop
    assert sum(s.dropped_documents for s in ShardManifest.read_from(str(shards)).sources.values()) == 3


# ------------------------------------------------------------------------------------- inspect


def test_inspect_prints_the_mix_verifies_checksums_and_decodes(built: Path, tmp_path: Path, capsys) -> None:
    capsys.readouterr()
    assert inspect_main([str(built / "shards")]) == 0
    out = capsys.readouterr().out
    assert "target" in out and "achieved" in out and "epochs" in out
    assert "checksums: all" in out and "tokens, EOS)" in out
    copy = tmp_path / "shards"
    shutil.copytree(built / "shards", copy)
    victim = copy / ShardManifest.read_from(str(copy)).train[1].file
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert inspect_main([str(copy), "--rows", "0"]) == 1
    assert f"{victim.parent.name}/{victim.name}: sha256" in capsys.readouterr().out


# ----------------------------------------------------------------------------------- bad input


def test_total_tokens_missing_or_not_positive_is_refused_with_the_key(tmp_path: Path, capsys) -> None:
    m = write_corpus(tmp_path, {"web": ["a b c"] * 5}, extra_toml="[shards]\n")
    assert run(m) == 2
    assert "shards.total_tokens" in capsys.readouterr().err
    m.write_text(m.read_text() + "total_tokens = 0\n")
    with pytest.raises(ManifestError, match=r"shards\.total_tokens"):
        load_manifest(m)
    assert run(m) == 2 and "shards.total_tokens" in capsys.readouterr().err


def test_weight_on_a_source_without_documents_is_refused_naming_it(tmp_path: Path, capsys) -> None:
    texts = _texts(2)
    m = write_corpus(
        tmp_path, {"web": texts["web"][:200], "empty": []}, extra_toml=SHARDS.format(total=10_000)
    )
    make_tokenizer(tmp_path / "tokenizer", texts["web"][:200])
    assert run(m) == 2
    err = capsys.readouterr().err
    assert "sources.empty.weight" in err and "no documents" in err
    # documents that all encode to zero tokens: refused after tokenizing, naming the source
    write_source(tmp_path / "corpus" / "empty", "empty", ["", ""])
    assert run(m) == 2
    err = capsys.readouterr().err
    assert "sources.empty.weight" in err and "no training documents" in err


def test_epochs_above_max_warn_and_above_the_hard_limit_refuse(tmp_path: Path, capsys) -> None:
    texts = _texts(3)
    small = {"web": texts["web"][:300], "tiny": texts["wiki"][:3]}
    extra = SHARDS.format(total=200_000) + "max_epochs = 4\n"
    m = write_corpus(tmp_path, small, weights={"web": 0.9, "tiny": 0.1}, extra_toml=extra)
    make_tokenizer(tmp_path / "tokenizer", texts["web"][:300])
    assert run(m) == 0
    out = capsys.readouterr().out
    assert "source 'tiny'" in out and "above max_epochs=4" in out
    shards = ShardManifest.read_from(str(tmp_path / "shards"))
    assert any("'tiny'" in n and "epochs" in n for n in shards.notes)
    m.write_text(m.read_text().replace("total_tokens = 200000", "total_tokens = 20000000"))
    assert run(m) == 2
    err = capsys.readouterr().err
    assert "sources.tiny.weight" in err and "hard limit of 100" in err


def test_tokenizer_card_that_does_not_match_its_model_is_refused(tmp_path: Path, capsys) -> None:
    m = write_corpus(tmp_path, {"web": ["some text here"] * 20}, extra_toml=SHARDS.format(total=1000))
    make_tokenizer(tmp_path / "tokenizer", ["some text here", "other words"] * 50, vocab_size=280)
    card = json.loads((tmp_path / "tokenizer" / "card.json").read_text())
    card["sha256"] = "0" * 64
    (tmp_path / "tokenizer" / "card.json").write_text(json.dumps(card))
    assert run(m) == 2
    assert "differs from" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "tokenizer")
    assert run(m) == 2
    assert "no tokenizer card" in capsys.readouterr().err


def test_vocabulary_above_65535_gives_uint32_tokens(tmp_path: Path) -> None:
    texts = _texts(4)
    corpus = {"web": [*texts["web"][:150], "rare <sym65590> and <sym3> end"]}
    m = write_corpus(tmp_path, corpus, extra_toml=SHARDS.format(total=100_000))  # > 1 epoch: every doc in
    make_tokenizer(tmp_path / "tokenizer", texts["web"][:300], symbols=65_600)
    sp = spm.SentencePieceProcessor(model_file=str(tmp_path / "tokenizer" / "tokenizer.model"))
    rare = sp.piece_to_id("<sym65590>")
    assert sp.get_piece_size() > 65_535 and rare > 65_535
    assert run(m) == 0
    out = ShardManifest.read_from(str(tmp_path / "shards"))
    assert out.token_type == "uint32" and out.tokenizer.vocab_size == sp.get_piece_size()
    assert out.sources["web"].epochs > 1
    rows = rows_of(tmp_path / "shards") + rows_of(tmp_path / "shards", "validation")
    assert all(r["tokens"].dtype == np.uint32 for r in rows)
    doc = next(r for r in rows if r["doc_id"] == "web:000150")
    assert rare in doc["tokens"].tolist() and sp.decode(doc["tokens"][:-1].tolist()) == corpus["web"][-1]
    cache = TokenizedSource.read_from(str(tmp_path / "shards" / "tokenized" / "web"))
    assert cache.token_type == "uint32"


# ------------------------------------------------------------------------------ pure mixture math


def test_plan_epochs_whole_repeats_and_fraction_in_tokens() -> None:
    plans, warnings = mixture.plan_mixture(
        {"a": 3, "b": 1}, {"a": 1000, "b": 100}, {"a": 10, "b": 5}, 2000, 16, 100
    )
    assert plans["a"].weight == 0.75 and plans["a"].target == 1500 and plans["a"].whole == 1
    assert plans["a"].fraction_tokens == 500 and plans["a"].epochs == 1.5
    assert plans["b"].target == 500 and plans["b"].whole == 5 and plans["b"].fraction_tokens == 0
    assert not warnings
    _, warnings = mixture.plan_mixture({"a": 1, "b": 1}, {"a": 10, "b": 1000}, {"a": 1, "b": 1}, 400, 16, 100)
    assert warnings == [
        "source 'a': 20.00 epochs is above max_epochs=16 (each of its documents is seen that often)"
    ]
    with pytest.raises(mixture.MixtureError, match="'a'.*hard limit"):
        mixture.plan_mixture({"a": 1}, {"a": 10}, {"a": 1}, 10_000, 16, 100)
    with pytest.raises(mixture.MixtureError, match="'b'.*no training documents"):
        mixture.plan_mixture({"a": 1, "b": 1}, {"a": 10}, {"a": 1}, 10, 16, 100)


def test_fractional_cut_takes_the_closest_prefix_in_key_order() -> None:
    rng = np.random.default_rng(0)
    ids = [f"d{i}" for i in range(5000)]
    lengths = rng.integers(1, 400, size=len(ids))
    keys = mixture.sample_keys(mixture.doc_hashes(ids), seed=1, repeat=0)
    for want in (1, 777, 123_456, int(lengths.sum()) - 1):
        b = mixture.find_boundary(mixture.token_histogram(keys, lengths), want)
        cands = [
            (int(k), d, int(n))
            for k, d, n in zip(keys, ids, lengths, strict=True)
            if mixture.key_bins([k])[0] == b.bin
        ]
        cut = mixture.choose_cut(b, cands)
        taken = mixture.in_sample(keys, ids, cut)
        got = int(lengths[taken].sum())
        assert got == cut.sample_tokens
        order = np.lexsort((np.array(ids), keys))  # brute force: best prefix of the key order
        prefix = np.concatenate([[0], np.cumsum(lengths[order])])
        assert abs(got - want) == np.abs(prefix - want).min()
        assert taken[order].tolist() == sorted(taken[order].tolist(), reverse=True)  # a prefix


def test_keys_are_functions_of_seed_id_and_repeat() -> None:
    h = mixture.doc_hashes(["x", "y", "z"])
    assert (mixture.sample_keys(h, 1, 0) == mixture.sample_keys(h[::-1], 1, 0)[::-1]).all()
    assert (mixture.sample_keys(h, 1, 0) != mixture.sample_keys(h, 2, 0)).all()
    assert (mixture.sample_keys(h, 1, 0) != mixture.sample_keys(h, 1, 1)).all()
    keys = mixture.shuffle_keys(np.repeat(h, 2), np.array([0, 1] * 3), 5)
    assert len(set(keys.tolist())) == 6
    assert mixture.validation_mask(h, 0.0).sum() == 0 and mixture.validation_mask(h, 0.999999).all()
    shard = mixture.shard_of(
        mixture.sample_keys(mixture.doc_hashes([str(i) for i in range(10_000)]), 0, 0), 7
    )
    assert shard.min() == 0 and shard.max() == 6 and np.bincount(shard).min() > 1200
    index, repeat = mixture.repeats_of(2, np.array([True, False, True]))
    assert index.tolist() == [0, 0, 0, 1, 1, 2, 2, 2] and repeat.tolist() == [0, 1, 2, 0, 1, 0, 1, 2]


def test_source_whose_documents_all_fall_in_validation_is_refused(tmp_path: Path, capsys) -> None:
    texts = _texts(5)
    extra = '[shards]\ntokenizer = "tokenizer"\ntotal_tokens = 50000\nvalidation_fraction = 0.9\n'
    tiny = texts["wiki"][:2]  # ids tiny:000000 and tiny:000001, both held out at 0.9:
    assert mixture.validation_mask(mixture.doc_hashes(["tiny:000000", "tiny:000001"]), 0.9).all()
    m = write_corpus(tmp_path, {"web": texts["web"][:100], "tiny": tiny}, extra_toml=extra)
    make_tokenizer(tmp_path / "tokenizer", texts["web"][:100])
    assert run(m) == 2
    err = capsys.readouterr().err
    assert "sources.tiny.weight" in err and "validation split" in err
    assert not (tmp_path / "shards" / "manifest.json").exists()


def test_tokenized_file_batches_stay_under_the_token_cap(tmp_path: Path, monkeypatch) -> None:
    import manifests.shards as shards_format

    monkeypatch.setattr(shards_format, "MAX_BATCH_TOKENS", 100)
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 80, size=50)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = rng.integers(0, 300, size=int(offsets[-1]))
    ids = [f"d{i}" for i in range(50)]
    path = str(tmp_path / "t.arrow")
    sha = shards_format.write_tokenized(path, ids, values, offsets, 300, "abc", "web")
    assert sha == storage.sha256_of(path)
    reader = pa.ipc.open_file(path)
    assert reader.num_record_batches > 1
    for i in range(reader.num_record_batches):
        batch = reader.get_batch(i)
        assert batch.num_rows == 1 or len(batch.column("tokens").values) <= 100
    table = shards_format.read_tokenized(path, "abc")
    assert table.column("doc_id").to_pylist() == ids
    flat = np.concatenate([np.asarray(c.values) for c in table.column("tokens").chunks])
    assert (flat == values).all()
    with pytest.raises(ValueError, match="tokens of tokenizer abc"):
        shards_format.read_tokenized(path, "other")


def test_share_error_explained_only_above_half_a_point() -> None:
    assert mixture.explain_share_error("a", 4990, 5000, 0.5, 100, 10_000) is None
    note = mixture.explain_share_error("books", 1400, 1500, 0.15, 6000, 9800)
    assert note is not None and "'books'" in note and "6,000 tokens" in note
    assert "-1.02 pp from its own sample" in note and "+0.31 pp because the stream holds 9,800" in note
