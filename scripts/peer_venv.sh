#!/usr/bin/env bash
# The pinned peer venv that benchmarks/ccnet_chain.py runs datatrove in (its `vs_datatrove` line):
# build/peers/venv (ignored, inside the project, so a fresh machine gets it with `make bench-peers`).
# Every package is pinned in scripts/peer_requirements.txt and installed with --no-deps, so the venv is
# the same everywhere; `pip check` then proves the pins are consistent. Re-running is a no-op while the
# requirements file is unchanged (a stamp holds its sha256; a half-built venv has no stamp and is rebuilt).
# Usage: bash scripts/peer_venv.sh [VENV_DIR]   (PYTHON=python3.11 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${1:-build/peers/venv}
REQ=scripts/peer_requirements.txt
STAMP="$VENV/.corral-peers"
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "peer venv up to date: $VENV/bin/python"
  exit 0
fi
command -v "$PYTHON" >/dev/null || { echo "peer_venv.sh: $PYTHON not found; set PYTHON=..." >&2; exit 1; }
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --no-deps -r "$REQ"
"$VENV/bin/pip" check
# What the datatrove side of benchmarks/ccnet_chain.py imports, and datatrove's own dependency check.
"$VENV/bin/python" - <<'PY'
import kenlm, sentencepiece  # noqa: F401
from datatrove.executor import LocalPipelineExecutor  # noqa: F401
from datatrove.pipeline.filters import LanguageFilter
from datatrove.pipeline.readers import WarcReader  # noqa: F401
from datatrove.utils.lid import FT176LID  # noqa: F401
from datatrove.utils.perplexity import KenlmModel, SentencePiece  # noqa: F401
from fasttext.FastText import _FastText  # noqa: F401

LanguageFilter(languages=["en"])  # raises ImportError when datatrove finds a dependency missing
PY
echo "$want" > "$STAMP"
echo "peer venv ready: $VENV/bin/python"
