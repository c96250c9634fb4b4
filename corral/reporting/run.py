"""What a run folder holds, read defensively: every stage's output that exists, and a list of what does not.

A run folder is what `corral demo` writes (`data/`, `lm/`, `corpus/<source>/`, `tokenizer/`, `shards/`,
`train/`, `hf/`, `generations.json`). The report is read while a run may still be going or after one was
killed, so nothing here raises on a missing, half-written or unreadable stage: each becomes a `Stage`
entry with its status and the reason, and the figures draw what is there. The manifests are read with
their own pydantic models (`manifests/`), so the report reads exactly what the stages wrote.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filters.sources.compression import open_decompressed
from manifests import storage
from manifests.corpus import MANIFEST as CORPUS_MANIFEST
from manifests.corpus import CorpusManifest
from manifests.lm_index import LM_INDEX, LMIndex
from manifests.shards import MANIFEST as SHARDS_MANIFEST
from manifests.shards import ShardManifest
from manifests.tokenizer import CARD, TokenizerCard

OK, MISSING, INCOMPLETE, UNREADABLE = "ok", "missing", "incomplete", "unreadable"
# Compressed input bytes of one source the report decompresses to measure its raw size (the demo's are a
# few MB); beyond it, or for inputs that are not local files, the raw size is not shown.
RAW_MEASURE_LIMIT = 256 << 20
_SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c"


@dataclass
class Stage:
    """One stage of the run: where its output lives, whether it is there, and what is wrong if not."""

    name: str
    path: str  # relative to the run folder
    command: str  # what writes it
    status: str = MISSING
    detail: str = ""


@dataclass
class Run:
    root: Path
    stages: list[Stage] = field(default_factory=list)
    planted: dict[str, Any] | None = None
    lm: LMIndex | None = None
    corpus: dict[str, CorpusManifest] = field(default_factory=dict)
    raw_input: dict[str, int] = field(default_factory=dict)  # source → decompressed input bytes (measured)
    tokenizer: TokenizerCard | None = None
    shards: ShardManifest | None = None
    train_config: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    hf_config: dict[str, Any] | None = None
    generations: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)  # lines skipped while reading (truncated JSONL, …)

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    @property
    def missing(self) -> list[Stage]:
        return [s for s in self.stages if s.status != OK]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def read_jsonl(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; a line that does not parse (a run killed mid-write leaves a
    truncated last line) is skipped and named in `notes`."""
    out: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                notes.append(f"{path.name}: line {number} is not JSON ({exc.msg}); skipped")
                continue
            if isinstance(value, dict):
                out.append(value)
            else:
                notes.append(f"{path.name}: line {number} is not a JSON object; skipped")
    return out


def _read_json(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path.name}: not a JSON object")
    return value


def _load(stage: Stage, path: Path, reader: Any) -> Any:
    """Run `reader(path)`; a missing file leaves the stage missing, a failing read marks it unreadable."""
    if not path.exists():
        stage.status, stage.detail = MISSING, f"no {stage.path}"
        return None
    try:
        value = reader(path)
    except Exception as exc:  # a half-written or foreign file: the report says so and goes on
        stage.status, stage.detail = UNREADABLE, f"{stage.path}: {_first_line(exc)}"
        return None
    stage.status = OK
    return value


def raw_input_bytes(manifest: CorpusManifest, limit: int = RAW_MEASURE_LIMIT) -> int | None:
    """The decompressed size of a source's input files (markup and headers included), or None when an
    input is remote, a folder, gone, a 7z archive, or the inputs exceed `limit` compressed bytes."""
    if sum(i.bytes for i in manifest.inputs) > limit or not manifest.inputs:
        return None
    total = 0
    for entry in manifest.inputs:
        if storage.is_url(entry.path) or not Path(entry.path).is_file():
            return None
        try:
            with open(entry.path, "rb") as raw:
                if raw.read(6) == _SEVEN_ZIP:
                    return None
                raw.seek(0)
                stream = open_decompressed(raw, entry.path)
                while chunk := stream.read(1 << 20):
                    total += len(chunk)
        except Exception:  # a truncated input: the build recorded a dead letter; no size to show
            return None
    return total


def _load_corpus(run: Run, stage: Stage) -> None:
    folder = run.root / "corpus"
    if not folder.is_dir():
        stage.detail = "no corpus/"
        return
    problems = []
    for source_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not (source_dir / CORPUS_MANIFEST).exists():
            problems.append(f"{source_dir.name} (no manifest.json: the build did not finish it)")
            continue
        try:
            m = run.corpus[source_dir.name] = CorpusManifest.read_from(str(source_dir))
        except Exception as exc:
            problems.append(f"{source_dir.name} ({_first_line(exc)})")
            continue
        raw = raw_input_bytes(m)
        if raw is not None:
            run.raw_input[source_dir.name] = raw
    if run.corpus and not problems:
        stage.status = OK
    elif run.corpus:
        stage.status, stage.detail = INCOMPLETE, "sources not complete: " + "; ".join(problems)
    else:
        stage.status = INCOMPLETE if problems else MISSING
        stage.detail = "; ".join(problems) or "corpus/ holds no source folder"


