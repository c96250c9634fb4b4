#!/usr/bin/env bash
# GPU benchmark of `corral train` on one GPU (for when a GPU machine is lent; about 4-6 minutes):
#   llama-1b   bf16 autocast, torch.compile, seq 2048, micro-batch 8   -> tokens/s and MFU
#   llama-125m bf16 autocast, torch.compile, seq 2048, micro-batch 16  -> tokens/s and MFU
# on synthetic shards (vocabulary 32,000). MFU = tokens/s × (6·N_non-embedding + 12·L·d·T) / peak, the
# peak from trainer/observe.py's table for the device name (override: PEAK_TFLOPS=…).
# Fails loudly (exit 1) when no CUDA GPU is visible. Usage: bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "benchmarks/gpu.sh: FAILED: nvidia-smi not found; this benchmark needs a CUDA GPU" >&2
  exit 1
fi
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "benchmarks/gpu.sh: FAILED: torch sees no CUDA device (torch $("$PY" -c 'import torch; print(torch.__version__)'))" >&2
  exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PY" - "$WORK/shards" <<'EOF'
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, "tests")
from trainer_fixture import shards_from_docs

rng = np.random.default_rng(0)
docs, total = [], 0
while total < 8_000_000:  # enough for 30 steps of 1B (16,384 tokens each) without a second epoch
    n = int(rng.integers(200, 8000))
    docs.append((("web", "code")[len(docs) % 2], np.append(rng.integers(3, 32000, n), 2)))
    total += n + 1
shards_from_docs(Path(sys.argv[1]), docs, ["web", "code"], 32000, "0" * 64, files=4, validation_docs=4)
EOF

cat >"$WORK/base.toml" <<EOF
run_dir = "$WORK/run"
[data]
shards = "$WORK/shards"
seq_len = 2048
num_workers = 2
[train]
steps = 30
dtype = "bf16"
compile = true
device = "cuda"
[optim]
warmup_steps = 5
[checkpoint]
every = 0
export = false
[log]
every = 1
progress = false
tensorboard = false
[eval]
every = 0
sequences = 0
samples = 0
EOF

PEAK_ARGS=()
if [ -n "${PEAK_TFLOPS:-}" ]; then PEAK_ARGS=(--log.peak_tflops "$PEAK_TFLOPS"); fi

bench() {  # name preset micro_batch timeout
  local name=$1 preset=$2 mb=$3 limit=$4
  local run="$WORK/run-$name"
  if ! timeout "$limit" "$PY" -m trainer.train --config "$WORK/base.toml" --run_dir "$run" \
      --model.preset "$preset" --train.micro_batch "$mb" --train.batch_tokens $((mb * 2048)) \
      "${PEAK_ARGS[@]}" >"$WORK/$name.log" 2>&1; then
    echo "benchmarks/gpu.sh: FAILED: $name (see the log below)" >&2
    tail -40 "$WORK/$name.log" >&2
    exit 1
  fi
  "$PY" - "$run/metrics.jsonl" "$name" <<'EOF'
import json
import statistics
import sys

records = [json.loads(line) for line in open(sys.argv[1])]
steady = records[10:]  # the first steps compile and warm up
tps = statistics.median(r["tokens_per_s"] for r in steady)
mfus = [r["mfu"] for r in steady if r["mfu"] is not None]
mfu = f"{statistics.median(mfus):.1%}" if mfus else "n/a (device not in the peak table; set PEAK_TFLOPS)"
print(f"gpu_{sys.argv[2]}: {tps:,.0f} tokens/s, MFU {mfu}, final loss {records[-1]['loss']:.3f}")
EOF
  grep -E "^(parameters|FLOPs/token|memory)" "$WORK/$name.log" | sed "s/^/  $name /"
}

bench llama-1b_bf16_compile_seq2048 llama-1b 8 300
bench llama-125m_bf16_compile_seq2048 llama-125m 16 150
