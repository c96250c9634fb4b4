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
import itertools
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from filters.document import Document
from filters.perplexity import is_heldout
from filters.sources.source_file import SourceFile
from filters.wikiref import positives_kind, url_key
from manifests import storage
from manifests.lm_index import LMIndex, index_path
from manifests.schema import Manifest, ManifestError, load_manifest
from pipeline.read import match_inputs

log = logging.getLogger("corral.lm")


def read_source(manifest: Manifest, source: str) -> Iterator[Document]:
    """Documents of one manifest source (reader + recipe, the build's read path), in input order;
    broken files are logged with their dead letter."""
    cfg = manifest.sources[source]
    for item in match_inputs(manifest, source):
        sf = SourceFile(cfg.reader, item.path, item.is_dir, c4_rules=cfg.c4.rules, opener=storage.open_read)
        yield from sf
        if sf.broken is not None:
            log.warning("skipping the rest of %s: %s", item.path, sf.broken.detail)


def _upload(local_dir: str, target: str) -> None:
    for root, _dirs, files in os.walk(local_dir):
        for name in sorted(files):
            path = os.path.join(root, name)
            rel = os.path.relpath(path, local_dir)
            storage.copy_atomic(path, storage.join(target, *rel.split(os.sep)))


class Spool:
    """One language's articles on disk (JSON lines), split into training and held-out text."""

    def __init__(self, folder: str, lang: str) -> None:
        self.paths = {k: os.path.join(folder, f"{lang}.{k}.jsonl") for k in ("train", "heldout")}
        self.counts = {"train": 0, "heldout": 0}
        self._files = {k: open(p, "w", encoding="utf-8") for k, p in self.paths.items()}  # noqa: SIM115

    def add(self, text: str, heldout: bool) -> None:
        kind = "heldout" if heldout else "train"
        self._files[kind].write(json.dumps(text, ensure_ascii=False) + "\n")
        self.counts[kind] += 1

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def texts(self, kind: str) -> Iterator[str]:
        with open(self.paths[kind], encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)

    @property
    def docs(self) -> int:
        return self.counts["train"] + self.counts["heldout"]


def spool_wikipedia(manifest: Manifest, folder: str) -> tuple[dict[str, Spool], set[str]]:
    """Stream the LM source once: per-language spools on disk, and the set of cited URLs (url_key form)."""
    lm = manifest.lm
    spools: dict[str, Spool] = {}
    cited: set[str] = set()
    try:
        for doc in read_source(manifest, lm.source):
            cited.update(url_key(u) for u in doc.meta.get("external_links") or [])
            lang = doc.meta.get("lang") or "unknown"
            if lm.languages and lang not in lm.languages:
                continue
            if lang not in spools:
                spools[lang] = Spool(folder, lang)
            spools[lang].add(doc.text, is_heldout(doc.id, lm.cutoff_holdout))
    finally:
        for sp in spools.values():
            sp.close()
    return spools, cited


