"""`corral build` / `python -m pipeline.build`: the manifest's sources → filtered, deduplicated Parquet.

Per source: read (one composite transform per reader, files spread over workers) → recipe → optional
whole-text exact dedup → for web sources the CCNet chain (length, global line dedup, LID, perplexity
buckets, wiki-ref) → optional MinHash near-dedup → Parquet parts + dead letters + `manifest.json`.
Everything is checked before any work starts (manifest keys, globs that match nothing, missing LM
models); a source whose `manifest.json` exists is skipped unless `--force`.
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import sys
from typing import Any

import apache_beam as beam

from filters.sources.registry import get_reader
from manifests import storage
from manifests.corpus import MANIFEST, CorpusManifest, is_complete
from manifests.lm_index import LMIndex, index_path
from manifests.schema import Manifest, ManifestError, load_manifest
from pipeline.ccnet import CCNet
from pipeline.common import COUNTS, DEAD
from pipeline.dedup import ExactDedup, NearDedup
from pipeline.options import make_runner, parse_args, pipeline_options
from pipeline.read import InputFile, ReadSource, match_inputs
from pipeline.write import WriteSource, clear_output

log = logging.getLogger("corral.build")

VERSIONED = (
    "corral",
    "apache-beam",
    "pyarrow",
    "numpy",
    "fasttext-numpy2",
    "kenlm",
    "sentencepiece",
    "datasketch",
)


def tool_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def selected_sources(manifest: Manifest, sources: str | None) -> list[str]:
    if not sources:
        return list(manifest.sources)
    names = [s.strip() for s in sources.split(",") if s.strip()]
    for name in names:
        if name not in manifest.sources:
            raise ManifestError(
                manifest.path,
                f"sources.{name}",
                f"not in the manifest (known: {', '.join(manifest.sources)})",
            )
    return names


def model_checksums(manifest: Manifest, source: str) -> dict[str, str]:
    """sha256 of every model file the source's stages use (LID, per-language LMs, wiki-ref)."""
    cc = manifest.sources[source].ccnet
    if not cc.enabled:
        return {}
    from filters.langid import default_model_path

    lid = manifest.resolve(cc.langid_model) if cc.langid_model else str(default_model_path())
    out = {"langid": storage.sha256_of(lid)}
    if cc.perplexity or cc.wikiref:
        for name, sha in sorted(LMIndex.read_from(manifest.lm_dir()).checksums.items()):
            out[f"lm/{name}"] = sha
    return out


def check_models(manifest: Manifest, source: str) -> None:
    """Refuse, before any work, a CCNet source whose LM step has not been run."""
    cc = manifest.sources[source].ccnet
    if not cc.enabled or not (cc.perplexity or cc.wikiref):
        return
    path = index_path(manifest.lm_dir())
    key = f"sources.{source}.ccnet.{'perplexity' if cc.perplexity else 'wikiref'}"
    if not storage.exists(path):
        raise ManifestError(
            manifest.path,
            key,
            f"no LM models at {path}: run `corral lm --manifest {manifest.path}` first",
        )
    if cc.wikiref and LMIndex.read_from(manifest.lm_dir()).wikiref is None:
        raise ManifestError(
            manifest.path,
            f"sources.{source}.ccnet.wikiref",
            f"{path} has no wiki-ref classifier (the LM step needs `lm.wikiref_source`)",
        )


def source_header(manifest: Manifest, source: str, files: list[InputFile]) -> dict[str, Any]:
    cfg = manifest.sources[source]
    return {
        "reader": cfg.reader,
        "weight": cfg.weight,
        "seed": manifest.seed,
        "inputs": [{"path": f.path, "bytes": f.size} for f in files],
        "settings": cfg.model_dump(mode="json"),
        "models": model_checksums(manifest, source),
        "versions": tool_versions(),
    }


def add_source(
    p: beam.Pipeline, manifest: Manifest, source: str, files: list[InputFile], out_dir: str
) -> None:
    """Apply one source's transforms to the pipeline."""
    cfg = manifest.sources[source]
    read = p | f"Read[{source}]" >> ReadSource(source, cfg.reader, files)
    docs, counts = read.docs, [read[COUNTS]]
    if cfg.exact_dedup:
        exact = docs | f"ExactDedup[{source}]" >> ExactDedup(source)
        docs = exact.docs
        counts.append(exact[COUNTS])
    if cfg.ccnet.enabled:
        lm_dir = manifest.lm_dir() if (cfg.ccnet.perplexity or cfg.ccnet.wikiref) else None
        docs, more = docs | f"CCNet[{source}]" >> CCNet(source, cfg.ccnet, lm_dir)
        counts.extend(more)
    if cfg.minhash.enabled:
        near = docs | f"NearDedup[{source}]" >> NearDedup(source, cfg.minhash)
        docs = near.docs
        counts.append(near[COUNTS])
    header = source_header(manifest, source, files)
    all_counts = counts | f"Counts[{source}]" >> beam.Flatten()
    _ = {"docs": docs, "counts": all_counts, "dead": read[DEAD]} | f"Write[{source}]" >> WriteSource(
        source, out_dir, cfg.shard_bytes, header
    )


def log_metrics(result: Any) -> None:
    try:
        counters = result.metrics().query()["counters"]
    except Exception:  # noqa: BLE001 - not every runner reports metrics
        return
    for c in sorted(counters, key=lambda c: (c.key.metric.namespace, c.key.metric.name)):
        log.info("%s %s = %s", c.key.metric.namespace, c.key.metric.name, c.committed)


def plan(manifest: Manifest, names: list[str]) -> dict[str, list[InputFile]]:
    """Everything that can be refused is refused here, before the pipeline starts."""
    out: dict[str, list[InputFile]] = {}
    for name in names:
        get_reader(manifest.sources[name].reader)
        out[name] = match_inputs(manifest, name)
        check_models(manifest, name)
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args, beam_args = parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
        names = selected_sources(manifest, args.sources)
        files = plan(manifest, names)
    except ManifestError as exc:
        print(f"corral build: {exc}", file=sys.stderr)
        return 2
    out_root = manifest.output_dir(args.output)
    todo = []
    for name in names:
        out_dir = storage.join(out_root, name)
        if is_complete(out_dir) and not args.force:
            print(f"{name}: complete ({storage.join(out_dir, MANIFEST)}); skipped (use --force to rebuild)")
            continue
        todo.append(name)
    if not todo:
        return 0
    for name in todo:
        clear_output(storage.join(out_root, name))
    opts = pipeline_options(beam_args)
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        for name in todo:
            add_source(p, manifest, name, files[name], storage.join(out_root, name))
    log_metrics(p.result)
    from apache_beam.options.pipeline_options import TestOptions

    if opts.view_as(TestOptions).dry_run:
        return 0
    for name in todo:
        out_dir = storage.join(out_root, name)
        if is_complete(out_dir):
            m = CorpusManifest.read_from(out_dir)
            print(f"{name}: read {m.read} kept {m.kept} dropped {m.dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
