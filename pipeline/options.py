"""Command-line options of the build job, and the Beam runner it uses.

Corral flags (`--manifest`, `--output`, `--sources`, `--force`) are parsed here; every other flag goes to
Beam unchanged (`--runner DataflowRunner --project … --region … --temp_location gs://…`,
`--direct_num_workers N`). Without `--runner` the job runs on Beam's Python `FnApiRunner` directly: Beam
2.77's DirectRunner would first try to download a Prism binary, which fails offline. With
`--direct_num_workers N` (N > 1) and no running mode, `multi_processing` is chosen so N cores are used.
"""

from __future__ import annotations

import argparse
import os

from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner


def build_parser(prog: str = "corral build") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Build the filtered, deduplicated corpus (Apache Beam)."
    )
    p.add_argument("--manifest", required=True, help="TOML job description (manifests/llama.toml)")
    p.add_argument("--output", help="output folder (default: the manifest's `output`)")
    p.add_argument("--sources", help="comma-separated subset of the manifest's sources")
    p.add_argument("--force", action="store_true", help="rebuild sources whose output is already complete")
    p.add_argument(
        "--explain",
        action="store_true",
        help="print each source's effective settings (recipe defaults + the manifest's keys) and exit",
    )
    return p


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """Corral's own flags, and the rest for Beam."""
    return build_parser().parse_known_args(argv)


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Beam options; multi-processing when more than one local worker is asked for."""
    opts = PipelineOptions(beam_args)
    direct = opts.view_as(DirectOptions)
    if direct.direct_num_workers == 0:
        direct.direct_num_workers = os.cpu_count() or 1
    if direct.direct_num_workers > 1 and "--direct_running_mode" not in " ".join(beam_args):
        direct.direct_running_mode = "multi_processing"
    return opts


def make_runner(opts: PipelineOptions) -> PipelineRunner | str:
    """`FnApiRunner` unless another runner was named (DirectRunner included, if a user insists)."""
    name = opts.view_as(StandardOptions).runner
    if name in (None, "FnApiRunner"):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        return FnApiRunner()
    return name


def is_local(opts: PipelineOptions) -> bool:
    name = opts.view_as(StandardOptions).runner
    return name is None or name in StandardOptions.LOCAL_RUNNERS


def is_dry_run(opts: PipelineOptions) -> bool:
    """`--dry_run True` on Dataflow: the job graph is translated and checked, no job starts, so nothing it
    would write exists afterwards. Beam's local runners ignore the flag and run the job."""
    from apache_beam.options.pipeline_options import TestOptions

    return bool(opts.view_as(TestOptions).dry_run) and not is_local(opts)
