"""`corral report --run DIR [--out DIR]`: one static HTML page with PNG figures of a run folder.

The page (`DIR/report/index.html`) opens in a browser from disk, with no server and no script. It draws
what the run folder holds (`corral.reporting.run`), lists the stages that are missing or unfinished at the
top, and never fails because a stage is absent or half-written. The report folder is built in a
temporary folder beside it and moved into place, so a reader never sees a half-written report.

The parts live in `corral/reporting/`: `run` (reading the run folder), `figures` (the matplotlib
figures), `page` (the HTML), `versions` (recorded and installed tool versions).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_RUN = "build/demo"
REPORT_DIR = "report"
INDEX = "index.html"


@dataclass
class Report:
    index: Path
    figures: list[str] = field(default_factory=list)  # files written
    skipped: dict[str, str] = field(default_factory=dict)  # figure → why it was not drawn (no data)
    failed: dict[str, str] = field(default_factory=dict)  # figure → the error that stopped its drawing
    missing: list[str] = field(default_factory=list)  # stages absent or unfinished


def write_report(root: str | Path, out: str | Path | None = None) -> Report:
    """Render the report of run folder `root` into `out` (default `root/report`); returns what it wrote."""
    from corral.reporting import figures as figs
    from corral.reporting.page import FigureEntry, render
    from corral.reporting.run import load_run

    root = Path(root).resolve()
    target = Path(out).resolve() if out else root / REPORT_DIR
    run = load_run(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    report = Report(index=target / INDEX, missing=[s.name for s in run.missing])
    try:
        entries = []
        for spec in figs.FIGURES:
            entry = FigureEntry(spec.file, spec.title, spec.section, spec.caption)
            try:
                fig = spec.draw(run)
                figs.save(fig, str(tmp / spec.file))
                w, h = fig.get_size_inches() * fig.dpi
                entry.width, entry.height = round(w), round(h)
                report.figures.append(spec.file)
            except figs.NoData as exc:
                entry.skipped = str(exc)
                report.skipped[spec.file] = str(exc)
            except Exception as exc:  # one figure's bad data must not cost the rest of the report
                entry.skipped = f"drawing failed: {type(exc).__name__}: {exc}"
                report.failed[spec.file] = "".join(traceback.format_exception_only(exc)).strip()
            entries.append(entry)
        (tmp / INDEX).write_text(render(run, entries), encoding="utf-8")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a report is for reading
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`: the old report moves aside first and is removed after (two renames)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral report", description=__doc__.splitlines()[0])
    p.add_argument("--run", default=DEFAULT_RUN, help=f"the run folder (default: {DEFAULT_RUN})")
    p.add_argument("--out", default=None, help="the report folder (default: RUN/report)")
    args = p.parse_args(argv)
    root = Path(args.run)
    if not root.is_dir():
        print(f"corral report: run folder {root} does not exist (run `corral demo` first?)", file=sys.stderr)
        return 2
    parent = Path(args.out).resolve().parent if args.out else root.resolve()
    if not os.access(parent if parent.exists() else root, os.W_OK):
        print(f"corral report: cannot write into {parent} (permission denied)", file=sys.stderr)
        return 2
    report = write_report(root, args.out)
    for name in report.missing:
        print(f"  missing or incomplete: {name}")
    for file, reason in report.skipped.items():
        print(f"  not drawn: {file}: {reason}")
    for file, error in report.failed.items():
        print(f"  FAILED to draw {file}: {error}", file=sys.stderr)
    print(f"report: {report.index}  ({len(report.figures)} figures; open {report.index.as_uri()})")
    return 0
