"""Benchmark every reader on the real samples: input MB/s, documents/s, and `NAME_vs_decompress: N.NNx`
(the reader against plain decompression of the same bytes, the floor no reader can beat).

Run: `python -m benchmarks.readers` (needs ../shared/data; exits 0 with a note when it is absent).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from benchmarks import readers_markup, readers_streams

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CORRAL_SHARED_DATA", REPO.parent / "shared" / "data"))


def main() -> int:
    if not SHARED_DATA.is_dir():
        print(f"readers benchmark skipped: {SHARED_DATA} not found", file=sys.stderr)
        return 0
    for line in readers_streams.run(SHARED_DATA) + readers_markup.run(SHARED_DATA):
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