def _load_train(run: Run, stage: Stage, samples: Stage) -> None:
    train = run.root / "train"
    metrics = train / "metrics.jsonl"
    if (train / "config.toml").exists():
        try:
            run.train_config = tomllib.loads((train / "config.toml").read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            run.notes.append(f"train/config.toml: {_first_line(exc)}")
    if not metrics.exists():
        stage.detail = "no train/metrics.jsonl"
    else:
        run.metrics = read_jsonl(metrics, run.notes)
        run.metrics = [r for r in run.metrics if isinstance(r.get("step"), int | float)]
        run.metrics.sort(key=lambda r: r["step"])
        if (train / "summary.json").exists():
            try:
                run.summary = _read_json(train / "summary.json")
            except (OSError, ValueError) as exc:
                run.notes.append(f"train/summary.json: {_first_line(exc)}")
        if not run.metrics:
            stage.status, stage.detail = INCOMPLETE, "train/metrics.jsonl holds no step yet"
        elif run.summary is None:
            last = run.metrics[-1]["step"]
            stage.status = INCOMPLETE
            stage.detail = (
                f"no train/summary.json: the run stopped or is still going (last logged step {last})"
            )
        else:
            stage.status = OK
    sample_file = train / "samples.jsonl"
    if sample_file.exists():
        run.samples = read_jsonl(sample_file, run.notes)
        samples.status = OK if run.samples else INCOMPLETE
        samples.detail = "" if run.samples else "train/samples.jsonl is empty"
    else:
        samples.detail = "no train/samples.jsonl (eval.samples = 0, or no eval step yet)"


def load_run(root: str | Path) -> Run:
    """Everything the report can read from `root`; never raises for a missing or broken stage."""
    run = Run(Path(root))
    run.stages = [
        Stage("inputs", "data/planted.json (or the corpus manifests' inputs)", "corral sample"),
        Stage("language models", f"lm/{LM_INDEX}", "corral lm"),
        Stage("corpus", "corpus/<source>/manifest.json", "corral build"),
        Stage("tokenizer", f"tokenizer/{CARD}", "corral tokenizer"),
        Stage("shards", f"shards/{SHARDS_MANIFEST}", "corral shards"),
        Stage("training", "train/metrics.jsonl + summary.json", "corral train"),
        Stage("training samples", "train/samples.jsonl", "corral train"),
        Stage("Hugging Face export", "hf/config.json", "corral export-hf"),
        Stage("generations", "generations.json", "corral demo"),
    ]
    r = run.root
    run.planted = _load(run.stage("inputs"), r / "data" / "planted.json", _read_json)
    run.lm = _load(
        run.stage("language models"), r / "lm" / LM_INDEX, lambda p: LMIndex.read_from(str(p.parent))
    )
    _load_corpus(run, run.stage("corpus"))
    inputs = run.stage("inputs")
    if inputs.status == MISSING and run.corpus:  # `corral demo --data DIR`: real dumps, no generated sample
        found = sorted({str(Path(i.path).parent) for m in run.corpus.values() for i in m.inputs})
        inputs.status = OK
        inputs.detail = f"no generated sample; the build read {len(found)} input folders, e.g. {found[0]}"
    run.tokenizer = _load(
        run.stage("tokenizer"), r / "tokenizer" / CARD, lambda p: TokenizerCard.read_from(str(p.parent))
    )
    run.shards = _load(
        run.stage("shards"), r / "shards" / SHARDS_MANIFEST, lambda p: ShardManifest.read_from(str(p.parent))
    )
    _load_train(run, run.stage("training"), run.stage("training samples"))
    run.hf_config = _load(run.stage("Hugging Face export"), r / "hf" / "config.json", _read_json)
    if run.hf_config is not None and not any((r / "hf").glob("*.safetensors")):
        hf = run.stage("Hugging Face export")
        hf.status, hf.detail = INCOMPLETE, "hf/ has config.json but no *.safetensors weights"
    run.generations = _load(run.stage("generations"), r / "generations.json", _read_json)
    if run.generations is not None and not isinstance(run.generations.get("prompts"), list):
        g = run.stage("generations")
        g.status, g.detail = UNREADABLE, "generations.json: no `prompts` list"
        run.generations = None
    return run
