"""The synthetic WET generator (benchmarks/synth.py): real format, determinism, and what it plants.

The planted properties are checked with corral's own filters (the WET reader, CCNet line dedup, the
MinHash module, fastText LID), i.e. what the build will see.
"""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `benchmarks` is not an installed package

from benchmarks.synth import SynthConfig, write_wet_corpus  # noqa: E402
from filters.dedup import document_line_hashes, remove_duplicate_lines  # noqa: E402
from filters.minhash import MinHasher, band_keys_batch, jaccard, lsh_params, shingles  # noqa: E402
from filters.sources.base import ReadStats  # noqa: E402
from filters.sources.commoncrawl import read_wet  # noqa: E402

N_DOCS, N_FILES, SEED = 1500, 3, 3


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory):
    return write_wet_corpus(tmp_path_factory.mktemp("synth"), N_DOCS, N_FILES, SEED)


@pytest.fixture(scope="module")
def docs(corpus):
    stats = ReadStats()
    out = {}
    for path in corpus.files:
        with open(path, "rb") as f:
            for d in read_wet(f, str(path), stats):
                out[d.id] = d
    return out, stats


@pytest.fixture(scope="module")
def deduped(docs):
    """CCNet line dedup over the whole corpus: a hash in ≥ 2 documents is removed everywhere."""
    by_id, _ = docs
    hashes = {i: document_line_hashes(d.text) for i, d in by_id.items()}
    counts = Counter(h for hs in hashes.values() for h in set(hs))
    dup = {h for h, n in counts.items() if n >= 2}
    return {i: remove_duplicate_lines(d.text, dup, hashes[i]) for i, d in by_id.items()}


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a)), set(shingles(b))
    return len(sa & sb) / len(sa | sb)


def gzip_members(data: bytes) -> list[bytes]:
    out = []
    while data:
        d = zlib.decompressobj(wbits=31)
        out.append(d.decompress(data) + d.flush())
        assert d.eof, "truncated gzip member"
        data = d.unused_data
    return out


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = write_wet_corpus(tmp_path / "a", 240, 3, seed=11)
    b = write_wet_corpus(tmp_path / "b", 240, 3, seed=11, workers=2)
    c = write_wet_corpus(tmp_path / "c", 240, 3, seed=12)
    for fa, fb in zip(a.files, b.files, strict=True):
        assert fa.read_bytes() == fb.read_bytes()
    assert (tmp_path / "a" / "planted.json").read_bytes() == (tmp_path / "b" / "planted.json").read_bytes()
    assert a.files[0].read_bytes() != c.files[0].read_bytes()


def test_files_are_cc_wet_one_gzip_member_per_record(corpus):
    for path in corpus.files:
        members = gzip_members(path.read_bytes())
        assert members[0].startswith(b"WARC/1.0\r\nWARC-Type: warcinfo\r\n")
        for rec in members[1:]:
            head, body = rec.split(b"\r\n\r\n", 1)
            fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
            assert list(fields)[:8] == [
                "WARC-Type",
                "WARC-Target-URI",
                "WARC-Date",
                "WARC-Record-ID",
                "WARC-Refers-To",
                "WARC-Block-Digest",
                "WARC-Identified-Content-Language",
                "Content-Type",
            ]
            assert fields["WARC-Type"] == "conversion" and fields["Content-Type"] == "text/plain"
            block = body[: int(fields["Content-Length"])]
            assert body[len(block) :] == b"\r\n\r\n"
            digest = base64.b32encode(hashlib.sha1(block).digest()).decode()
            assert fields["WARC-Block-Digest"] == f"sha1:{digest}"


def test_reader_parses_every_record(corpus, docs):
    by_id, stats = docs
    assert len(by_id) == N_DOCS == stats.emitted
    assert dict(stats.dropped) == {"not_document:warcinfo": N_FILES}
    assert not stats.repaired and not stats.dead_letters
    assert len({d.meta["url"] for d in by_id.values()}) == N_DOCS
    assert len({d.meta["record_id"] for d in by_id.values()}) == N_DOCS
    planted = corpus.groups
    ids = [i for g in planted["near_dup"] + planted["chains"] + planted["exact"] for i in g]
    ids += planted["hot"] + planted["short"] + [i for v in planted["non_english"].values() for i in v]
    assert set(ids) <= set(by_id) and len(ids) == len(set(ids))
    assert all(d.meta["title"] for d in by_id.values())
    mean = statistics.mean(len(d.text.encode()) + len(d.meta["title"].encode()) + 1 for d in by_id.values())
    assert abs(mean - SynthConfig().target_bytes) < 0.1 * SynthConfig().target_bytes
    assert corpus.text_bytes == sum(
        len(b.split(b"\r\n\r\n", 1)[1]) - 4 for p in corpus.files for b in gzip_members(p.read_bytes())[1:]
    )
    assert max(len(by_id[i].text) for i in planted["short"]) < 300
    planted_json = json.loads((corpus.files[0].parent / "planted.json").read_text())
    assert planted_json["groups"] == planted


