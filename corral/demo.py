"""`corral demo` / `make demo`: the whole flow that exists so far, on the bundled sample (manifests/demo.toml).

Today that is the generated sample (`corral sample`), the LM step (SentencePiece + KenLM + cut-offs +
wiki-ref classifier) and the corpus build (all seven readers, CCNet chain, MinHash); tokenizer, shards
and training join as they land.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEMO_MANIFEST = Path(__file__).resolve().parents[1] / "manifests" / "demo.toml"


def _summary(corpus_dir: Path) -> list[str]:
    rows = []
    for manifest in sorted(corpus_dir.glob("*/manifest.json")):
        m = json.loads(manifest.read_text())
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(m.get("dropped", {}).items())) or "-"
        rows.append(
            f"  {manifest.parent.name:<14} read {m.get('read', '?'):>5}  kept {m.get('kept', '?'):>5}  dropped: {dropped}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="corral demo", description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default=str(DEMO_MANIFEST))
    p.add_argument("--force", action="store_true", help="recompute even if outputs exist")
    args = p.parse_args(argv)

    from corral.sample import ensure_sample
    from manifests.schema import load_manifest
    from pipeline import build, lm

    print("==> corral sample", flush=True)
    data, generated = ensure_sample()
    print(f"    {'generated' if generated else 'complete, reused:'} {data}", flush=True)
    manifest = load_manifest(args.manifest)
    force = ["--force"] if args.force or generated else []  # new inputs: models and corpus are stale
    print(f"==> corral lm --manifest {args.manifest}", flush=True)
    rc = lm.main(["--manifest", args.manifest, *force])
    if rc:
        return rc
    print(f"==> corral build --manifest {args.manifest}", flush=True)
    rc = build.main(["--manifest", args.manifest, *force])
    if rc:
        return rc
    corpus = Path(manifest.output_dir())
    print("\ncorral demo finished.")
    print(f"  language models: {manifest.lm_dir()}")
    print(f"  corpus:          {corpus}  (Parquet + manifest.json + dead letters per source)")
    print("\n".join(_summary(corpus)))
    print("Not built yet: tokenizer training, Arrow shards, the trainer and the report.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
