"""`corral sample`: the demo's input data, generated — every source in its real format, seeded, in seconds.

Why generated and not committed: the sample is a few MB of text in seven formats, while the generator
is plain Python that anyone can read, change and rerun (`--scale`); the repository stays small, no
binary blob needs reviewing, and what was planted for each filter is known exactly (`planted.json`).
The same seed and scale give the same bytes (the only machine-dependent input is Python's own standard
library, added as GitHub code under its PSF licence, which the licence filter drops).

Layout under the output folder (`build/demo/data` by default), one folder per `manifests/demo.toml` source:
`commoncrawl/` WET files, `c4/` C4 JSON, `github/` JSONL, `wikipedia/` pages-articles XML dumps,
`gutenberg/` books, `arxiv/` LaTeX submissions, `stackexchange/` a Posts.xml; then `planted.json`,
written last (its presence means the sample is complete): per source the files, sizes and the corral
document ids of everything planted for the filters.

All text is written by this package (template grammars over an invented world, `corral.sample.world`)
or drawn from wordfreq's word-frequency lists (non-English pages, word salad; data CC BY-SA 4.0), except
the standard-library modules, which are the machine's own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 1  # bump when the same seed and scale would give other bytes (a new sample)
DEFAULT_SEED = 20240601
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "build" / "demo" / "data"
STDLIB_FILES = 80  # standard-library modules added as GitHub input (0: none)
PLANTED = "planted.json"


def _dir_stats(folder: Path) -> dict[str, int]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {"n_files": len(files), "bytes": sum(p.stat().st_size for p in files)}


def is_complete(out: Path, seed: int, scale: float) -> bool:
    """True when `out` holds a finished sample of this generator version, seed and scale."""
    try:
        info = json.loads((out / PLANTED).read_text())
    except (OSError, ValueError):
        return False
    return (
        info.get("generator_version") == GENERATOR_VERSION
        and info.get("seed") == seed
        and info.get("scale") == scale
    )


def write_sample(
    out: str | Path = DEFAULT_OUT, seed: int = DEFAULT_SEED, scale: float = 1.0, *, stdlib: int = STDLIB_FILES
) -> dict[str, Any]:
    """Write the whole sample into `out` (replacing what is there) and return `planted.json`'s content.

    `scale` multiplies the number of pages, articles, posts and chapters (planted items keep a minimum,
    so a small scale still exercises every filter); `stdlib` is how many standard-library modules join
    the GitHub input.
    """
    from corral.sample.books import write_books
    from corral.sample.code import write_github
    from corral.sample.papers import write_papers
    from corral.sample.qa import write_stackexchange
    from corral.sample.web import plan_crawl, write_c4, write_crawl
    from corral.sample.wiki import write_wikipedia
    from corral.sample.world import build_world

    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    world = build_world(seed, scale)
    crawl = plan_crawl(world, seed, scale)
    planted: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "scale": scale,
        "sources": {
            "commoncrawl": write_crawl(crawl, tmp / "commoncrawl", seed),
            "c4": write_c4(world, tmp / "c4", seed, scale),
            "github": write_github(world, tmp / "github", seed, scale, stdlib),
            "wikipedia": write_wikipedia(world, tmp / "wikipedia", seed, crawl.cited, scale),
            "books": write_books(world, tmp / "gutenberg", seed, scale),
            "arxiv": write_papers(world, tmp / "arxiv", seed, scale),
            "stackexchange": write_stackexchange(world, tmp / "stackexchange", seed, scale),
        },
        "world": {
            "regions": len(world.regions),
            "rivers": len(world.rivers),
            "towns": len(world.towns),
            "people": len(world.people),
            "species": len(world.species),
            "organisations": len(world.orgs),
        },
    }
    folders = {
        "commoncrawl": "commoncrawl",
        "c4": "c4",
        "github": "github",
        "wikipedia": "wikipedia",
        "books": "gutenberg",
        "arxiv": "arxiv",
        "stackexchange": "stackexchange",
    }
    for source, folder in folders.items():
        planted["sources"][source]["folder"] = folder
        planted["sources"][source].update(_dir_stats(tmp / folder))
    (tmp / PLANTED).write_text(json.dumps(planted, indent=1, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return planted


def ensure_sample(
    out: str | Path = DEFAULT_OUT, seed: int = DEFAULT_SEED, scale: float = 1.0
) -> tuple[Path, bool]:
    """The sample folder, generated unless a complete one of the same seed and scale is there.
    Returns (folder, generated now)."""
    out = Path(out)
    if is_complete(out, seed, scale):
        return out, False
    write_sample(out, seed, scale)
    return out, True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral sample", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="output folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--scale", type=float, default=1.0, help="more or fewer documents (planted items stay)")
    p.add_argument("--force", action="store_true", help="regenerate even if a complete sample is there")
    args = p.parse_args(argv)
    out = Path(args.out)
    if not args.force and is_complete(out, args.seed, args.scale):
        print(f"sample complete ({out / PLANTED}); skipped (use --force to regenerate)")
        return 0
    start = time.perf_counter()
    try:
        info = write_sample(out, args.seed, args.scale)
    except OSError as exc:
        print(
            f"corral sample: cannot write the sample to {out}: {exc.strerror} ({exc.filename})",
            file=sys.stderr,
        )
        return 1
    except (RuntimeError, ValueError) as exc:
        print(f"corral sample: {exc}", file=sys.stderr)
        return 1
    secs = time.perf_counter() - start
    total = sum(s["bytes"] for s in info["sources"].values())
    print(
        f"sample written to {out} in {secs:.1f} s: {total / 2**20:.1f} MiB in {sum(s['n_files'] for s in info['sources'].values())} files"
    )
    for name, s in info["sources"].items():
        print(f"  {name:<14} {s['n_files']:>3} files {s['bytes'] / 2**10:>8.0f} KiB  ({s['folder']}/)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