def test_chains_are_similar_in_steps_but_not_end_to_end(corpus, deduped):
    """A~B and B~C above 0.8, A≁C below it: exactly on the shingle sets, and as MinHash estimates."""
    chains = corpus.groups["chains"]
    assert len(chains) == int(N_DOCS * SynthConfig().chains) // 3
    texts = [deduped[i].text for chain in chains for i in chain]
    for (a, b, c), planned in zip(chains, corpus.chain_jaccard, strict=True):
        exact = [exact_jaccard(deduped[x].text, deduped[y].text) for x, y in ((a, b), (b, c), (a, c))]
        assert exact == pytest.approx(planned, abs=1e-4)
        assert exact[0] >= 0.8 and exact[1] >= 0.8 and exact[2] < 0.8
    sigs = MinHasher(num_perm=128, ngram=13).signatures(texts)
    est = np.array(
        [[jaccard(sigs[k], sigs[k + 1]), jaccard(sigs[k + 1], sigs[k + 2]), jaccard(sigs[k], sigs[k + 2])]
         for k in range(0, len(texts), 3)]
    )  # fmt: skip
    assert est[:, 0].mean() >= 0.8 and est[:, 1].mean() >= 0.8 and est[:, 2].mean() < 0.8
    assert ((est[:, 0] >= 0.8) & (est[:, 1] >= 0.8) & (est[:, 2] < 0.8)).mean() >= 0.75


def test_line_dedup_keeps_the_evidence_and_erases_exact_copies(corpus, docs, deduped):
    by_id, _ = docs
    g = corpus.groups
    for cluster in g["near_dup"] + g["chains"] + [g["hot"]]:
        kept = {deduped[i].lines_kept for i in cluster}
        assert len(kept) == 1 and kept.pop() >= 3  # same paragraphs survive in every copy
    for cluster in g["near_dup"]:
        for other in cluster[1:]:
            assert exact_jaccard(deduped[cluster[0]].text, deduped[other].text) > 0.85
    hot = g["hot"]
    assert len(hot) == round(N_DOCS * SynthConfig().hot_fraction)
    assert exact_jaccard(deduped[hot[0]].text, deduped[hot[-1]].text) == pytest.approx(
        corpus.hot_jaccard, abs=1e-4
    )
    for group in g["exact"]:
        assert len({by_id[i].text for i in group}) == 1
        assert all(deduped[i].text == "" for i in group)


def test_lsh_finds_planted_groups_and_nothing_else(corpus, deduped):
    """At the 0.8 threshold's bands, documents that share a band key belong to one planted group."""
    g = corpus.groups
    group_of = {}
    for name in ("near_dup", "chains"):
        for k, cluster in enumerate(g[name]):
            group_of.update({i: (name, k) for i in cluster})
    group_of.update({i: ("hot", 0) for i in g["hot"]})
    ids = [i for i, r in deduped.items() if r.text]
    bands, rows = lsh_params(0.8)
    keys = band_keys_batch(MinHasher().signatures([deduped[i].text for i in ids]), bands, rows)
    buckets: dict[bytes, list[str]] = {}
    for i, ks in zip(ids, keys, strict=True):
        for key in ks:
            buckets.setdefault(key, []).append(i)
    hot_linked = set()
    for members in buckets.values():
        if len(members) > 1:
            assert len({group_of.get(i, i) for i in members}) == 1, members
            if group_of.get(members[0]) == ("hot", 0):
                hot_linked.update(members)
    assert len(hot_linked) >= 0.9 * len(g["hot"])  # the hot template is one cluster with hot keys
    assert max(len(m) for m in buckets.values()) >= 0.5 * len(g["hot"])


def test_boilerplate_is_zipf_shared(corpus, docs, deduped):
    by_id, _ = docs
    top = corpus.boilerplate_top
    assert top[0][1] > 0.3 * N_DOCS  # the most common line is on a third of the pages
    assert top[0][1] > top[4][1] > top[19][1]
    line_pages = Counter(line for d in by_id.values() for line in set(d.text.split("\n")))
    for line, n in top:
        assert line_pages[line] == n
    regular = [i for i in by_id if i not in {x for c in corpus.groups["exact"] for x in c}]
    with_removed = sum(1 for i in regular if deduped[i].lines_removed)
    assert with_removed > 0.9 * len(regular)


def test_languages_are_what_lid_says(corpus, deduped):
    from filters.langid import LanguageIdentifier

    lid = LanguageIdentifier()
    foreign = corpus.groups["non_english"]
    assert set(foreign) == {"fr", "de", "es", "it", "pt", "nl", "pl", "ru"}
    total = sum(len(v) for v in foreign.values())
    assert 0.04 * N_DOCS < total < 0.08 * N_DOCS
    right = sum(
        lang == want
        for want, ids in foreign.items()
        for lang, _ in lid.predict_batch([deduped[i].text for i in ids])
    )
    assert right >= 0.95 * total
    english = [i for i in corpus.groups["near_dup"][0] + corpus.groups["hot"][:20]]
    assert all(lang == "en" for lang, _ in lid.predict_batch([deduped[i].text for i in english]))
