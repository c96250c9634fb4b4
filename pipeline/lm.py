"""`corral lm`: CCNet's LM step — per-language SentencePiece + KenLM and p30/p60 cut-offs from Wikipedia.

For every language of the manifest's Wikipedia source (`lm.source`) with at least `lm.min_docs`
articles (restricted to `lm.languages` when given), a SentencePiece model and a KenLM 5-gram are trained
on the articles (`filters.perplexity.train_lm`), every article is scored, and the 30th/60th percentiles
become the head/middle/tail cut-offs (cc_net `PerplexityBucket(30, 60)`). The Wikipedia-reference
classifier for CommonCrawl is trained here too (`lm.wikiref_source`): positives are pages of that source
whose URL Wikipedia cites as an external link when at least `min_docs` match, else Wikipedia article text
(GPT-3's proxy); negatives are the source's pages before filtering. Which was used is recorded.

Everything lands in `lm.output` with an index `lm.json` (files, cut-offs, sha256) written last; the build
job reads only that index. Rerunning with a complete index is a no-op unless `--force`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from filters.document import Document
from filters.sources.base import ReaderError, ReadStats
from filters.sources.registry import get_reader
from manifests.schema import Manifest, ManifestError, load_manifest
from pipeline.ccnet import LM_INDEX
from pipeline.common import sha256_of, write_atomic
from pipeline.read import match_inputs

log = logging.getLogger("corral.lm")
MAX_NEGATIVES = 20000


def read_source(manifest: Manifest, source: str) -> Iterator[Document]:
    """Documents of one manifest source (reader + recipe), in input order; broken files are logged."""
    spec = get_reader(manifest.sources[source].reader)
    read, recipe, read_dir = spec.load_reader(), spec.load_recipe(), spec.load_dir_reader()
    for item in match_inputs(manifest, source):
        stats = ReadStats()
        try:
            if item.is_dir and read_dir is not None:
                docs = read_dir(item.path, stats)
                yield from (d for d in (recipe(x, stats) if recipe else x for x in docs) if d is not None)
                continue
            with FileSystems.open(item.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                for doc in read(f, item.path, stats):
                    doc = recipe(doc, stats) if recipe else doc
                    if doc is not None:
                        yield doc
        except ReaderError as exc:
            log.warning("skipping the rest of %s: %s", item.path, exc)


def _upload(local_dir: str, target: str) -> None:
    for root, _dirs, files in os.walk(local_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, local_dir)
            with open(path, "rb") as f:
                write_atomic(FileSystems.join(target, *rel.split(os.sep)), f.read())


def train_all(manifest: Manifest, work_dir: str) -> dict[str, Any]:
    """Train every language model and the wiki-ref classifier into `work_dir`; return the index."""
    from filters.perplexity import BucketCutoffs, PerplexityScorer, train_lm

    lm = manifest.lm
    by_lang: dict[str, list[Document]] = {}
    for doc in read_source(manifest, lm.source):
        lang = doc.meta.get("lang") or "unknown"
        if not lm.languages or lang in lm.languages:
            by_lang.setdefault(lang, []).append(doc)
    index: dict[str, Any] = {
        "source": lm.source,
        "vocab_size": lm.vocab_size,
        "languages": {},
        "wikiref": None,
    }
    for lang in sorted(by_lang):
        docs = sorted(by_lang[lang], key=lambda d: d.id)
        if len(docs) < lm.min_docs:
            log.warning("%s: %d articles < lm.min_docs=%d; no LM for it", lang, len(docs), lm.min_docs)
            continue
        texts = [d.text for d in docs]
        files = train_lm(texts, os.path.join(work_dir, lang), lang, vocab_size=lm.vocab_size)
        scorer = PerplexityScorer(str(files.sp_model), str(files.kenlm_model))
        cut = BucketCutoffs.from_perplexities(scorer.perplexity_batch(texts))
        index["languages"][lang] = {
            "sp_model": os.path.relpath(str(files.sp_model), work_dir),
            "kenlm_model": os.path.relpath(str(files.kenlm_model), work_dir),
            "p30": float(cut.p30),
            "p60": float(cut.p60),
            "docs": len(docs),
        }
        log.info("%s: %d articles, cut-offs p30=%.1f p60=%.1f", lang, len(docs), cut.p30, cut.p60)
    if lm.wikiref_source and lm.wikiref_source in manifest.sources:
        index["wikiref"] = train_wikiref(manifest, by_lang, work_dir)
    checksums = {}
    for root, _dirs, names in os.walk(work_dir):
        for name in names:
            path = os.path.join(root, name)
            checksums[os.path.relpath(path, work_dir)] = sha256_of(path)
    index["checksums"] = dict(sorted(checksums.items()))
    return index


def train_wikiref(manifest: Manifest, wiki: dict[str, list[Document]], work_dir: str) -> dict[str, Any]:
    """Positives: cited CC pages when enough match, else Wikipedia text; negatives: random CC pages."""
    from filters.wikiref import WikiRefClassifier

    cited: set[str] = set()
    for docs in wiki.values():
        for d in docs:
            cited.update(d.meta.get("external_links") or [])
    pages = []
    for doc in read_source(manifest, manifest.lm.wikiref_source):
        pages.append(doc)
        if len(pages) >= MAX_NEGATIVES:
            break
    matched = [d.text for d in pages if d.meta.get("url") in cited]
    if len(matched) >= manifest.lm.min_docs:
        positives, kind = matched, "cited_cc_pages"
    else:
        positives, kind = [d.text for docs in wiki.values() for d in docs], "wikipedia_text"
    negatives = [d.text for d in pages]
    if not positives or not negatives:
        raise ManifestError(
            manifest.path,
            "lm.wikiref_source",
            f"no {'positives' if not positives else 'negatives'} to train on",
        )
    WikiRefClassifier.train(positives, negatives, os.path.join(work_dir, "wikiref.bin"))
    return {
        "model": "wikiref.bin",
        "positives": kind,
        "n_positives": len(positives),
        "n_negatives": len(negatives),
        "cited_matches": len(matched),
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="corral lm", description="Train the CCNet LMs and bucket cut-offs.")
    p.add_argument("--manifest", required=True)
    p.add_argument("--force", action="store_true", help="retrain even if the LM index exists")
    args = p.parse_args(argv)
    try:
        manifest = load_manifest(args.manifest)
        if manifest.lm.source not in manifest.sources:
            raise ManifestError(manifest.path, "lm.source", f"no source named {manifest.lm.source!r}")
        out = manifest.lm_dir()
        index_path = FileSystems.join(out, LM_INDEX)
        if FileSystems.exists(index_path) and not args.force:
            print(f"LM models complete ({index_path}); skipped (use --force to retrain)")
            return 0
        work = tempfile.mkdtemp(prefix="corral-lm-")
        try:
            index = train_all(manifest, work)
            if not index["languages"]:
                raise ManifestError(
                    manifest.path, "lm.min_docs", "no language has enough articles to train an LM"
                )
            if FileSystems.exists(index_path):
                FileSystems.delete([index_path])
            _upload(work, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except ManifestError as exc:
        print(f"corral lm: {exc}", file=sys.stderr)
        return 2
    write_atomic(index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    print(f"LM models for {', '.join(index['languages'])} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
