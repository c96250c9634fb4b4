"""`corral demo` / `make demo`: the whole story on the bundled sample, raw dumps to a model `transformers` loads.

Stages, each a call to the stage's own `main` (nothing is reimplemented here):
sample (`corral sample`, or `--data DIR`: real dumps laid out by source) → lm → build → tokenizer → shards →
train (the small preset of `manifests/demo_train.toml`) → export-hf → generate (greedy, with corral and
with `transformers` on the exported folder: the tokens must agree) → report (`corral report`).

Everything lands under one run folder ROOT (`--out`, default build/demo): resolved copies of the job
manifest (`ROOT/demo.toml`) and of the training config (`ROOT/train.toml`) point every stage there, and
`ROOT/demo.json` records, per stage, a key of the inputs it last finished with and how long it took. A
rerun reuses a stage whose key is unchanged (the stage's own no-op rule then returns at once: lm.json,
the corpus manifests, the tokenizer card, the shard manifest); a changed key re-runs it with `--force`
(the corpus build and the LM step cannot see that their input files changed). Training continues from
its newest checkpoint (`corral train --resume auto`) when a demo was killed mid-run, and is skipped when
`train/final` holds the expected step. `--force` redoes everything.

Refused before any work (exit 2): a run folder that cannot be written, too little free disk, missing
KenLM tools, a `--data` folder holding none of the seven sources.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from manifests.toml_file import dump_toml, parse_value

REPO = Path(__file__).resolve().parents[1]
DEMO_MANIFEST = REPO / "manifests" / "demo.toml"
DEMO_TRAIN = REPO / "manifests" / "demo_train.toml"
DEFAULT_ROOT = REPO / "build" / "demo"  # where the paths of the two template files point
LEDGER = "demo.json"
GENERATIONS = "generations.json"

# Greedy prompts, one per kind of text in the sample (crawl prose, Q&A, code, LaTeX, a recipe page).
PROMPTS = (
    "The river",
    "Q: What is the best way to",
    "def read_",
    "\\section{Introduction}\n",
    "Preheat the oven to",
)
MAX_NEW_TOKENS = 32

# Free disk the demo needs, measured on the bundled sample (scale 1): the run folder ends at 173 MiB
# (KenLM's binary 5-gram 85 MiB, the training run with its two newest checkpoints 72 MiB, the HF export
# 11 MiB), and the LM step holds about as much again in temporary files while it trains; about twice
# that, for slack. With `--data`, add ten times the input bytes (text expands from gzip/bz2 about 3-5x,
# then the corpus, the tokenized cache and the shards each hold a copy of part of it).
NEED_BASE_BYTES = 400 * 2**20
NEED_PER_INPUT_BYTE = 10
# Below this much input, `--data` is a "tiny sample" and gets the small-data relaxations (see `data_manifest`).
SMALL_DATA_BYTES = 256 * 2**20


class DemoError(Exception):
    """Refused before any work, or a stage that failed; the message says what to do."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------- TOML


def _set_dotted(data: dict[str, Any], assignment: str, where: str) -> None:
    """`table.key=value` (value parsed as TOML, else a plain string) into a parsed TOML document."""
    key, eq, text = assignment.partition("=")
    if not eq or not key.strip():
        raise DemoError(
            f"corral demo: {where} {assignment!r}: expected KEY=VALUE, e.g. tokenizer.vocab_size=2048"
        )
    value = parse_value(text)
    parts = key.strip().split(".")
    table = data
    for part in parts[:-1]:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise DemoError(f"corral demo: {where} {assignment!r}: {part} is not a table")
    table[parts[-1]] = value


def _file_sha(path: Path) -> str | None:
    from manifests.storage import sha256_of

    return sha256_of(str(path)) if path.is_file() else None


# ------------------------------------------------------------------------------------- the run folder


def reroot(value: str, base: Path, root: Path) -> str:
    """A template path (relative to the template's folder) made absolute, moved from build/demo to ROOT."""
    if "://" in value:
        return value
    path = Path(value) if Path(value).is_absolute() else (base / value)
    path = Path(os.path.normpath(path))
    try:
        return str(root / path.relative_to(DEFAULT_ROOT))
    except ValueError:
        return str(path)


def demo_manifest(root: Path, scale: float, sets: list[str]) -> dict[str, Any]:
    """manifests/demo.toml with every path under ROOT, the token budget scaled with the sample."""
    data = tomllib.loads(DEMO_MANIFEST.read_text(encoding="utf-8"))
    base = DEMO_MANIFEST.parent
    data["output"] = reroot(data["output"], base, root)
    for table in ("lm", "tokenizer", "shards"):
        for key in ("output", "tokenizer"):
            if key in data.get(table, {}):
                data[table][key] = reroot(data[table][key], base, root)
    data.setdefault("tokenizer", {}).setdefault("output", str(root / "tokenizer"))
    data.setdefault("shards", {}).setdefault("output", str(root / "shards"))
    for cfg in data["sources"].values():
        cfg["inputs"] = [reroot(p, base, root) for p in cfg["inputs"]]
        for lang, p in cfg.get("c4", {}).get("badwords", {}).items():
            cfg["c4"]["badwords"][lang] = reroot(p, base, root)
    if scale != 1.0 and "total_tokens" in data["shards"]:
        # A smaller sample holds fewer tokens: keep the epochs per source where the full sample has them.
        data["shards"]["total_tokens"] = max(1, round(data["shards"]["total_tokens"] * scale))
    for s in sets:
        _set_dotted(data, s, "--set")
    return data


