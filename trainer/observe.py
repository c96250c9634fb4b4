"""What a run reports: metrics.jsonl, TensorBoard scalars, MFU against a named peak, LLaMA §6's energy estimate.

MFU (model FLOPs utilisation, PaLM appendix B; nanoGPT / torchtitan convention):
    MFU = tokens/s × (6·N_non-embedding + 12·L·d·T) / (peak FLOP/s per device × devices)
6·N counts the forward and backward matmuls of every non-embedding weight (the output head included), and
12·L·d·T the attention scores and their weighting (QKᵀ and AV, forward and backward) at sequence length T.
The peak is the device's dense bf16 tensor-core rate from its datasheet (table below, matched against the
CUDA device name), or `log.peak_tflops` for any other device; on a CPU with no setting, MFU is null.

Energy (LLaMA §6, following Wu et al. 2022): MWh = device-hours × power per device × PUE, with PUE 1.1;
tCO2eq = MWh × 0.385 (the US national average carbon intensity). device-hours are measured wall-clock hours
of the training loop × devices; the power is `energy.power_watts` (400 W, the A100 figure the paper used).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

from manifests import storage

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' datasheets. The first pattern
# found in the lower-cased device name wins, so the more specific names come first.
PEAK_BF16_TFLOPS: list[tuple[str, float]] = [
    ("gh200", 989.0),
    ("h200", 989.0),
    ("h100 nvl", 835.0),
    ("h100 pcie", 756.0),
    ("h100", 989.0),  # SXM5 (name "NVIDIA H100 80GB HBM3")
    ("h800", 989.0),
    ("b200", 2250.0),
    ("a100", 312.0),
    ("a800", 312.0),
    ("l40s", 362.0),
    ("l40", 181.0),
    ("l4", 121.0),
    ("mi300x", 1307.0),
    ("mi250x", 383.0),
]


def peak_tflops(device_name: str, override: float | None) -> float | None:
    """The per-device peak used for MFU: the setting when given, else the table entry for the device."""
    if override is not None:
        return override
    name = device_name.lower()
    for pattern, value in PEAK_BF16_TFLOPS:
        if pattern in name:
            return value
    return None


def mfu(tokens_per_s: float, flops_per_token: int, peak: float | None, devices: int) -> float | None:
    if peak is None or tokens_per_s <= 0:
        return None
    return tokens_per_s * flops_per_token / (peak * 1e12 * devices)


def energy_estimate(
    device_hours: float, power_watts: float, pue: float, tco2_per_mwh: float
) -> dict[str, float]:
    mwh = device_hours * power_watts * pue / 1e6
    return {
        "device_hours": device_hours,
        "power_watts": power_watts,
        "pue": pue,
        "mwh": mwh,
        "tco2eq": mwh * tco2_per_mwh,
    }


def _finite(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (the run stops on a non-finite loss anyway)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


class MetricsLog:
    """`metrics.jsonl` (one JSON object per logged step) and optional TensorBoard scalars, rank 0 only."""

    def __init__(self, run_dir: str, *, enabled: bool, tensorboard: bool) -> None:
        self.path = storage.join(run_dir, "metrics.jsonl")
        self.enabled = enabled
        self._tb = None
        if enabled and tensorboard:
            try:  # an optional extra: `pip install corral[tensorboard]`
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                pass
            else:
                self._tb = SummaryWriter(storage.join(run_dir, "tensorboard"))

    @staticmethod
    def truncate(path: str, last_step: int) -> None:
        """Drop records past `last_step` (a resumed run logs those steps again)."""
        if not os.path.exists(path):
            return
        kept = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip() and json.loads(line).get("step", 0) <= last_step:
                    kept.append(line if line.endswith("\n") else line + "\n")
        storage.write_text_atomic(path, "".join(kept))

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(_finite(record), sort_keys=True) + "\n")
        if self._tb is not None:
            step = record["step"]
            for key, value in record.items():
                if isinstance(value, int | float) and key != "step" and value is not None:
                    self._tb.add_scalar(f"train/{key}", value, step)
            for group in ("loss_by_source", "val_loss_by_source"):
                for name, value in (record.get(group) or {}).items():
                    if value is not None:
                        self._tb.add_scalar(f"{group}/{name}", value, step)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
