"""`corral build` / `python -m pipeline.build`: the manifest's sources → filtered, deduplicated Parquet.

Per source, three passes over its input files (`pipeline.passes`), cc_net's two passes plus a write:
read + recipe → [hashes and digests counted across the source] → the read chunks pass 1 kept (each input
is parsed once), mined with the verdicts: whole-text exact dedup, line dedup, language ID, perplexity
buckets, wiki-ref, bad words, MinHash band keys →
[near-duplicate clusters] → Parquet parts that follow the input files, dead letters, `manifest.json`
written last once every file's counts balance (`pipeline.write`). Documents never cross a shuffle.
Everything that can be refused is refused before any work starts (manifest keys, globs that match nothing,
missing LM models, unreadable word lists); a source whose `manifest.json` exists is skipped unless
`--force`; `--explain` prints each source's effective settings (recipe defaults + the manifest's keys).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import apache_beam as beam

from filters.ccnet import dedup_rule
from filters.dedup import DuplicatedLines
from filters.sources.registry import get_reader
from manifests import storage
from manifests.corpus import MANIFEST, CorpusManifest, is_complete
from manifests.lm_index import LMIndex, index_path
from manifests.schema import Manifest, ManifestError, load_manifest
from manifests.versions import package_versions
from pipeline.dedup import ClusterSizes, DuplicateMembers, NearDuplicates
from pipeline.grouping import parts_for
from pipeline.linededup import BROADCAST, PER_FILE, LineVerdicts
from pipeline.options import is_dry_run, is_local, make_runner, parse_args, pipeline_options
from pipeline.passes import (
    ADMITTED,
    BANDS,
    COUNTS,
    DIGESTS,
    IDS,
    LINES,
    SPILLED,
    CountReceived,
    HashFileFn,
    MineFileFn,
    WritePartFn,
)
from pipeline.read import InputFile, match_inputs, parse_node
from pipeline.write import TMP, FinalizeFn, clear_staging

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


def model_paths(manifest: Manifest, source: str) -> dict[str, Any]:
    """Where the source's chain finds its models (paths may be gs://; workers copy them locally)."""
    cfg = manifest.sources[source]
    cc = cfg.ccnet
    out: dict[str, Any] = {}
    if not cc.enabled:
        return out
    if cc.langid:
        from filters.langid import default_model_path

        out["langid"] = manifest.resolve(cc.langid_model) if cc.langid_model else str(default_model_path())
    if cc.perplexity or cc.wikiref:
        lm_dir = manifest.lm_dir()
        index = LMIndex.read_from(lm_dir)
        out["lms"] = {
            lang: {
                "sp_model": storage.join(lm_dir, e.sp_model),
                "kenlm_model": storage.join(lm_dir, e.kenlm_model),
                "p30": e.p30,
                "p60": e.p60,
            }
            for lang, e in index.languages.items()
        }
        if cc.wikiref and index.wikiref is not None:
            out["wikiref"] = storage.join(lm_dir, index.wikiref.model)
    if cfg.c4.badwords:
        out["badwords"] = {lang: manifest.resolve(p) for lang, p in cfg.c4.badwords.items()}
    return out


def check_word_lists(manifest: Manifest, source: str) -> None:
    from filters.quality import load_word_list

    for lang, path in manifest.sources[source].c4.badwords.items():
        try:
            load_word_list(manifest.resolve(path))
        except ValueError as exc:
            raise ManifestError(manifest.path, f"sources.{source}.c4.badwords.{lang}", str(exc)) from None


def source_header(manifest: Manifest, source: str, files: list[InputFile]) -> dict[str, Any]:
    cfg = manifest.sources[source]
    return {
        "reader": cfg.reader,
        "weight": cfg.weight,
        "seed": manifest.seed,
        "inputs": [{"path": f.path, "bytes": f.size} for f in files],
        "settings": cfg.effective(),
        "models": model_checksums(manifest, source),
        "versions": package_versions(VERSIONED),
    }


