"""`corral read`: run one reader (and its source recipe) on one file and print documents as JSON lines.

For inspecting what corral makes of an input. Counts (emitted, drops by reason, repairs, dead letters)
go to stderr at the end; a file that breaks mid-way prints the documents before the break, then the
error naming the file and position, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from filters.sources.base import ReaderError, ReadStats
from filters.sources.registry import READERS, get_reader


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral read", description=__doc__.splitlines()[0])
    p.add_argument("--reader", required=True, choices=sorted(READERS))
    p.add_argument("path", help="input file (or a directory for the github and arxiv readers)")
    p.add_argument("--limit", type=int, default=None, help="stop after N documents")
    p.add_argument("--no-recipe", action="store_true", help="print the reader's documents before the recipe")
    args = p.parse_args(argv)

    spec = get_reader(args.reader)
    recipe = None if args.no_recipe else spec.load_recipe()
    stats = ReadStats()
    out = sys.stdout
    status = 0
    printed = 0
    try:
        if os.path.isdir(args.path):
            dir_reader = spec.load_dir_reader()
            if dir_reader is None:
                p.error(f"reader {args.reader!r} reads files, not directories: {args.path}")
            docs = dir_reader(args.path, stats)
            stream = None
        else:
            stream = open(args.path, "rb")
            docs = spec.load_reader()(stream, args.path, stats)
        try:
            for doc in docs:
                if recipe is not None:
                    doc = recipe(doc, stats)
                    if doc is None:
                        continue
                out.write(json.dumps(doc.to_json_dict(), ensure_ascii=False) + "\n")
                printed += 1
                if args.limit is not None and printed >= args.limit:
                    break
        finally:
            if stream is not None:
                stream.close()
    except ReaderError as exc:
        print(f"corral read: {exc}", file=sys.stderr)
        status = 1
    except FileNotFoundError as exc:
        print(f"corral read: no such file: {exc.filename}", file=sys.stderr)
        return 2
    summary = {
        "printed": printed,
        "emitted_by_reader": stats.emitted,
        "dropped": dict(sorted(stats.dropped.items())),
        "repaired": dict(sorted(stats.repaired.items())),
        "dead_letters": [d.to_json_dict() for d in stats.dead_letters[:20]],
    }
    print(json.dumps(summary, ensure_ascii=False), file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
