"""`corral read`: run one reader (and its source recipe) on one file and print documents as JSON lines.

For inspecting what corral makes of an input: the documents are those the build's read step makes
(`filters.sources.source_file.SourceFile`, with the reader's default recipe, C4 page rules included for
`c4_json`). Counts (read, drops by reason, repairs, dead letters) go to stderr at the end; a file that
breaks mid-way prints the documents before the break, then the error naming the file and position, and
exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from filters.sources.registry import READERS
from filters.sources.source_file import SourceFile
from manifests.schema import SourceConfig


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral read", description=__doc__.splitlines()[0])
    p.add_argument("--reader", required=True, choices=sorted(READERS))
    p.add_argument("path", help="input file (or a directory for the github and arxiv readers)")
    p.add_argument("--limit", type=int, default=None, help="stop after N documents")
    p.add_argument("--no-recipe", action="store_true", help="print the reader's documents before the recipe")
    args = p.parse_args(argv)

    if not os.path.exists(args.path):
        print(f"corral read: no such file: {args.path}", file=sys.stderr)
        return 2
    is_dir = os.path.isdir(args.path)
    if is_dir and READERS[args.reader].dir_reader is None:
        p.error(f"reader {args.reader!r} reads files, not directories: {args.path}")
    defaults = SourceConfig(reader=args.reader, inputs=[args.path], weight=1.0)
    source = SourceFile(args.reader, args.path, is_dir, recipe=not args.no_recipe, c4_rules=defaults.c4.rules)
    printed = 0
    for doc in source:
        sys.stdout.write(json.dumps(doc.to_json_dict(), ensure_ascii=False) + "\n")
        printed += 1
        if args.limit is not None and printed >= args.limit:
            break
    dead = source.take_dead_letters()
    summary = {
        "printed": printed,
        "read": source.read,
        "dropped": dict(sorted(source.dropped.items())),
        "repaired": dict(sorted(source.repaired.items())),
        "dead_letters": [d.to_json_dict() for d in dead[:20]],
    }
    print(json.dumps(summary, ensure_ascii=False), file=sys.stderr)
    if source.broken is not None:
        b = source.broken
        where = b.file if b.position is None else f"{b.file} at {b.position}"
        print(f"corral read: {where}: {b.detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