def cluster_algorithm(cfg: Any, files: list[InputFile], local_runner: bool) -> str:
    """ "sharded" or "distributed" (see `pipeline.dedup`), from the setting, the runner and the input size."""
    algorithm = cfg.clusters.algorithm
    if algorithm != "auto":
        return algorithm
    small = sum(f.size for f in files) <= cfg.clusters.sharded_max_input_bytes
    return "sharded" if local_runner or small else "distributed"


def with_hash_shards(manifest: Manifest, source: str, files: list[InputFile]) -> Manifest:
    """The manifest with the source's `dedup_shards = "auto"` resolved from its input size, so that every
    pass and `manifest.json` see the same number."""
    cfg = manifest.sources[source]
    shards = cfg.ccnet.hash_shards(sum(f.size for f in files))
    if shards == cfg.ccnet.dedup_shards:
        return manifest
    ccnet = cfg.ccnet.model_copy(update={"dedup_shards": shards})
    sources = {**manifest.sources, source: cfg.model_copy(update={"ccnet": ccnet})}
    return manifest.model_copy(update={"sources": sources})


def add_source(
    p: beam.Pipeline,
    manifest: Manifest,
    source: str,
    files: list[InputFile],
    out_dir: str,
    local_runner: bool = True,
) -> None:
    """Apply one source's three passes (see `pipeline.passes`) and its commit to the pipeline."""
    manifest = with_hash_shards(manifest, source, files)
    cfg = manifest.sources[source]
    tmp_dir = storage.join(out_dir, TMP)
    rule = dedup_rule(cfg)
    algorithm = cluster_algorithm(cfg, files, local_runner)
    distributed = algorithm == "distributed"
    parts = parts_for(sum(f.size for f in files))
    n = f"[{source}]"
    inputs = p | f"Files{n}" >> beam.Create(files) | f"Spread{n}" >> beam.Reshuffle()
    by_index = inputs | f"ByIndex{n}" >> beam.Map(lambda f: (f.index, f))
    mine_inputs: dict[str, beam.PCollection] = {"file": by_index}
    broadcast: beam.PCollection | None = None
    global_counts = []  # `(key, n)` counts of the whole source (line-dedup paths, cluster sizes)
    arrived = []  # per-file counts of the small records that reached their next stage
    if rule is not None or cfg.exact_dedup:
        hashed = inputs | f"HashPass{n}" >> beam.ParDo(HashFileFn(cfg, tmp_dir)).with_outputs(
            LINES, DIGESTS, ADMITTED
        )
        mine_inputs["admitted"] = hashed[ADMITTED]
        if rule is not None:
            cc = cfg.ccnet
            verdicts = hashed[LINES] | f"LineDedup{n}" >> LineVerdicts(
                source, cc.dedup_shards, cc.broadcast_max_hashes, parts
            )
            arrived.append(hashed[LINES] | f"Arrived{LINES}{n}" >> CountReceived(LINES))
            broadcast = verdicts[BROADCAST]
            mine_inputs["lines"] = verdicts[PER_FILE]
            global_counts.append(verdicts["paths"])
        if cfg.exact_dedup:
            arrived.append(hashed[DIGESTS] | f"Arrived{DIGESTS}{n}" >> CountReceived(DIGESTS))
            mine_inputs["exact"] = (
                hashed[DIGESTS]
                | f"ExactDuplicates{n}" >> DuplicateMembers(distributed, parts)
                | f"ExactToFile{n}" >> beam.Map(lambda node: (parse_node(node)[1], parse_node(node)[0]))
            )
    if broadcast is None:
        broadcast = p | f"NoBroadcast{n}" >> beam.Create([]).with_output_types(DuplicatedLines)
    mined = (
        mine_inputs
        | f"JoinFile{n}" >> beam.CoGroupByKey()
        | f"MinePass{n}"
        >> beam.ParDo(
            MineFileFn(source, cfg, tmp_dir, model_paths(manifest, source)),
            broadcast=beam.pvalue.AsList(broadcast),
        ).with_outputs(BANDS, IDS, COUNTS, SPILLED)
    )
    part_of = {f.index: f.part for f in files}

    def to_part(node: str) -> tuple[int, str]:
        return part_of[parse_node(node)[1]], node

    part_inputs: dict[str, beam.PCollection] = {
        "spills": mined[SPILLED],
        "duplicate_id": mined[IDS]
        | f"DuplicateIds{n}" >> DuplicateMembers(distributed, parts)
        | f"IdToPart{n}" >> beam.Map(to_part),
    }
    arrived.append(mined[IDS] | f"Arrived{IDS}{n}" >> CountReceived(IDS))
    if cfg.minhash.enabled:
        arrived.append(mined[BANDS] | f"Arrived{BANDS}{n}" >> CountReceived(BANDS))
        near = mined[BANDS] | f"NearDuplicates{n}" >> NearDuplicates(
            distributed, cfg.clusters.max_rounds, parts
        )
        part_inputs["near_duplicate"] = near | f"NearToPart{n}" >> beam.Map(lambda nr: to_part(nr[0]))
        global_counts.append(near | f"ClusterSizes{n}" >> ClusterSizes())
    part_files: dict[int, list[int]] = {}
    for f in files:
        part_files.setdefault(f.part, []).append(f.index)
    written = (
        part_inputs
        | f"JoinPart{n}" >> beam.CoGroupByKey()
        | f"WritePass{n}"
        >> beam.ParDo(WritePartFn(source, tmp_dir, part_files, cfg.shard_bytes)).with_outputs(
            COUNTS, main="parts"
        )
    )
    counts = (mined[COUNTS], written[COUNTS], *arrived) | f"AllCounts{n}" >> beam.Flatten()
    if not global_counts:
        global_counts.append(p | f"NoGlobals{n}" >> beam.Create([]))
    globals_ = tuple(global_counts) | f"Globals{n}" >> beam.Flatten()
    header = source_header(manifest, source, files)
    header["paths"] = {"clusters": algorithm}
    _ = (
        p
        | f"Once{n}" >> beam.Create([None])
        | f"Finalize{n}"
        >> beam.ParDo(
            FinalizeFn(source, out_dir, header, files),
            parts=beam.pvalue.AsList(written.parts),
            counts=beam.pvalue.AsList(counts),
            global_counts=beam.pvalue.AsList(globals_),
        )
    )


