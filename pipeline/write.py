"""The commit of a source: nothing becomes visible before its counts balance, file by file.

Everything a build writes goes to `<output>/<source>/_tmp/` first (spills, per-file dead letters, parts).
One finalize step, which runs after every part and count exists (it takes them as side inputs), checks
`read = kept + Σ dropped` for every input file and for the source; only then does it remove the previous
output, move the new parts into place, write `dead_letters.jsonl` and, last, `manifest.json`. A failed check
raises with the files that came up short and leaves the previous output as it was; a killed build leaves
`_tmp/`, which the next launch clears.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from typing import Any

import apache_beam as beam

from manifests import storage
from manifests.corpus import DEAD_LETTERS, KEPT, MANIFEST, READ, BalanceError, CorpusManifest
from pipeline.linededup import LINE_DEDUP_PATH, NONE
from pipeline.passes import PARTS, dead_path
from pipeline.read import InputFile

TMP = "_tmp"


def _unbalanced(per_file: dict[int, Counter[str]], files: list[InputFile]) -> list[str]:
    out = []
    for f in files:
        c = per_file.get(f.index, Counter())
        drops = sum(n for k, n in c.items() if k.startswith("dropped."))
        if c[READ] != c[KEPT] + drops:
            out.append(f"{f.path} (read {c[READ]}, kept {c[KEPT]}, dropped {drops})")
    return out


def _lost_records(per_file: dict[int, Counter[str]], files: list[InputFile]) -> list[str]:
    """Files for which fewer small records arrived than their pass emitted (see `passes.CountReceived`)."""
    out = []
    for f in files:
        c = per_file.get(f.index, Counter())
        for key, n in c.items():
            if key.startswith("sent."):
                kind = key.removeprefix("sent.")
                got = c[f"received.{kind}"]
                if got != n:
                    out.append(f"{f.path} ({kind}: {n} sent, {got} arrived)")
    return out


def line_dedup_path(paths: dict[str, int]) -> str | None:
    """How line dedup ran: `broadcast`, `per_file`, or `mixed (…)` when the shards chose differently."""
    paths = {p: n for p, n in paths.items() if p != NONE}
    if not paths:
        return None
    if len(paths) == 1:
        return next(iter(paths))
    return "mixed (" + ", ".join(f"{n} shards {p}" for p, n in sorted(paths.items())) + ")"


class FinalizeFn(beam.DoFn):
    """Checks the balance, then moves the new output into place; `manifest.json` last."""

    def __init__(self, source: str, out_dir: str, header: dict[str, Any], files: list[InputFile]) -> None:
        self.source = source
        self.out_dir = out_dir
        self.header = header
        self.files = files

    def process(
        self, _: Any, parts: list[dict], counts: list[tuple[int, dict]], global_counts: list[tuple[str, int]]
    ) -> Iterator[str]:
        per_file: dict[int, Counter[str]] = {}
        total: Counter[str] = Counter()
        for index, c in counts:
            per_file.setdefault(index, Counter()).update(c)
            total.update(c)
        short = _unbalanced(per_file, self.files)
        lost = _lost_records(per_file, self.files)
        header = dict(self.header)
        header["inputs"] = [
            {**entry, "read": per_file.get(f.index, Counter())[READ]}
            for entry, f in zip(header["inputs"], self.files, strict=True)
        ]
        whole: Counter[str] = Counter()
        for key, n in global_counts:
            whole[key] += n
        paths = {
            k.removeprefix(LINE_DEDUP_PATH): n for k, n in whole.items() if k.startswith(LINE_DEDUP_PATH)
        }
        line_path = line_dedup_path(paths)
        if line_path:
            header["paths"] = {**header.get("paths", {}), "line_dedup": line_path}
        clusters = {
            k.removeprefix("cluster_size."): n for k, n in whole.items() if k.startswith("cluster_size.")
        }
        header["near_duplicate_clusters"] = dict(sorted(clusters.items(), key=lambda kv: int(kv[0])))
        tmp_dir = storage.join(self.out_dir, TMP)
        dead_file, n_dead = self._gather_dead_letters(tmp_dir)
        try:
            if lost:
                raise BalanceError(
                    f"source {self.source!r}: small records were lost between the passes for "
                    f"{len(lost)} input file(s): " + "; ".join(lost[:20])
                )
            if short:
                raise BalanceError(
                    f"accounting does not balance for source {self.source!r} in {len(short)} input file(s): "
                    + "; ".join(short[:20])
                )
            manifest = CorpusManifest.from_counts({"source": self.source, **header}, total, parts, n_dead)
        except BalanceError as exc:
            raise RuntimeError(
                f"{exc}; refusing to write {MANIFEST} (the previous output is untouched)"
            ) from None
        self._replace_output(manifest, dead_file)
        yield self.source

    def _gather_dead_letters(self, tmp_dir: str) -> tuple[str, int]:
        """The files' dead letters, in file order, streamed into one local file."""
        fd, local = tempfile.mkstemp(prefix="corral-dead-", suffix=".jsonl")
        n = 0
        with os.fdopen(fd, "wb") as out:
            for f in self.files:
                with storage.open_read(dead_path(tmp_dir, f.index)) as src:
                    for line in src:
                        out.write(line)
                        n += 1
        return local, n

    def _replace_output(self, manifest: CorpusManifest, dead_file: str) -> None:
        storage.delete(storage.join(self.out_dir, MANIFEST))
        for name in storage.listdir(self.out_dir):
            if name != TMP:
                storage.delete(storage.join(self.out_dir, name))
        tmp_dir = storage.join(self.out_dir, TMP)
        for p in manifest.parts:
            storage.rename(storage.join(tmp_dir, PARTS, p.file), storage.join(self.out_dir, p.file))
        storage.copy_atomic(dead_file, storage.join(self.out_dir, DEAD_LETTERS))
        os.remove(dead_file)
        storage.delete(tmp_dir)
        manifest.write(self.out_dir)


def clear_staging(out_dir: str) -> None:
    """Remove what a killed build left in `_tmp/` (the previous complete output stays)."""
    storage.delete(storage.join(out_dir, TMP))
