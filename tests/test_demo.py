"""`corral demo`: the whole story end to end on a reduced setting (sample scale 0.3, a few training steps),
a second run that reuses every stage, a killed run that continues, the ecosystem proof (transformers loads
the export and greedy-decodes the same tokens as `corral generate`; `datasets` loads the corpus Parquet),
the `--data` layout of real dumps, and the refusals before any work (unwritable folder, too little disk)."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import manifests.schema  # noqa: F401  (imported before a forked child drops its privileges)
import manifests.storage  # noqa: F401
import manifests.training  # noqa: F401
from corral import demo
from trainer.checkpoint import complete_checkpoints

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SOURCES = ("commoncrawl", "c4", "github", "wikipedia", "books", "arxiv", "stackexchange")
STAGES = [name for name, _ in demo.STAGES]
# The reduced setting: a third of the sample (and of the token budget), 4 steps of 2,048 tokens.
TRAIN = [
    "--train-set", "train.batch_tokens=2048",
    "--train-set", "train.micro_batch=8",
    "--train-set", "eval.every=2",
    "--train-set", "eval.sequences=8",
    "--train-set", "eval.samples=1",
    "--train-set", "checkpoint.every=2",
    "--train-set", "optim.warmup_steps=1",
    "--train-set", "log.every=1",
    "--train-set", "log.tensorboard=false",
]  # fmt: skip
SMALL = ["--scale", "0.3", "--max-new-tokens", "8", "--heartbeat", "0", *TRAIN]


def _demo(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = demo.main(list(argv))
    return rc, out.getvalue()


def _statuses(text: str) -> dict[str, str]:
    """Stage name → what the progress line says it did (`ran`, `reused`, `skipped`)."""
    out = {}
    for line in text.splitlines():
        if line.startswith("---- corral demo [") and "] " in line and ": " in line:
            name = line.split("] ", 1)[1].split(":", 1)[0]
            if " running for " not in line:
                out[name] = line.split(": ", 1)[1].split(":", 1)[0]
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from filters.perplexity import LMTrainingError, kenlm_tool

    try:
        kenlm_tool("lmplz")
    except LMTrainingError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("demo") / "run"
    rc, text = _demo("--out", str(root), "--train-steps", "4", *SMALL)
    assert rc == 0, text
    return root, text


# ----------------------------------------------------------------------------------------------- the story


@pytest.mark.slow
def test_demo_writes_every_stage_of_the_contract(demo_run: tuple[Path, str]) -> None:
    root, text = demo_run
    assert (root / "data" / "planted.json").is_file()
    assert (root / "lm" / "lm.json").is_file()
    for source in SOURCES:
        m = json.loads((root / "corpus" / source / "manifest.json").read_text())
        assert m["read"] == m["kept"] + sum(m["dropped"].values()) and m["kept"] > 0, source
        assert list((root / "corpus" / source).glob("part-*.parquet")), source
    for name in ("card.json", "tokenizer.model", "tokenizer.json"):
        assert (root / "tokenizer" / name).is_file(), name
    shards = json.loads((root / "shards" / "manifest.json").read_text())
    assert set(shards["sources"]) == set(SOURCES) and shards["train"]
    assert json.loads((root / "train" / "summary.json").read_text())["steps"] == 4
    steps = [json.loads(line)["step"] for line in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert (root / "train" / "final" / "model.safetensors").is_file()
    assert (root / "train" / "checkpoints").is_dir()
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
    ):
        assert (root / "hf" / name).is_file(), name  # export-hf copied the tokenizer folder's HF files
    gens = json.loads((root / "generations.json").read_text())
    assert gens["max_new_tokens"] == 8 and len(gens["prompts"]) == len(demo.PROMPTS)
    for g in gens["prompts"]:
        assert set(g) == {"prompt", "corral_ids", "corral_text", "hf_ids", "hf_text", "equal"}
    # the resolved copies point every stage into the run folder
    manifest = manifests.schema.load_manifest(root / "demo.toml")
    assert manifest.output_dir().startswith(str(root)) and manifest.shards_dir() == str(root / "shards")
    assert all(p.startswith(str(root / "data")) for s in SOURCES for p in manifest.inputs(s))
    assert manifests.training.load_config(root / "train.toml").run_dir == str(root / "train")
    # one progress display: every stage announced as i/N, then the summary with the headline numbers
    for i, name in enumerate(STAGES, start=1):
        assert f"[{i}/{len(STAGES)}] {name}" in text
    assert _statuses(text) == {
        name: ("skipped" if name == "report" and not _has_report() else "ran") for name in STAGES
    }
    summary = text.split("corral demo finished.", 1)[1]
    for source in SOURCES:
        assert f"    {source} " in summary
    assert "train loss" in summary and "validation loss" in summary and "total " in summary
    ledger = json.loads((root / demo.LEDGER).read_text())
    assert set(ledger["stages"]) >= set(STAGES) - {"report"}
    assert ledger["stages"]["train"]["done"] is True


def _has_report() -> bool:
    return (REPO / "corral" / "report.py").is_file()


@pytest.mark.slow
def test_second_run_reuses_every_stage(demo_run: tuple[Path, str]) -> None:
    root, _ = demo_run
    final = root / "train" / "final" / "model.safetensors"
    before = (final.stat().st_mtime_ns, sorted(p.name for p in (root / "train" / "checkpoints").iterdir()))
    metrics = (root / "train" / "metrics.jsonl").read_text()
    gens = (root / "generations.json").read_text()
    rc, text = _demo("--out", str(root), "--train-steps", "4", *SMALL)
    assert rc == 0, text
    statuses = _statuses(text)
    assert set(statuses) == set(STAGES)
    assert all(s in ("reused", "skipped") for s in statuses.values()), statuses
    assert (
        final.stat().st_mtime_ns,
        sorted(p.name for p in (root / "train" / "checkpoints").iterdir()),
    ) == before
    assert (root / "train" / "metrics.jsonl").read_text() == metrics  # not retrained, not even resumed
    assert (root / "generations.json").read_text() == gens
    last = json.loads((root / demo.LEDGER).read_text())["last_run"]
    assert {n: v["status"] for n, v in last.items()} == statuses


# ------------------------------------------------------------------------------------- ecosystem proof


@pytest.mark.slow
def test_transformers_greedy_tokens_equal_corral_generate(
    demo_run: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The exported folder, loaded with AutoModelForCausalLM + AutoTokenizer, gives the same greedy tokens
    as `corral generate` on train/final: checked here by teacher forcing (transformers' argmax at every
    position of prompt + corral's tokens) and by the `corral generate` command itself."""
    import sentencepiece as spm
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model.generate import main as generate_main

    root, _ = demo_run
    gens = json.loads((root / "generations.json").read_text())
    assert all(g["equal"] and g["corral_ids"] == g["hf_ids"] for g in gens["prompts"])
    sp = spm.SentencePieceProcessor(model_file=str(root / "tokenizer" / "tokenizer.model"))
    tok = AutoTokenizer.from_pretrained(str(root / "hf"))
    model = AutoModelForCausalLM.from_pretrained(str(root / "hf"), dtype=torch.float32).eval()
    for g in gens["prompts"]:
        ids = [sp.bos_id(), *sp.encode(g["prompt"])]
        assert [tok.bos_token_id, *tok(g["prompt"], add_special_tokens=False).input_ids] == ids
        new = g["corral_ids"]
        assert new and len(new) <= gens["max_new_tokens"]
        with torch.no_grad():
            logits = model(torch.tensor([ids + new])).logits[0]
        greedy = logits[len(ids) - 1 : len(ids) + len(new) - 1].argmax(-1).tolist()
        assert greedy == new, g["prompt"]
        assert tok.decode(new, skip_special_tokens=True) == g["hf_text"]
        capsys.readouterr()
        argv = ["--checkpoint", str(root / "train" / "final"), "--prompt-ids", ",".join(map(str, ids))]
        assert generate_main([*argv, "--temperature", "0", "--max-new-tokens", str(len(new))]) == 0
        assert [int(t) for t in capsys.readouterr().out.strip().split(",")] == new