# --- `--data DIR`: real dumps laid out by source ---------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """How one source's folder is recognised: folder names, and per reader the file name patterns
    (the first reader with any file wins: WET before WARC, archives before loose .tex files)."""

    folders: tuple[str, ...]
    readers: tuple[tuple[str, tuple[str, ...]], ...]
    folder_suffix: str = ""  # also any folder whose name ends with this (`enwiki`, `frwiki`)
    exclude: tuple[str, ...] = ()
    paper_dirs: bool = False  # no archive: each topmost folder holding a .tex file is one paper (arXiv)


LAYOUTS: dict[str, Layout] = {
    "commoncrawl": Layout(
        ("commoncrawl", "common_crawl", "cc", "crawl-data", "wet"),
        (
            ("wet", ("*.warc.wet.gz", "*.warc.wet", "*.wet.gz", "*.wet", "*.wet.txt")),
            ("warc", ("*.warc.gz", "*.warc")),
        ),
    ),
    "c4": Layout(
        ("c4", "c4_web", "c4_json", "c4-en"), (("c4_json", ("*.json.gz", "*.jsonl.gz", "*.json", "*.jsonl")),)
    ),
    "github": Layout(
        ("github", "github_code", "code"), (("github", ("*.jsonl.gz", "*.jsonl", "*.json.gz")),)
    ),
    "wikipedia": Layout(
        ("wikipedia", "wiki"),
        (
            ("wikipedia_xml", ("*.xml", "*.xml.*", "*.xml-*")),
        ),  # dump excerpts: `…articles1.xml-p10p30302.bz2`
        folder_suffix="wiki",
        exclude=("*index*",),  # the multistream dumps' offset index is not XML
    ),
    "books": Layout(("gutenberg", "books", "pg19"), (("gutenberg", ("*.txt.gz", "*.txt")),)),
    "arxiv": Layout(("arxiv",), (("arxiv", ("*.tar.gz", "*.tgz", "*.tar", "*.gz")),), paper_dirs=True),
    "stackexchange": Layout(
        ("stackexchange", "stack_exchange", "se"),
        (("stackexchange", ("*Posts.xml", "*Posts.xml.*", "*.7z")),),
    ),
}


def _walk_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _match(files: list[Path], layout: Layout) -> tuple[str, list[Path], list[str]] | None:
    """(reader, files, input globs) of the first reader of `layout` with any file. The globs are one per
    folder and pattern, or the files themselves where a glob would also take an excluded file."""
    for reader, patterns in layout.readers:
        groups: dict[tuple[Path, str], list[Path]] = {}
        for f in files:
            pat = next((p for p in patterns if fnmatch.fnmatch(f.name, p)), None)
            if pat is not None and not any(fnmatch.fnmatch(f.name, x) for x in layout.exclude):
                groups.setdefault((f.parent, pat), []).append(f)
        if not groups:
            continue
        globs: list[str] = []
        for (folder, pat), chosen in groups.items():
            everything = [f for f in files if f.parent == folder and fnmatch.fnmatch(f.name, pat)]
            globs += [str(folder / pat)] if everything == chosen else [str(f) for f in chosen]
        return reader, [f for g in groups.values() for f in g], globs
    if layout.paper_dirs:
        tex_dirs = sorted({f.parent for f in files if f.suffix == ".tex"})
        tops = [d for d in tex_dirs if not any(t != d and t in d.parents for t in tex_dirs)]
        if tops:
            chosen = [f for f in files if any(t == f.parent or t in f.parents for t in tops)]
            return layout.readers[0][0], chosen, [str(t) for t in tops]
    return None


def scan_data(data_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The sources found under `data_dir` (one subfolder per source, any depth below it, as
    `corral download` lays out its files), and notes on the subfolders that were not used."""
    found: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for sub in sorted(p for p in data_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        name = sub.name.lower()
        source = next(
            (
                s
                for s, lay in LAYOUTS.items()
                if name in lay.folders or (lay.folder_suffix and name.endswith(lay.folder_suffix))
            ),
            None,
        )
        if source is None:
            notes.append(f"{sub.name}/: not a source folder (expected one of {', '.join(LAYOUTS)}); ignored")
            continue
        matched = _match(_walk_files(sub), LAYOUTS[source])
        if matched is None:
            wanted = ", ".join(p for _, pats in LAYOUTS[source].readers for p in pats)
            notes.append(f"{sub.name}/: no file the {source} reader reads ({wanted}); ignored")
            continue
        reader, chosen, globs = matched
        if source in found:  # a second folder of the same source (`enwiki/` beside `wikipedia/`)
            if found[source]["reader"] != reader:
                notes.append(
                    f"{sub.name}/: {reader} files, but {source} already reads {found[source]['reader']}; ignored"
                )
                continue
            found[source]["inputs"] += globs
            found[source]["files"] += chosen
            continue
        found[source] = {"reader": reader, "inputs": globs, "files": chosen, "folder": sub.name}
    return found, notes


def data_manifest(
    root: Path, data_dir: Path, relax: str, sets: list[str]
) -> tuple[dict[str, Any], list[str], list[Path], bool]:
    """A job manifest for the sources found in `data_dir`: demo.toml's weights and [lm]/[tokenizer]/
    [shards] tables, the recipe defaults otherwise. Returns (manifest, notes for the summary, inputs,
    whether the small-data relaxations apply)."""
    found, notes = scan_data(data_dir)
    if not found:
        raise DemoError(
            f"corral demo: {data_dir} holds none of the seven sources: expected subfolders named like "
            + ", ".join(f"{s} ({'/'.join(lay.folders[:2])})" for s, lay in LAYOUTS.items())
            + (("\n  " + "\n  ".join(notes)) if notes else "")
        )
    template = demo_manifest(root, 1.0, [])
    data: dict[str, Any] = {
        "output": str(root / "corpus"),
        "seed": template["seed"],
        "lm": {**template["lm"], "output": str(root / "lm")},
        "tokenizer": {**template["tokenizer"], "output": str(root / "tokenizer")},
        "shards": {**template["shards"], "output": str(root / "shards")},
        "sources": {},
    }
    inputs = [f for s in found.values() for f in s["files"]]
    total = sum(f.stat().st_size for f in inputs)
    small = relax == "on" or (relax == "auto" and total < SMALL_DATA_BYTES)
    for source in LAYOUTS:  # the order of the paper's Table 1
        if source not in found:
            continue
        s = found[source]
        table: dict[str, Any] = {
            "reader": s["reader"],
            "inputs": s["inputs"],
            "weight": template["sources"][source]["weight"],
        }
        web = s["reader"] in ("wet", "warc")
        if web and "wikipedia" not in found:
            table["ccnet"] = {"perplexity": False, "wikiref": False}
            notes.append(
                f"{source}: no Wikipedia folder, so no language models: perplexity buckets and the "
                "Wikipedia-reference classifier are off"
            )
        elif web and small:
            # A few hundred articles give p30/p60 cut-offs and a classifier that would drop nearly every
            # page of a tiny crawl; the test suite's real-data build relaxes the same two settings.
            table["ccnet"] = {"keep_buckets": ["head", "middle", "tail"], "wikiref_threshold": 0.0}
            notes.append(
                f"{source}: tiny sample ({total / 2**20:.1f} MiB of input < {SMALL_DATA_BYTES // 2**20} MiB): "
                "all perplexity buckets kept and wikiref_threshold 0 (the paper keeps head+middle and "
                "thresholds the classifier; use --relax off for the paper's recipe)"
            )
        data["sources"][source] = table
    if not any(found[s]["reader"] in ("wet", "warc") for s in found):
        data["lm"]["wikiref_source"] = ""
    missing = [s for s in LAYOUTS if s not in found]
    if missing:
        notes.append(f"not found in {data_dir}: {', '.join(missing)} (left out of the mixture)")
    for s in sets:
        _set_dotted(data, s, "--set")
    return data, notes, inputs, small


def train_config(root: Path, steps: int | None, overrides: list[str]) -> dict[str, Any]:
    """manifests/demo_train.toml with its paths under ROOT and the command line's overrides applied."""
    from manifests.training import apply_overrides

    data = tomllib.loads(DEMO_TRAIN.read_text(encoding="utf-8"))
    base = DEMO_TRAIN.parent
    data["run_dir"] = reroot(data["run_dir"], base, root)
    data.setdefault("data", {})["shards"] = reroot(
        data["data"].get("shards", "../build/demo/shards"), base, root
    )
    if steps is not None:
        data.setdefault("train", {}).pop("tokens", None)
        data["train"]["steps"] = steps
    args: list[str] = []
    for o in overrides:
        key, eq, value = o.partition("=")
        if not eq:
            raise DemoError(
                f"corral demo: --train-set {o!r}: expected SECTION.KEY=VALUE, e.g. checkpoint.every=10"
            )
        args += [f"--{key}", value]
    return apply_overrides(data, args, str(DEMO_TRAIN))


# ------------------------------------------------------------------------------------- checks before work


def _nearest_existing(path: Path) -> Path:
    p = path
    while not os.path.exists(p):  # False, not an error, where a parent cannot be searched
        if p.parent == p:
            break
        p = p.parent
    return p


def check_writable(root: Path) -> None:
    """Refuse a run folder that cannot be created or written: a file in the way, a read-only folder or
    file system. Checked with `os.access` and then by writing a probe file (root passes `os.access`
    on a read-only mount, and a probe is what every later write will meet)."""
    existing = _nearest_existing(root)
    if not existing.is_dir():
        raise DemoError(
            f"corral demo: cannot create the run folder {root}: {existing} is a file, not a folder. "
            "Choose another folder with --out DIR."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DemoError(
            f"corral demo: no write permission in {existing} (needed for the run folder {root}). "
            "Choose a folder you can write with --out DIR."
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
        probe = root / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"corral")
        probe.unlink()
    except OSError as exc:
        raise DemoError(
            f"corral demo: cannot write in the run folder {root}: {exc.strerror or exc}. "
            "Choose a folder you can write with --out DIR."
        ) from None


def folder_bytes(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def check_disk(root: Path, need: int) -> None:
    """Refuse when the file system of the run folder (or of the temporary folder the LM step and the
    tokenizer use) has less free space than the demo still needs."""
    import tempfile

    places = {os.stat(_nearest_existing(root)).st_dev: _nearest_existing(root)}
    tmp = Path(tempfile.gettempdir())
    places.setdefault(os.stat(tmp).st_dev, tmp)
    for where in places.values():
        free = shutil.disk_usage(where).free
        if free < need:
            raise DemoError(
                f"corral demo: not enough free disk at {where}: {free / 2**20:,.0f} MiB free, the demo "
                f"needs about {need / 2**20:,.0f} MiB (run folder {root}). Free some space or choose "
                "another folder with --out DIR."
            )


def check_tools(need_lm: bool) -> None:
    if not need_lm:
        return
    from filters.perplexity import LMTrainingError, kenlm_tool

    try:
        kenlm_tool("lmplz")
        kenlm_tool("build_binary")
    except LMTrainingError as exc:
        raise DemoError(f"corral demo: {exc}") from None


# ------------------------------------------------------------------------------------------------ progress


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}:{s % 60:02d}"


class Progress:
    """One display across the stages: a header line when a stage starts, a line when it ends, and every
    `heartbeat` seconds a reminder of where the demo is (the stages' own output runs in between)."""

    def __init__(self, names: list[str], heartbeat: float) -> None:
        self.names = names
        self.start = time.perf_counter()
        self.heartbeat = heartbeat
        self._stage: tuple[int, str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_beat = 0.0

    def _where(self, i: int, name: str) -> str:
        return f"[{i}/{len(self.names)}] {name}"

    def begin(self, i: int, name: str, detail: str = "") -> None:
        self._stage = (i, name, time.perf_counter())
        bar = "=" * 4
        print(
            f"\n{bar} corral demo {self._where(i, name)}{(' — ' + detail) if detail else ''}  "
            f"(elapsed {_clock(time.perf_counter() - self.start)}) {bar}",
            flush=True,
        )
        if self.heartbeat > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._beat, daemon=True)
            self._thread.start()

    def end(self, status: str) -> float:
        if self._stage is None:
            return 0.0
        i, name, t0 = self._stage
        seconds = time.perf_counter() - t0
        self._stage = None
        print(
            f"---- corral demo {self._where(i, name)}: {status} in {seconds:.1f} s "
            f"(elapsed {_clock(time.perf_counter() - self.start)})",
            flush=True,
        )
        return seconds

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            stage = self._stage
            if stage is None:
                continue
            i, name, t0 = stage
            now = time.perf_counter()
            if now - max(t0, self._last_beat) >= self.heartbeat:
                self._last_beat = now
                print(
                    f"---- corral demo {self._where(i, name)} running for {_clock(now - t0)} "
                    f"(elapsed {_clock(now - self.start)})",
                    flush=True,
                )

    def close(self) -> None:
        self._stop.set()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


# ------------------------------------------------------------------------------------------------- stages


@dataclass
class Run:
    """What every stage needs: the run folder, the resolved files, the ledger, the command line."""

    root: Path
    args: argparse.Namespace
    manifest_data: dict[str, Any]
    train_data: dict[str, Any]
    data_inputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    small_data: bool = False  # `--data` with the small-data relaxations: the weights are capped too
    ledger: dict[str, Any] = field(default_factory=dict)
    input_key: str = ""
    this_run: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def manifest(self) -> Path:
        return self.root / "demo.toml"

    @property
    def train_toml(self) -> Path:
        return self.root / "train.toml"

    @property
    def force(self) -> bool:
        return bool(self.args.force)

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def key(self, *parts: Any) -> str:
        """A stage's input key: sha256 of its inputs as JSON, the run folder's path written as `<ROOT>`
        (a run folder moved elsewhere keeps its keys)."""
        text = json.dumps(parts, sort_keys=True, default=str).replace(str(self.root), "<ROOT>")
        return hashlib.sha256(text.encode()).hexdigest()

    def stage_key(self, name: str) -> str | None:
        return self.ledger.get("stages", {}).get(name, {}).get("key")

    def record(self, name: str, key: str, seconds: float | None, **extra: Any) -> None:
        from manifests.storage import write_text_atomic

        stages = self.ledger.setdefault("stages", {})
        entry = dict(stages.get(name, {}))
        entry.update({"key": key, **extra})
        if seconds is not None:
            entry["seconds"] = round(seconds, 2)
            entry["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        stages[name] = entry
        write_text_atomic(str(self.root / LEDGER), json.dumps(self.ledger, indent=1, sort_keys=True) + "\n")

    def forced(self, name: str, key: str) -> list[str]:
        """`--force` when the demo was asked to redo everything or the stage's inputs changed since it
        last finished (the stage itself only checks that its outputs exist)."""
        return ["--force"] if self.force or self.stage_key(name) != key else []


def _sources_part(m: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {n: m["sources"][n] for n in names if n in m["sources"]}


def needs_lm(m: dict[str, Any]) -> bool:
    """True when some source's recipe needs `corral lm` (CCNet perplexity or wiki-ref)."""
    from manifests.schema import parse_manifest

    manifest = parse_manifest(m, str(DEMO_MANIFEST))
    return any(c.ccnet.enabled and (c.ccnet.perplexity or c.ccnet.wikiref) for c in manifest.sources.values())


class StageFailed(Exception):
    def __init__(self, stage: str, code: int, hint: str = "") -> None:
        super().__init__(stage)
        self.stage, self.code, self.hint = stage, code, hint


def _check(stage: str, rc: int, hint: str = "") -> None:
    if rc:
        raise StageFailed(stage, rc, hint)


def _stamp(*paths: Path) -> tuple[tuple[int, int] | None, ...]:
    """(mtime, size) of a stage's completeness markers: unchanged after the call = the stage had nothing to do."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


def _status(before: tuple[Any, ...], after: tuple[Any, ...]) -> str:
    return "reused" if before == after and all(x is not None for x in before) else "ran"


def stage_sample(run: Run) -> tuple[str, str]:
    if run.args.data:
        run.record("sample", run.input_key, None)
        size = sum(p.stat().st_size for p in run.data_inputs)
        return "reused", f"{len(run.data_inputs)} input files under {run.args.data} ({size / 2**20:.1f} MiB)"
    from corral.sample import DEFAULT_SEED, ensure_sample, write_sample

    out = run.path("data")
    if run.force:
        write_sample(out, DEFAULT_SEED, run.args.scale)
        generated = True
    else:
        _, generated = ensure_sample(out, DEFAULT_SEED, run.args.scale)
    run.input_key = _file_sha(out / "planted.json") or ""
    run.record("sample", run.input_key, None)
    size = folder_bytes(out)
    return ("ran" if generated else "reused"), f"{out} ({size / 2**20:.1f} MiB, scale {run.args.scale:g})"


def stage_lm(run: Run) -> tuple[str, str]:
    m = run.manifest_data
    if not needs_lm(m):
        return "skipped", "no source needs language models"
    from pipeline import lm

    key = run.key(
        run.input_key, m["lm"], _sources_part(m, [m["lm"].get("source", "wikipedia"), "commoncrawl"])
    )
    index = Path(m["lm"]["output"]) / "lm.json"
    before = _stamp(index)
    _check("lm", lm.main(["--manifest", str(run.manifest), *run.forced("lm", key)]))
    run.record("lm", key, None)
    return _status(before, _stamp(index)), str(index)


def stage_build(run: Run) -> tuple[str, str]:
    from pipeline import build

    m = run.manifest_data
    lm_sha = _file_sha(Path(m["lm"]["output"]) / "lm.json")
    key = run.key(run.input_key, lm_sha, m["seed"], m["sources"])
    out = Path(m["output"])
    before = _stamp(*(out / n / "manifest.json" for n in m["sources"]))
    _check("build", build.main(["--manifest", str(run.manifest), *run.forced("build", key)]))
    run.record("build", key, None)
    return _status(before, _stamp(*(out / n / "manifest.json" for n in m["sources"]))), str(out)


def capped_weights(
    weights: dict[str, float], tokens: dict[str, float], total_tokens: int, max_epochs: float
) -> tuple[dict[str, float], int]:
    """The mixture weights closest to `weights` under which no source repeats more than `max_epochs`
    times: sources over their cap get exactly the cap, the others share the rest in the proportions
    of `weights` (water-filling, repeated until no source is over). When even the capped shares of all
    sources cannot fill `total_tokens`, the budget shrinks to what they can. Returns (weights, total)."""
    total_w = sum(weights.values())
    share = {s: w / total_w for s, w in weights.items()}
    cap = {s: max_epochs * tokens.get(s, 0.0) / total_tokens for s in weights}
    if sum(cap.values()) < 1.0:
        total = max(1, int(sum(max_epochs * tokens.get(s, 0.0) for s in weights)))
        return {s: max_epochs * tokens.get(s, 0.0) / total for s in weights}, total
    fixed: dict[str, float] = {}
    while True:
        free = [s for s in weights if s not in fixed]
        budget = 1.0 - sum(fixed.values())
        base = sum(share[s] for s in free)
        out = {**fixed, **{s: budget * share[s] / base for s in free}}
        over = [s for s in free if out[s] > cap[s]]
        if not over:
            return out, total_tokens
        fixed.update({s: cap[s] for s in over})


# Bytes of corpus text per token, to estimate a source's tokens before the tokenizer exists: about 4 for
# English prose with a 4k-32k BPE vocabulary (GPT-2/LLaMA-style tokenizers average 3.5-4.5), fewer for
# code and other scripts; with the 8-epoch cap below an underestimate still stays under the 16-epoch warning.
BYTES_PER_TOKEN = 4.0
DATA_MAX_EPOCHS = 8.0


def adapt_weights(run: Run) -> None:
    """`--data` on a tiny sample: LLaMA's weights ask 67% of the tokens from CommonCrawl, which may keep
    two pages of a real excerpt (hundreds of epochs, refused by `corral shards`). Cap every source at
    `DATA_MAX_EPOCHS`, estimated from the built corpus's text bytes, and rewrite ROOT/demo.toml."""
    from manifests.corpus import CorpusManifest
    from manifests.storage import write_text_atomic

    m = run.manifest_data
    weights = {n: float(cfg["weight"]) for n, cfg in m["sources"].items()}
    tokens = {}
    for n in weights:
        cm = CorpusManifest.read_from(str(Path(m["output"]) / n))
        tokens[n] = sum(p.text_bytes or p.bytes for p in cm.parts) / BYTES_PER_TOKEN
    total = int(m["shards"]["total_tokens"])
    new, new_total = capped_weights(weights, tokens, total, DATA_MAX_EPOCHS)
    changed = {
        n: (weights[n] / sum(weights.values()), w)
        for n, w in new.items()
        if abs(w - weights[n] / sum(weights.values())) > 1e-4
    }
    if not changed and new_total == total:
        return
    adapted = json.loads(json.dumps(m))
    for n, w in new.items():
        adapted["sources"][n]["weight"] = round(w, 6)
    adapted["shards"]["total_tokens"] = new_total
    header = "# Written by `corral demo --data`: weights capped at {:g} epochs per source (see the notes it prints).\n"
    write_text_atomic(str(run.manifest), header.format(DATA_MAX_EPOCHS) + dump_toml(adapted))
    note = ", ".join(f"{n} {a:.3f} → {b:.3f}" for n, (a, b) in changed.items())
    run.notes.append(
        f"mixture weights capped at {DATA_MAX_EPOCHS:g} epochs per source for this small corpus (tokens "
        f"estimated as text bytes / {BYTES_PER_TOKEN:g}): {note}"
        + (f"; total_tokens {total:,} → {new_total:,}" if new_total != total else "")
    )


def stage_tokenizer(run: Run) -> tuple[str, str]:
    from tokenizer_training import train as tokenizer

    card = run.path("tokenizer", "card.json")
    before = _stamp(card)
    if run.small_data:
        adapt_weights(run)
    argv = ["--manifest", str(run.manifest), "--no-progress"] + (["--force"] if run.force else [])
    _check("tokenizer", tokenizer.main(argv))
    run.record("tokenizer", _file_sha(card) or "", None)
    return _status(before, _stamp(card)), str(card.parent)


def stage_shards(run: Run) -> tuple[str, str]:
    from pipeline import shards

    manifest = run.path("shards", "manifest.json")
    before = _stamp(manifest)
    argv = ["--manifest", str(run.manifest)] + (["--force"] if run.force else [])
    _check("shards", shards.main(argv))
    run.record("shards", _file_sha(manifest) or "", None)
    return _status(before, _stamp(manifest)), str(manifest.parent)


def expected_steps(run: Run) -> int:
    from manifests.training import load_config
    from model.llama import PRESETS

    cfg = load_config(run.train_toml)
    batch = cfg.train.batch_tokens or PRESETS[cfg.model.preset].batch_tokens
    return cfg.steps_for(batch)


def train_finished(run_dir: Path, steps: int) -> bool:
    """`final/` written and `summary.json` at the expected step: `corral train` completed this budget."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (OSError, ValueError):
        return False
    return summary.get("steps") == steps and (run_dir / "final" / "model.safetensors").is_file()


@contextlib.contextmanager
def _own_signals() -> Iterator[None]:
    """The trainer installs SIGTERM/SIGINT handlers (checkpoint, then stop); put the demo's back after."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def stage_train(run: Run) -> tuple[str, str]:
    from trainer import checkpoint as ckpt
    from trainer import train as trainer

    run_dir = run.path("train")
    steps = expected_steps(run)
    key = run.key(_file_sha(run.path("shards", "manifest.json")), run.train_toml.read_text(encoding="utf-8"))
    entry = run.ledger.get("stages", {}).get("train", {})
    if not run.force and entry.get("key") == key and entry.get("done") and train_finished(run_dir, steps):
        return "reused", f"{run_dir / 'final'} ({steps} steps)"
    if run_dir.exists() and (run.force or entry.get("key") != key):
        # Other shards or another config: its checkpoints cannot be resumed (the trainer refuses them).
        print(f"corral demo: {run_dir} was trained on other inputs; starting the run afresh", flush=True)
        shutil.rmtree(run_dir)
    found = ckpt.complete_checkpoints(str(run_dir))  # at the last step: the trainer only exports final/
    run.record("train", key, None, done=False)
    resumed = f"resuming from {found[-1][1]}" if found else "fresh run"
    print(f"corral demo: training {steps} steps ({resumed})", flush=True)
    with _own_signals():
        rc = trainer.main(["--config", str(run.train_toml), "--resume", "auto"])
    if rc in (130, 143):
        raise StageFailed(
            "train", rc, "stopped with a checkpoint; run `corral demo` again to continue from it"
        )
    _check("train", rc)
    if not train_finished(run_dir, steps):
        raise StageFailed("train", 1, f"{run_dir}/final or summary.json missing after training")
    run.record("train", key, None, done=True)
    return "ran", f"{run_dir / 'final'} ({steps} steps, {resumed})"


def stage_export(run: Run) -> tuple[str, str]:
    from model import hf

    final, out = run.path("train", "final"), run.path("hf")
    key = run.key(_file_sha(final / "model.safetensors"), _file_sha(run.path("tokenizer", "card.json")))
    if not run.force and run.stage_key("export-hf") == key and (out / "config.json").is_file():
        return "reused", str(out)
    argv = ["--checkpoint", str(final), "--out", str(out), "--tokenizer-dir", str(run.path("tokenizer"))]
    _check("export-hf", hf.main(argv))
    run.record("export-hf", key, None)
    return "ran", str(out)


def greedy_generations(final: Path, hf_dir: Path, tokenizer_model: Path, max_new: int) -> dict[str, Any]:
    """Greedy tokens from corral's `model.generate` on `final/` and from `transformers` on the exported
    folder, prompt by prompt (batch of one: no padding on either side). Both start from BOS + the
    SentencePiece ids of the prompt; HF's ids come from `AutoTokenizer` on the exported files."""
    import sentencepiece as spm
    import torch

    from model.generate import generate
    from model.io import load_model

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    model = load_model(final).eval()
    eos = sp.eos_id()
    with contextlib.redirect_stderr(sys.stdout):  # transformers' import-time notices
        from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    hf_model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    out = []
    for prompt in PROMPTS:
        ids = [sp.bos_id(), *sp.encode(prompt)]
        hf_prompt = [tok.bos_token_id, *tok(prompt, add_special_tokens=False).input_ids]
        room = min(max_new, model.config.max_seq_len - len(ids))
        corral_ids = generate(model, [ids], room, temperature=0.0, eos_id=eos)[0]
        with torch.no_grad():
            gen = hf_model.generate(
                torch.tensor([hf_prompt]),
                attention_mask=torch.ones(1, len(hf_prompt), dtype=torch.long),
                max_new_tokens=room,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=eos,
            )
        hf_ids = gen[0, len(hf_prompt) :].tolist()
        out.append(
            {
                "prompt": prompt,
                "corral_ids": corral_ids,
                "corral_text": sp.decode([t for t in corral_ids if t != eos]),
                "hf_ids": hf_ids,
                "hf_text": tok.decode(hf_ids, skip_special_tokens=True),
                "equal": corral_ids == hf_ids and ids == hf_prompt,
            }
        )
    return {"prompts": out, "max_new_tokens": max_new}


def stage_generate(run: Run) -> tuple[str, str]:
    from manifests.storage import write_text_atomic

    final, hf_dir, path = run.path("train", "final"), run.path("hf"), run.path(GENERATIONS)
    max_new = run.args.max_new_tokens
    key = run.key(
        _file_sha(final / "model.safetensors"), _file_sha(hf_dir / "model.safetensors"), PROMPTS, max_new
    )
    if not run.force and run.stage_key("generate") == key and path.is_file():
        gens = json.loads(path.read_text())
        status = "reused"
    else:
        gens = greedy_generations(final, hf_dir, run.path("tokenizer", "tokenizer.model"), max_new)
        write_text_atomic(str(path), json.dumps(gens, indent=1, ensure_ascii=False) + "\n")
        run.record("generate", key, None)
        status = "ran"
    for g in gens["prompts"]:
        mark = "same tokens" if g["equal"] else "DIFFERENT tokens"
        print(f"  {g['prompt']!r} → {g['corral_text']!r}  [corral vs transformers: {mark}]")
    same = sum(g["equal"] for g in gens["prompts"])
    return status, f"{same}/{len(gens['prompts'])} prompts give the same greedy tokens in transformers"


def stage_report(run: Run) -> tuple[str, str]:
    report_py = REPO / "corral" / "report.py"
    if not report_py.is_file():
        print("corral demo: the report is not available (corral/report.py is missing)")
        return "skipped", "not available"
    from corral import report

    stages = run.ledger.get("stages", {})
    key = run.key({k: v.get("key") for k, v in stages.items() if k != "report"}, _file_sha(report_py))
    index = run.path("report", "index.html")
    if not run.force and run.stage_key("report") == key and index.is_file():
        return "reused", str(index)
    _check("report", int(report.main(["--run", str(run.root)]) or 0))
    run.record("report", key, None)
    return "ran", str(index)


STAGES: list[tuple[str, Callable[[Run], tuple[str, str]]]] = [
    ("sample", stage_sample),
    ("lm", stage_lm),
    ("build", stage_build),
    ("tokenizer", stage_tokenizer),
    ("shards", stage_shards),
    ("train", stage_train),
    ("export-hf", stage_export),
    ("generate", stage_generate),
    ("report", stage_report),
]


# ------------------------------------------------------------------------------------------------- summary


def headline(run: Run) -> list[str]:
    """Where each output is and the numbers a new user looks for."""
    lines = []
    corpus = Path(run.manifest_data["output"])
    lines.append(f"  corpus      {corpus}/<source>/part-*.parquet + manifest.json")
    lines.append(f"    {'source':<14} {'read':>7} {'kept':>7}  top drop reasons")
    for name in run.manifest_data["sources"]:
        try:
            m = json.loads((corpus / name / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        top = sorted(m.get("dropped", {}).items(), key=lambda kv: -kv[1])[:3]
        lines.append(
            f"    {name:<14} {m.get('read', 0):>7,} {m.get('kept', 0):>7,}  "
            + (", ".join(f"{k} {v}" for k, v in top) or "-")
        )
    try:
        card = json.loads(run.path("tokenizer", "card.json").read_text())
        lines.append(f"  tokenizer   {run.path('tokenizer')}  ({card['vocab_size']:,} pieces)")
    except (OSError, ValueError, KeyError):
        pass
    try:
        sm = json.loads(run.path("shards", "manifest.json").read_text())
        train_tokens = sum(f["tokens"] for f in sm["train"])
        val_tokens = sum(f["tokens"] for f in sm.get("validation", []))
        lines.append(
            f"  shards      {run.path('shards')}  ({train_tokens:,} training tokens, {val_tokens:,} validation)"
        )
        mix = ", ".join(
            f"{n} {100 * s['achieved']:.1f}% ({s['epochs']:.2g} ep)" for n, s in sorted(sm["sources"].items())
        )
        lines.append(f"    mix: {mix}")
    except (OSError, ValueError, KeyError):
        pass
    metrics = run.path("train", "metrics.jsonl")
    if metrics.is_file():
        records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
        last = records[-1] if records else {}
        val = next((r for r in reversed(records) if "val_loss" in r), {})
        text = f"  model       {run.path('train', 'final')}  (step {last.get('step', '?')}, "
        text += f"{last.get('tokens', 0):,} tokens; train loss {last.get('loss', float('nan')):.3f}"
        if val:
            text += f", validation loss {val['val_loss']:.3f} (perplexity {val['val_ppl']:.1f})"
        lines.append(text + ")")
    if run.path("hf", "config.json").is_file():
        lines.append(f"  hf export   {run.path('hf')}  (AutoModelForCausalLM / AutoTokenizer)")
    if run.path(GENERATIONS).is_file():
        lines.append(f"  generations {run.path(GENERATIONS)}")
    return lines


def timing_lines(run: Run, total: float) -> list[str]:
    parts = []
    for name, info in run.this_run.items():
        tail = "" if info["status"] == "ran" else f" ({info['status']})"
        parts.append(f"{name} {info['seconds']:.1f}s{tail}")
    return [f"  time        {', '.join(parts)}; total {_clock(total)} ({total:.0f} s)"]


# ---------------------------------------------------------------------------------------------------- main


def prepare(args: argparse.Namespace) -> Run:
    """Resolve the run folder and its two config files; every refusal happens here, before any work."""
    root = Path(args.out).expanduser().absolute()
    if args.scale <= 0:
        raise DemoError(f"corral demo: --scale must be > 0, got {args.scale}")
    notes: list[str] = []
    inputs: list[Path] = []
    small = False
    if args.data:
        data_dir = Path(args.data).expanduser().absolute()
        if not data_dir.is_dir():
            raise DemoError(f"corral demo: --data {data_dir}: not a folder")
        manifest_data, notes, inputs, small = data_manifest(root, data_dir, args.relax, args.set)
    else:
        manifest_data = demo_manifest(root, args.scale, args.set)
    train_data = train_config(root, args.train_steps, args.train_set)
    from manifests.schema import ManifestError, parse_manifest
    from manifests.training import ConfigError, parse_config

    try:
        parse_manifest(manifest_data, str(root / "demo.toml"))
        parse_config(train_data, str(root / "train.toml"))
    except (ManifestError, ConfigError) as exc:
        raise DemoError(f"corral demo: {exc}") from None
    input_bytes = sum(p.stat().st_size for p in inputs)
    need = NEED_BASE_BYTES + NEED_PER_INPUT_BYTE * input_bytes
    if not args.force:
        need = max(0, need - folder_bytes(root))
    if args.min_free_mb is not None:
        need = int(args.min_free_mb * 2**20)
    check_disk(root, need)
    check_writable(root)
    check_tools(needs_lm(manifest_data))
    run = Run(root, args, manifest_data, train_data, inputs, notes, small_data=small)
    try:
        run.ledger = json.loads((root / LEDGER).read_text())
    except (OSError, ValueError):
        run.ledger = {}
    if args.data:
        run.input_key = run.key(sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in inputs))
    from manifests.storage import write_text_atomic

    header = (
        "# Written by `corral demo` (resolved from manifests/{}): every path points into this run folder.\n"
    )
    write_text_atomic(str(run.manifest), header.format("demo.toml") + dump_toml(manifest_data))
    write_text_atomic(str(run.train_toml), header.format("demo_train.toml") + dump_toml(train_data))
    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="corral demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_ROOT), help="run folder (default: %(default)s)")
    p.add_argument("--data", help="a folder of real dumps, one subfolder per source (instead of the sample)")
    p.add_argument(
        "--relax",
        choices=("auto", "on", "off"),
        default="auto",
        help="--data: small-data relaxations of the CommonCrawl recipe (auto: when the input is < 256 MiB)",
    )
    p.add_argument("--force", action="store_true", help="redo every stage, even those that are up to date")
    p.add_argument("--scale", type=float, default=1.0, help="sample size and token budget multiplier")
    p.add_argument("--train-steps", type=int, help="training steps (default: manifests/demo_train.toml)")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a manifest key (repeatable)"
    )
    p.add_argument(
        "--train-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a training-config key (repeatable)",
    )
    p.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS, help="greedy tokens per prompt")
    p.add_argument(
        "--heartbeat", type=float, default=30.0, help="seconds between progress reminders (0: off)"
    )
    p.add_argument("--min-free-mb", type=float, help="free disk to insist on (default: what the demo needs)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # GNU OpenMP threads spin while they wait for each other; on 2 cores shared with other work that
    # stalls every matmul of the training step (measured: 1,200 vs 6,700 tokens/s). Passive waiting costs
    # nothing measurable on an idle machine. Read when torch loads, so set before the first import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        run = prepare(args)
    except DemoError as exc:
        print(exc, file=sys.stderr)
        return exc.code
    names = [n for n, _ in STAGES]
    progress = Progress(names, args.heartbeat)
    print(
        f"corral demo: {' → '.join(names)}\n  run folder {run.root}\n  manifest   {run.manifest}\n"
        f"  training   {run.train_toml}" + "".join(f"\n  note: {n}" for n in run.notes),
        flush=True,
    )
    try:
        for i, (name, fn) in enumerate(STAGES, start=1):
            progress.begin(i, name)
            status, detail = fn(run)
            seconds = progress.end(f"{status}: {detail}")
            run.this_run[name] = {"status": status, "seconds": seconds}
            stages = run.ledger.setdefault("stages", {})
            if status == "ran" and name in stages:
                stages[name]["seconds"] = round(seconds, 2)
            run.ledger["last_run"] = run.this_run
            from manifests.storage import write_text_atomic

            write_text_atomic(str(run.root / LEDGER), json.dumps(run.ledger, indent=1, sort_keys=True) + "\n")
    except StageFailed as exc:
        progress.end(f"FAILED (exit {exc.code})")
        print(
            f"\ncorral demo: stage {exc.stage!r} failed with exit code {exc.code}"
            + (f": {exc.hint}" if exc.hint else " (its message is above)")
            + ".\nFinished stages are kept: run `corral demo` again to continue.",
            file=sys.stderr,
        )
        return exc.code
    except KeyboardInterrupt:
        progress.end("interrupted")
        print("\ncorral demo: interrupted; finished stages are kept: run `corral demo` again to continue.")
        return 130
    except Exception:
        progress.end("FAILED (the error is below)")
        raise
    finally:
        progress.close()
    total = progress.elapsed
    print("\ncorral demo finished.")
    index = run.path("report", "index.html")
    print(f"  report      {index if index.is_file() else '(not available)'}")
    print("\n".join(headline(run)))
    print("\n".join(timing_lines(run, total)))
    for n in run.notes:
        print(f"  note: {n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
