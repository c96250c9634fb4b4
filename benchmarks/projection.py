"""Cost projection: LLaMA's corpus built with corral on Dataflow, from throughput measured in this run.

What it measures here, one core, on synthetic Common Crawl pages (benchmarks/synth.py, ~3.3 KB of text a
page) and, where ../shared/data exists, on the real samples of the other formats:
  - per-stage throughput of the build's own kernels (`filters/`): WET reading (once, in pass 1), the
    read chunks pass 1 writes and pass 2 reads back, hashing (pass 1), line dedup + LID (+ perplexity with
    --lm-dir) + MinHash (pass 2), writing;
  - the bytes of small records the passes exchange per document, from a real `corral build` of the same
    pages (the manifest's `stats.small_record_bytes`);
  - Beam's overhead over the bare kernels is an argument (`--beam-efficiency`, the `ccnet_chain_beam_vs_bare`
    ratio of benchmarks/ccnet_chain.py; 0.8 by default, its goal).
Then, for LLaMA's seven sources (input sizes below; Table 1 of arXiv:2302.13971 gives the sizes on disk
after filtering), it prints vCPU-hours, shuffle GB and dollars at the Dataflow prices given as arguments,
next to the published anchor: tfds built C4 from one Common Crawl dump (~7 TB of WET) in about 341 CPU-days.

Prices are arguments because they change: the defaults are Google's published us-central1 batch list
prices as the author knew them (vCPU $0.056/h, memory $0.003557/GB-h, Dataflow Shuffle $0.011/GB
processed), NOT re-read for this run: no network here. Pass `--prices-date` with the day you read yours.

Run: python -m benchmarks.projection [--docs 4000] [--lm-dir build/demo/lm] [--vcpu-price 0.056 ...]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Inputs of the build per source (what is read, not what is kept): Common Crawl is LLaMA's five CCNet
# dumps as WET text (~7 TB each, the tfds C4 anchor's figure; ~3e9 pages each); the others are read whole
# and are about the size LLaMA's Table 1 gives for them (sizes on disk; C4 is read as published).
SOURCES = {
    # name: (input TB, documents, stages)
    "commoncrawl": (35.0, 15e9, "wet_ccnet_minhash"),
    "c4": (0.783, 365e6, "json_ccnet"),
    "github": (0.328, 30e6, "json_exact"),
    "wikipedia": (0.083, 20e6, "xml"),
    "books": (0.085, 0.2e6, "text_minhash"),
    "arxiv": (0.092, 1.6e6, "tar"),
    "stackexchange": (0.078, 30e6, "xml"),
}
ID_RECORD_BYTES = 60  # (id, node): the duplicate-id check every source pays
TFDS_C4_CPU_DAYS = 341.0
TFDS_C4_WET_TB = 7.0


def _time(fn, *args) -> float:  # noqa: ANN001
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def measure_kernels(docs: int, lm_dir: str | None) -> dict[str, float]:
    """Seconds per document of each stage, one core (process CPU time), on synthetic WET pages."""
    from benchmarks.synth import write_wet_corpus
    from filters.ccnet import HashPass, Miner
    from filters.dedup import DuplicatedLines, merge_line_records
    from filters.langid import LanguageIdentifier
    from filters.minhash import MinHasher
    from filters.scoring import DocumentScorer, LanguageModelFiles, ScoringModels
    from filters.sources.source_file import SourceFile
    from manifests.corpus import iter_read_chunk, parquet_bytes, read_chunk_bytes, row_meta
    from manifests.schema import SourceConfig

    tmp = Path(tempfile.mkdtemp(prefix="corral-projection-"))
    corpus = write_wet_corpus(tmp / "wet", docs, 1, seed=3)
    wet = str(corpus.files[0])
    text_bytes = 0
    out: dict[str, float] = {}
    out["read"] = _time(lambda: list(SourceFile("wet", wet))) / docs
    pages = list(SourceFile("wet", wet))
    text_bytes = sum(len(d.text.encode("utf-8")) for d in pages)
    cfg = SourceConfig.model_validate(
        {"reader": "wet", "inputs": [wet], "weight": 1, "ccnet": {"wikiref": False}}
    )
    hp = HashPass(cfg)
    records = []
    out["hash"] = _time(lambda: records.append(hp.line_records(pages))) / docs
    hashes = hp.line_hashes(pages)

    def chunk_round_trip(n: int) -> None:
        # pass 1 writes the admitted documents with their line hashes, pass 2 reads them back
        data = read_chunk_bytes(pages[:n], hashes[:n], 256)
        for rows, _ in iter_read_chunk(io.BytesIO(data)):
            _ = [row_meta(r) for r in rows]

    chunk_round_trip(16)  # warm-up: the LZ4 codec and the IPC writer start once per process
    out["read_chunk"] = _time(lambda: chunk_round_trip(len(pages))) / docs
    dup = [DuplicatedLines.from_records(merge_line_records(records))]
    plain = SourceConfig.model_validate(
        {"reader": "wet", "inputs": [wet], "weight": 1, "ccnet": {"perplexity": False, "wikiref": False}}
    )
    miner = Miner(plain, None)
    out["line_dedup"] = _time(lambda: miner.mine(pages, (), dup, hashes)) / docs
    lid = LanguageIdentifier()
    texts = [d.text for d in pages]
    out["langid"] = (
        _time(lambda: [lid.predict_batch(texts[i : i + 256]) for i in range(0, len(texts), 256)]) / docs
    )
    if lm_dir:
        from manifests.lm_index import LMIndex

        e = LMIndex.read_from(lm_dir).languages["en"]
        lms = {"en": LanguageModelFiles(f"{lm_dir}/{e.sp_model}", f"{lm_dir}/{e.kenlm_model}", e.p30, e.p60)}
        scorer = DocumentScorer(cfg.ccnet, ScoringModels.load(langid=False, lms=lms))
        out["perplexity"] = (
            _time(
                lambda: scorer._perplexity(
                    texts, list(range(len(texts))), [({"lang": "en"}, None)] * len(texts)
                )
            )
            / docs
        )
    hasher = MinHasher(shingle_hash="vectorized")
    out["minhash"] = (
        _time(lambda: [hasher.signatures(texts[i : i + 256]) for i in range(0, len(texts), 256)]) / docs
    )
    out["write"] = _time(lambda: parquet_bytes(pages)) / docs
    out["text_bytes_per_doc"] = text_bytes / docs
    return out


def measure_small_records(docs: int) -> float:
    """Payload bytes of small records per document, from a real build of synthetic pages (1 worker)."""
    from benchmarks.synth import write_wet_corpus
    from pipeline.build import main as build_main

    tmp = Path(tempfile.mkdtemp(prefix="corral-projection-build-"))
    corpus = write_wet_corpus(tmp / "wet", docs, 2, seed=4)
    glob = json.dumps(str(corpus.files[0].parent / "*.warc.wet.gz"))
    (tmp / "m.toml").write_text(
        f'output = "out"\nseed = 1\n[sources.cc]\nreader = "wet"\ninputs = [{glob}]\nweight = 1\n'
        "[sources.cc.ccnet]\nperplexity = false\nwikiref = false\n"
    )
    if build_main(["--manifest", str(tmp / "m.toml"), "--direct_num_workers", "1"]) != 0:
        raise SystemExit("the measuring build failed")
    m = json.loads((tmp / "out" / "cc" / "manifest.json").read_text())
    return m["stats"]["small_record_bytes"] / m["read"]


def project(args: argparse.Namespace, k: dict[str, float], record_bytes: float) -> list[str]:
    eff = args.beam_efficiency
    per_doc = {
        # seconds of one vCPU per document, Beam overhead included
        # (the wiki-ref classifier is a fastText model like LID: counted at LID's cost)
        # a source with a hash pass parses its files once and re-reads its own read chunks
        "wet_ccnet_minhash": k["read"]
        + k["read_chunk"]
        + k["hash"]
        + k["line_dedup"]
        + k["langid"] * 2
        + k.get("perplexity", 0.0)
        + k["minhash"]
        + k["write"] * args.cc_keep,
        "json_ccnet": k["read"] + k["read_chunk"] + k["hash"] + k["line_dedup"] + k["langid"] + k["write"],
        "json_exact": k["read"] + k["read_chunk"] + k["write"],
        "xml": k["read"] * args.xml_read_factor + k["write"],
        "text_minhash": k["read"] + k["minhash"] + k["write"],
        "tar": k["read"] * args.xml_read_factor + k["write"],
    }
    lines = [
        "| source | input | documents | vCPU-hours | shuffle GB | $ vCPU | $ memory | $ shuffle | $ total |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    totals = [0.0] * 5
    for name, (tb, docs, kind) in SOURCES.items():
        # per-document costs were measured on ~3.3 KB pages: scale by the source's bytes per document
        size_factor = (tb * 1e12 / docs) / k["text_bytes_per_doc"]
        vcpu_h = docs * per_doc[kind] * size_factor / eff / 3600
        # sources with line dedup / MinHash exchange the measured records; the others only ids
        payload = (
            record_bytes if kind in ("wet_ccnet_minhash", "json_ccnet", "text_minhash") else ID_RECORD_BYTES
        )
        shuffle_gb = docs * payload * args.shuffle_overhead / 1e9
        usd_cpu = vcpu_h * args.vcpu_price
        usd_mem = vcpu_h * args.gb_per_vcpu * args.memory_price
        usd_shuffle = shuffle_gb * args.shuffle_price
        row = (vcpu_h, shuffle_gb, usd_cpu, usd_mem, usd_shuffle)
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        lines.append(
            f"| {name} | {tb:g} TB | {docs:.2g} | {vcpu_h:,.0f} | {shuffle_gb:,.0f} | {usd_cpu:,.0f} | "
            f"{usd_mem:,.0f} | {usd_shuffle:,.0f} | {sum(row[2:]):,.0f} |"
        )
    lines.append(
        f"| **total** | | | **{totals[0]:,.0f}** | **{totals[1]:,.0f}** | {totals[2]:,.0f} | {totals[3]:,.0f} | "
        f"{totals[4]:,.0f} | **{sum(totals[2:]):,.0f}** |"
    )
    cc_tb, cc_docs, _ = SOURCES["commoncrawl"]
    cc_h = (
        cc_docs
        * per_doc["wet_ccnet_minhash"]
        * ((cc_tb * 1e12 / cc_docs) / k["text_bytes_per_doc"])
        / eff
        / 3600
    )
    anchor_h_per_tb = TFDS_C4_CPU_DAYS * 24 / TFDS_C4_WET_TB
    lines += [
        "",
        f"corral_cc_vcpu_hours_per_wet_tb: {cc_h / cc_tb:,.0f} (CCNet chain + MinHash, both passes)",
        f"tfds_c4_cpu_hours_per_wet_tb: {anchor_h_per_tb:,.0f} (341 CPU-days for ~7 TB of WET)",
        f"corral_vs_tfds_c4_cpu_per_tb: {anchor_h_per_tb / (cc_h / cc_tb):.2f}x",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=4000, help="synthetic pages to measure the kernels on")
    default_lm = REPO / "build" / "demo" / "lm"
    ap.add_argument("--lm-dir", default=str(default_lm) if (default_lm / "lm.json").exists() else None)
    ap.add_argument(
        "--beam-efficiency", type=float, default=0.8, help="Beam docs/CPU-s over the bare kernels'"
    )
    ap.add_argument("--cc-keep", type=float, default=0.1, help="fraction of CC pages kept (written)")
    ap.add_argument(
        "--xml-read-factor", type=float, default=4.0, help="XML/tar parsing cost over WET reading"
    )
    ap.add_argument(
        "--shuffle-overhead", type=float, default=2.0, help="framing + keys over the payload bytes"
    )
    ap.add_argument("--vcpu-price", type=float, default=0.056, help="$ per vCPU-hour (batch)")
    ap.add_argument("--memory-price", type=float, default=0.003557, help="$ per GB-hour (batch)")
    ap.add_argument(
        "--shuffle-price", type=float, default=0.011, help="$ per GB of Dataflow Shuffle data processed"
    )
    ap.add_argument("--gb-per-vcpu", type=float, default=8.0, help="worker memory per vCPU (n2-highmem: 8)")
    ap.add_argument("--prices-date", default="not re-read (author's knowledge of the list prices)")
    args = ap.parse_args(argv)
    import logging

    logging.disable(logging.WARNING)
    k = measure_kernels(args.docs, args.lm_dir)
    record_bytes = measure_small_records(min(args.docs, 4000))
    print(f"measured on {args.docs} synthetic pages of {k['text_bytes_per_doc']:.0f} text bytes, one core:")
    for stage in ("read", "read_chunk", "hash", "line_dedup", "langid", "perplexity", "minhash", "write"):
        if stage in k:
            print(f"  {stage}: {1 / k[stage]:,.0f} docs/s per core")
    if "perplexity" not in k:
        print("  perplexity: not measured (no LM: pass --lm-dir or run `make demo`); counted as 0")
    print(f"small_record_bytes_per_doc: {record_bytes:.0f} (payload; x{args.shuffle_overhead} for framing)")
    print(
        f"prices: vCPU ${args.vcpu_price}/h, memory ${args.memory_price}/GB-h ({args.gb_per_vcpu} GB/vCPU), "
        f"shuffle ${args.shuffle_price}/GB; read: {args.prices_date}; Beam efficiency {args.beam_efficiency}"
    )
    print()
    print("\n".join(project(args, k, record_bytes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