@pytest.mark.slow
def test_corpus_parquet_loads_with_datasets(
    demo_run: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets
    import pyarrow.parquet as pq

    root, _ = demo_run
    files = {s: sorted(str(p) for p in (root / "corpus" / s).glob("part-*.parquet")) for s in SOURCES}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(tmp_path / "cache"))
    for source in SOURCES:
        m = json.loads((root / "corpus" / source / "manifest.json").read_text())
        assert ds[source].num_rows == m["kept"], source
        assert {"id", "source", "text", "lang", "bucket", "meta"} <= set(ds[source].column_names)
        ids = [i for f in files[source] for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
        assert ds[source]["id"] == ids
        assert set(ds[source]["source"]) == {source}


# --------------------------------------------------------------------------------- killed, then continued


@pytest.mark.slow
def test_killed_demo_continues_from_its_checkpoint(demo_run: tuple[Path, str], tmp_path: Path) -> None:
    """A run folder moved elsewhere keeps its finished stages; a demo killed (SIGKILL, no chance to save)
    during training continues from the newest checkpoint on the next run, and ends where an unbroken
    run would."""
    src, _ = demo_run
    root = tmp_path / "moved"
    root.mkdir()
    for name in ("data", "lm", "corpus", "tokenizer", "shards"):
        shutil.copytree(src / name, root / name)
    shutil.copy(src / demo.LEDGER, root / demo.LEDGER)
    argv = ["--out", str(root), "--train-steps", "6", *SMALL]
    env = {**os.environ, "CORRAL_TRAIN_PAUSE_AT_STEP": "3"}
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "demo", *argv],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=REPO,
    )
    marker = root / "train" / "paused-at-3"
    try:
        deadline = time.monotonic() + 400
        while not marker.exists():
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()
            assert time.monotonic() < deadline, "training never reached step 3"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
    killed = (tmp_path / "killed.log").read_text()
    assert {n: s for n, s in _statuses(killed).items() if n in STAGES[:5]} == dict.fromkeys(
        STAGES[:5], "reused"
    )
    assert not (root / "train" / "final").exists()
    assert [s for s, _ in complete_checkpoints(str(root / "train"))] == [2]

    rc, text = _demo(*argv)
    assert rc == 0, text
    assert "resuming from" in text and "step-00000002" in text
    statuses = _statuses(text)
    assert all(statuses[n] == "reused" for n in STAGES[:5]) and statuses["train"] == "ran"
    assert json.loads((root / "train" / "summary.json").read_text())["steps"] == 6
    steps = [json.loads(line)["step"] for line in (root / "train" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # the lines of the lost step 3 were replaced, not duplicated
    gens = json.loads((root / "generations.json").read_text())
    assert all(g["equal"] for g in gens["prompts"])


# ------------------------------------------------------------------------------------- refused before work


def test_refuses_a_run_folder_behind_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    rc = demo.main(["--out", str(blocker / "demo")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{blocker} is a file, not a folder" in err and "--out" in err
    assert blocker.read_text() == "not a folder"


def _run_unprivileged(argv: list[str], log: Path) -> int:
    """`demo.main(argv)` in a forked child that dropped root for `nobody` (root passes every permission
    check, so a read-only folder means nothing to it). Everything the child runs is imported already."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            sys.stdout = sys.stderr = os.fdopen(fd, "w", buffering=1)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = demo.main(argv)
        except BaseException as exc:  # noqa: BLE001
            print(f"child failed: {exc!r}")
        finally:
            sys.stdout.flush()
            os._exit(code)
    # A forked child of a threaded process can deadlock on a lock another thread held at the fork:
    # wait a bounded time, then kill it and fail, rather than hang the whole test session.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the unprivileged demo child did not finish in 120 s; it printed: {log.read_text()!r}")


def test_refuses_a_folder_without_write_permission(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As root: a root-owned 0755 folder, and the demo run as `nobody` in a forked child. Otherwise: a
    0555 folder of our own."""
    parent = Path(tempfile.mkdtemp(prefix="corral-demo-ro-"))
    try:
        target = parent / "demo"
        if os.geteuid() == 0:
            parent.chmod(0o755)
            log = parent.with_name(parent.name + ".log")
            try:
                rc = _run_unprivileged(["--out", str(target)], log)
                err = log.read_text()
            finally:
                log.unlink(missing_ok=True)
        else:
            parent.chmod(0o555)
            rc = demo.main(["--out", str(target)])
            err = capsys.readouterr().err
        assert rc == 2, err
        assert f"no write permission in {parent}" in err and "--out" in err
        assert not target.exists()
    finally:
        parent.chmod(0o755)
        shutil.rmtree(parent)


def test_refuses_too_little_free_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "demo"
    rc = demo.main(["--out", str(root), "--min-free-mb", str(10**12)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not enough free disk" in err and "MiB free" in err
    assert not root.exists()  # nothing written, not even the folder


def test_need_is_checked_against_what_the_disk_has(tmp_path: Path) -> None:
    """The default need (measured on the sample) against the real free space of this machine's disk."""
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(demo.DemoError, match="not enough free disk"):
        demo.check_disk(tmp_path / "x", free + 2**30)
    demo.check_disk(tmp_path / "x", min(demo.NEED_BASE_BYTES, free // 2))


# ------------------------------------------------------------------------------------------- --data layout


def _download_layout(root: Path) -> Path:
    """Real formats laid out as `corral download` and the shared sample do: one folder per source."""
    data = root / "data"
    wet = data / "commoncrawl" / "crawl-data" / "CC-MAIN-2024-22" / "segments" / "1715.39" / "wet"
    wet.mkdir(parents=True)
    (wet / "CC-MAIN-2024-22-00000.warc.wet.gz").write_bytes(
        gzip.compress((FIXTURES / "build_cc.warc.wet").read_bytes())
    )
    (data / "commoncrawl" / "x.warc.gz").write_bytes(b"")  # WARC beside WET: WET wins
    wiki = data / "enwiki" / "20220701"
    wiki.mkdir(parents=True)
    (wiki / "enwiki-20220701-pages-articles.xml.bz2").write_bytes(
        bz2.compress((FIXTURES / "build_enwiki.xml").read_bytes())
    )
    (wiki / "enwiki-20220701-pages-articles-multistream-index.txt.bz2").write_bytes(b"")
    (data / "gutenberg").mkdir()
    shutil.copy(FIXTURES / "gutenberg_old_smallprint.txt", data / "gutenberg" / "pg1.txt")
    shutil.copytree(FIXTURES / "arxiv_paper", data / "arxiv" / "paper")
    (data / "c4").mkdir()
    shutil.copy(FIXTURES / "build_c4.jsonl", data / "c4" / "c4-train.00000-of-01024.json")
    (data / "langid").mkdir()
    (data / "langid" / "sentences.tsv").write_text("en\thello\n")
    (data / "stackexchange").mkdir()  # a source folder holding nothing its reader reads
    (data / "stackexchange" / "readme.md").write_text("empty\n")
    return data


def test_data_folders_map_to_sources_and_readers(tmp_path: Path) -> None:
    data = _download_layout(tmp_path)
    manifest, notes, inputs, small = demo.data_manifest(tmp_path / "run", data, "auto", [])
    sources = manifest["sources"]
    assert list(sources) == ["commoncrawl", "c4", "wikipedia", "books", "arxiv"]
    assert {n: s["reader"] for n, s in sources.items()} == {
        "commoncrawl": "wet",
        "c4": "c4_json",
        "wikipedia": "wikipedia_xml",
        "books": "gutenberg",
        "arxiv": "arxiv",
    }
    assert sources["arxiv"]["inputs"] == [str(data / "arxiv" / "paper")]  # the paper folder, not each .tex
    assert small and sources["commoncrawl"]["ccnet"] == {
        "keep_buckets": ["head", "middle", "tail"],
        "wikiref_threshold": 0.0,
    }
    assert sources["wikipedia"]["weight"] == 0.045  # the paper's weights, from manifests/demo.toml
    assert any("langid/: not a source folder" in n for n in notes)
    assert any("stackexchange/: no file" in n for n in notes)
    assert any("not found in" in n and "github" in n for n in notes)
    assert any("tiny sample" in n for n in notes)
    assert not any(p.name.endswith((".warc.gz", "index.txt.bz2")) for p in inputs)
    path = tmp_path / "m.toml"
    path.write_text(demo.dump_toml(manifest))
    m = manifests.schema.load_manifest(path)  # valid, and every glob matches exactly the chosen files
    from pipeline.read import match_inputs

    matched = sorted(f.path for s in m.sources for f in match_inputs(m, s))
    expected = [str(p) for p in inputs if "arxiv" not in p.parts] + [str(data / "arxiv" / "paper")]
    assert matched == sorted(expected)


def test_data_without_wikipedia_turns_the_lm_stages_off(tmp_path: Path) -> None:
    data = _download_layout(tmp_path)
    shutil.rmtree(data / "enwiki")
    manifest, notes, _, _ = demo.data_manifest(tmp_path / "run", data, "off", [])
    assert manifest["sources"]["commoncrawl"]["ccnet"] == {"perplexity": False, "wikiref": False}
    assert not demo.needs_lm(manifest)
    assert any("no Wikipedia folder" in n for n in notes)


def test_data_folder_with_no_source_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "langid").mkdir()
    assert demo.main(["--out", str(tmp_path / "run"), "--data", str(tmp_path)]) == 2
    assert "holds none of the seven sources" in capsys.readouterr().err
    assert demo.main(["--out", str(tmp_path / "run"), "--data", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_capped_weights_keep_every_source_under_the_cap() -> None:
    weights = {"cc": 0.67, "c4": 0.15, "wiki": 0.18}
    tokens = {"cc": 1_000, "c4": 50_000, "wiki": 1_000_000}
    new, total = demo.capped_weights(weights, tokens, 300_000, 8.0)
    assert total == 300_000 and abs(sum(new.values()) - 1) < 1e-9
    assert new["cc"] == pytest.approx(8 * 1_000 / 300_000)  # capped exactly
    assert new["c4"] / new["wiki"] == pytest.approx(0.15 / 0.18)  # the rest keeps the paper's proportions
    assert all(new[s] * total / tokens[s] <= 8.0 + 1e-9 for s in weights)
    assert demo.capped_weights(weights, {"cc": 1e6, "c4": 1e6, "wiki": 1e6}, 300_000, 8.0) == (
        pytest.approx({"cc": 0.67, "c4": 0.15, "wiki": 0.18}),
        300_000,
    )
    small, total = demo.capped_weights(weights, {"cc": 10, "c4": 10, "wiki": 10}, 300_000, 8.0)
    assert total == 240 and small == pytest.approx({"cc": 1 / 3, "c4": 1 / 3, "wiki": 1 / 3})


@pytest.mark.slow
@pytest.mark.realdata
def test_demo_on_the_shared_real_dumps(shared_data: Path, tmp_path: Path) -> None:
    from filters.perplexity import LMTrainingError, kenlm_tool

    try:
        kenlm_tool("lmplz")
    except LMTrainingError as exc:
        pytest.skip(str(exc))
    root = tmp_path / "real"
    rc, text = _demo("--out", str(root), "--data", str(shared_data), "--train-steps", "2", *SMALL[2:])
    assert rc == 0, text
    manifest = manifests.schema.load_manifest(root / "demo.toml")
    assert set(manifest.sources) == set(SOURCES)
    assert "tiny sample" in text and "capped at 8 epochs" in text  # the relaxations are said
    shards = json.loads((root / "shards" / "manifest.json").read_text())
    assert max(s["epochs"] for s in shards["sources"].values()) < 100
    assert all(g["equal"] for g in json.loads((root / "generations.json").read_text())["prompts"])