def explain(manifest: Manifest, names: list[str]) -> str:
    """The effective settings of each source as TOML: every key, marked where the manifest set it (the
    rest is the reader's recipe, `manifests.schema.RECIPES`, or the stage default)."""
    lines = [f'# {manifest.path}: effective settings ("# set" = written in the manifest)']
    for name in names:
        cfg = manifest.sources[name]
        explicit = cfg.explicit
        settings = cfg.effective()
        flat = {k: v for k, v in settings.items() if not isinstance(v, dict)}
        lines += ["", f"[sources.{name}]"]
        lines += [_toml_line(k, v, k in explicit) for k, v in flat.items()]
        for table, values in settings.items():
            if isinstance(values, dict):
                lines += ["", f"[sources.{name}.{table}]"]
                set_here = explicit.get(table, {})
                lines += [_toml_line(k, v, k in set_here) for k, v in values.items()]
    return "\n".join(lines)


def _toml_line(key: str, value: Any, explicit: bool) -> str:
    import json

    if value is None:
        return f"# {key} = (not set)"
    return f"{key} = {json.dumps(value, ensure_ascii=False)}" + ("  # set" if explicit else "")


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
        check_word_lists(manifest, name)
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    args, beam_args = parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
        names = selected_sources(manifest, args.sources)
        if args.explain:
            print(explain(manifest, names))
            return 0
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
        clear_staging(storage.join(out_root, name))
    opts = pipeline_options(beam_args)
    with beam.Pipeline(runner=make_runner(opts), options=opts) as p:
        for name in todo:
            add_source(p, manifest, name, files[name], storage.join(out_root, name), is_local(opts))
    log_metrics(p.result)
    if is_dry_run(opts):
        return 0
    for name in todo:
        out_dir = storage.join(out_root, name)
        if is_complete(out_dir):
            m = CorpusManifest.read_from(out_dir)
            print(f"{name}: read {m.read} kept {m.kept} dropped {m.dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