def train_all(manifest: Manifest, work_dir: str) -> dict[str, Any]:
    """Train every language model and the wiki-ref classifier into `work_dir`; return the index."""
    from filters.perplexity import BucketCutoffs, PerplexityScorer, train_lm

    lm = manifest.lm
    spool_dir = tempfile.mkdtemp(prefix="corral-lm-spool-")
    try:
        spools, cited = spool_wikipedia(manifest, spool_dir)
        index: dict[str, Any] = {
            "source": lm.source,
            "vocab_size": lm.vocab_size,
            "order": lm.order,
            "cutoff_holdout": lm.cutoff_holdout,
            "languages": {},
            "skipped_languages": {},
            "wikiref": None,
        }
        for lang in sorted(spools):
            sp = spools[lang]
            if sp.docs < lm.min_docs:
                log.warning("%s: %d articles < lm.min_docs=%d; no LM for it", lang, sp.docs, lm.min_docs)
                index["skipped_languages"][lang] = sp.docs
                continue
            # Too few held-out articles for percentiles: fall back to the training text (recorded).
            cut_kind = "heldout" if sp.counts["heldout"] >= 5 else "train"
            train_kind = "train" if sp.counts["train"] else "heldout"
            files = train_lm(
                sp.texts(train_kind),
                os.path.join(work_dir, lang),
                lang,
                vocab_size=lm.vocab_size,
                order=lm.order,
                sort_memory=lm.sort_memory,
                sentence_sample=lm.sentence_sample,
            )
            scorer = PerplexityScorer(str(files.sp_model), str(files.kenlm_model))
            cut = BucketCutoffs.from_perplexities([scorer.perplexity(t) for t in sp.texts(cut_kind)])
            index["languages"][lang] = {
                "sp_model": os.path.relpath(str(files.sp_model), work_dir),
                "kenlm_model": os.path.relpath(str(files.kenlm_model), work_dir),
                "p30": float(cut.p30),
                "p60": float(cut.p60),
                "docs": sp.docs,
                "train_docs": sp.counts[train_kind],
                "cutoff_docs": sp.counts[cut_kind],
                "cutoffs_from": "heldout" if cut_kind == "heldout" else "training_text",
            }
            log.info("%s: %d articles, cut-offs p30=%.1f p60=%.1f", lang, sp.docs, cut.p30, cut.p60)
        if lm.wikiref_source:
            if lm.wikiref_source not in manifest.sources:
                raise ManifestError(
                    manifest.path, "lm.wikiref_source", f"no source named {lm.wikiref_source!r}"
                )
            index["wikiref"] = train_wikiref(manifest, spools, cited, work_dir)
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
    checksums = {}
    for root, _dirs, names in os.walk(work_dir):
        for name in names:
            path = os.path.join(root, name)
            checksums[os.path.relpath(path, work_dir).replace(os.sep, "/")] = storage.sha256_of(path)
    index["checksums"] = dict(sorted(checksums.items()))
    return index


def train_wikiref(
    manifest: Manifest, wiki: dict[str, Spool], cited: set[str], work_dir: str
) -> dict[str, Any]:
    """Positives: CC pages Wikipedia cites when at least `lm.min_docs` match, else Wikipedia article text
    (GPT-3's proxy); negatives: the other CC pages, before any filtering. Which was used is recorded."""
    from filters.wikiref import WikiRefClassifier

    cap = manifest.lm.max_wikiref_examples
    matched: list[str] = []
    others: list[str] = []
    seen = 0
    for doc in read_source(manifest, manifest.lm.wikiref_source):
        seen += 1
        url = doc.meta.get("url")
        if url and url_key(url) in cited:
            if len(matched) < cap:
                matched.append(doc.text)
        elif len(others) < cap:
            others.append(doc.text)
        if len(matched) >= cap and len(others) >= cap:
            break
    kind = positives_kind(len(matched), manifest.lm.min_docs)
    if kind == "cited_cc_pages":
        positives: Iterable[str] = matched
        n_pos = len(matched)
        negatives = others
    else:
        langs = sorted(wiki)
        n_pos = min(cap, sum(wiki[lang].docs for lang in langs))
        positives = itertools.islice(
            itertools.chain.from_iterable(
                wiki[lang].texts(k) for lang in langs for k in ("train", "heldout")
            ),
            cap,
        )
        negatives = matched + others  # too few matches to be a class of their own: random pages
    if n_pos == 0 or not negatives:
        raise ManifestError(
            manifest.path,
            "lm.wikiref_source",
            f"no {'positives' if n_pos == 0 else 'negatives'} to train the wiki-ref classifier on",
        )
    WikiRefClassifier.train(positives, negatives, os.path.join(work_dir, "wikiref.bin"), seed=manifest.seed)
    log.info("wiki-ref classifier: %d %s positives, %d negatives", n_pos, kind, len(negatives))
    return {
        "model": "wikiref.bin",
        "positives": kind,
        "n_positives": n_pos,
        "n_negatives": len(negatives),
        "cited_urls": len(cited),
        "cited_matches": len(matched),
        "pages_read": seen,
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
        path = index_path(out)
        if storage.exists(path) and not args.force:
            print(f"LM models complete ({path}); skipped (use --force to retrain)")
            return 0
        work = tempfile.mkdtemp(prefix="corral-lm-")
        try:
            index = train_all(manifest, work)
            if not index["languages"]:
                raise ManifestError(
                    manifest.path, "lm.min_docs", "no language has enough articles to train an LM"
                )
            storage.delete(path)
            _upload(work, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except ManifestError as exc:
        print(f"corral lm: {exc}", file=sys.stderr)
        return 2
    LMIndex.model_validate(index).write(out)
    print(f"LM models for {', '.join(index['languages'])} in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
