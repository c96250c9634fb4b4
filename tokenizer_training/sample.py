"""The tokenizer's training text: a deterministic sample of the corpus drawn by mixture weight.

LLaMA trains its BPE on its own pre-training data (Touvron et al. 2023, §2.1), so the sample follows the
mixture: source `s` gets `weight_s / Σ weight` of `sample_chars`. Within a source every document gets a
key `blake2b(seed, source, id)` and documents are taken in key order until the source's budget is filled
(the last one cut at a line boundary). Among the documents read, the selection depends only on the seed,
the ids and the text, and a larger sample contains a smaller one.

Reading: a source's Parquet row groups are visited in a seeded random order (`manifests.corpus.
row_groups` / `iter_row_group`, streamed) until they hold `read_factor` (default 2) times the source's
budget, so a 200M-character sample of a multi-terabyte corpus reads a few gigabytes, not the corpus; a
source smaller than that is read whole (and then the sample does not depend on how it is split into
parts). Keys and usable lengths are computed in Arrow; the documents that can still be chosen (key below
the current cut-off) keep only their key, length and position, and their lines go to a spill file; at the
end of the source the chosen ones are copied from the spill into the sample, in reading order. Memory is
bounded by the number of sampled documents, the spill by about `budget × (1 + ln(read / budget))`
characters. Never the corpus in memory.

Why lines: SentencePiece's trainer reads one sentence per line and skips any longer than
`max_sentence_length` bytes (LLaMA: 4192, `trainer_interface.cc` `LoadSentences`); whole documents would
almost all be skipped. It also means `\\n` never enters the vocabulary and encodes as the byte piece
`<0x0A>`, as in Meta's own `tokenizer.model`. Lines the trainer would drop anyway (empty, longer than
4192 bytes, or holding U+2585, its reserved unknown-character mark) are counted and not written, and they
do not count towards a budget.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from manifests import corpus, storage
from manifests.schema import Manifest

log = logging.getLogger("corral.tokenizer")

MAX_SENTENCE_BYTES = 4192  # LLaMA's `max_sentence_length` (bytes, as SentencePiece counts it)
RESERVED_CHAR = "\u2585"  # SentencePiece's kUNKChar: the trainer skips every line that contains it
_BATCH_ROWS = 256  # documents per Arrow batch (books are long: keep a batch well under a gigabyte)
_ALL = (1 << 64) - 1
_COPY_BLOCK = 8 << 20


class SampleError(ValueError):
    """The corpus cannot give a sample: the message names the source and its folder."""


@dataclass
class SourceSample:
    """What one source contributed, against what its weight asked for."""

    source: str
    folder: str
    weight: float
    target_share: float
    budget_chars: int
    corpus_documents: int = 0  # documents in the source (its corpus manifest)
    read_documents: int = 0  # documents in the row groups read
    read_chars: int = 0  # usable characters in the row groups read (lines the trainer keeps)
    read_long_lines: int = 0
    read_all: bool = False  # every row group of the source was read
    documents: int = 0  # documents drawn (the last one may be partial)
    partial_documents: int = 0
    chars: int = 0  # characters written (line breaks not counted)
    lines: int = 0
    skipped_long_lines: int = 0  # lines of drawn documents longer than MAX_SENTENCE_BYTES
    skipped_reserved_lines: int = 0
    achieved_share: float = 0.0
    short: bool = False  # the whole source holds less usable text than its budget


@dataclass
class Sample:
    """The sample file and its accounting (written into the tokenizer card)."""

    path: str
    seed: int
    sample_chars: int
    read_factor: float = 2.0
    sha256: str = ""
    chars: int = 0
    lines: int = 0
    documents: int = 0
    skipped_long_lines: int = 0
    skipped_reserved_lines: int = 0
    sources: dict[str, SourceSample] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        weights = {n: s.weight for n, s in self.sources.items()}
        return sample_config(self.seed, self.sample_chars, self.read_factor, weights)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config(),
            "sha256": self.sha256,
            "chars": self.chars,
            "lines": self.lines,
            "documents": self.documents,
            "skipped_long_lines": self.skipped_long_lines,
            "skipped_reserved_lines": self.skipped_reserved_lines,
            "sources": {
                name: {k: v for k, v in asdict(s).items() if k not in ("source", "folder")}
                for name, s in self.sources.items()
            },
        }


def sample_config(
    seed: int, sample_chars: int, read_factor: float, weights: Mapping[str, float]
) -> dict[str, Any]:
    """What decides the sample besides the corpus itself (stored in the card, compared on rerun)."""
    return {
        "seed": seed,
        "sample_chars": sample_chars,
        "read_factor": read_factor,
        "weights": dict(weights),
        "max_sentence_bytes": MAX_SENTENCE_BYTES,
    }


def source_folders(manifest: Manifest) -> dict[str, str]:
    """`corpus/<source>` of every source of the manifest; a source that is not completely built is an error."""
    out = manifest.output_dir()
    folders = {}
    for name in manifest.sources:
        folder = storage.join(out, name)
        if not corpus.is_complete(folder):
            raise SampleError(
                f"source {name!r}: {storage.join(folder, corpus.MANIFEST)} not found (the source is not "
                f"built, or its build did not finish); run `corral build --manifest {manifest.path}` first"
            )
        folders[name] = folder
    return folders


def corpus_fingerprints(folders: Mapping[str, str]) -> dict[str, str]:
    """sha256 of each source's `manifest.json` (it lists every part's sha256, so it names the data)."""
    return {name: corpus.manifest_sha256(folder) for name, folder in folders.items()}


def doc_keys(seed: int, source: str, ids: list[str]) -> np.ndarray:
    """The sampling key of each document: 64 bits of keyed BLAKE2b over (source, id)."""
    key = seed.to_bytes(16, "little", signed=True)
    prefix = source.encode() + b"\0"
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(prefix + i.encode(), digest_size=8, key=key).digest(), "big")
            for i in ids
        ),
        dtype=np.uint64,
        count=len(ids),
    )


def row_group_order(seed: int, source: str, groups: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Row groups in the order they are read: by a keyed hash of (part file name, row-group index)."""
    names = [f"{path.rstrip('/').rsplit('/', 1)[-1]}#{index}" for path, index, _ in groups]
    keys = doc_keys(seed, source + "\0row-groups", names)
    return [groups[i] for i in np.argsort(keys, kind="stable")]


@dataclass
class _Lines:
    """A batch's documents split into lines, with SentencePiece's verdict on each line."""

    flat: pa.Array  # every line of every document, in order
    parents: np.ndarray  # document index of each line
    nbytes: np.ndarray
    kept: np.ndarray  # 1..MAX_SENTENCE_BYTES bytes and no reserved character
    too_long: np.ndarray
    reserved: np.ndarray  # holds U+2585 (and is not too long)

    @classmethod
    def of(cls, texts: pa.Array) -> _Lines:
        lines = pc.split_pattern(pc.fill_null(texts, ""), "\n")
        flat = pc.list_flatten(lines)
        nbytes = pc.binary_length(flat).to_numpy()
        reserved = pc.match_substring(flat, RESERVED_CHAR).to_numpy(zero_copy_only=False)
        too_long = nbytes > MAX_SENTENCE_BYTES
        reserved &= (nbytes > 0) & ~too_long
        kept = (nbytes > 0) & ~too_long & ~reserved
        return cls(flat, pc.list_parent_indices(lines).to_numpy(), nbytes, kept, too_long, reserved)

    def per_doc(self, mask: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else weights[mask]
        return np.bincount(self.parents[mask], weights=w, minlength=n).astype(np.int64)


_FIELDS = ("keys", "chars", "lines", "long", "reserved", "offset", "length")


class _Candidates:
    """The documents with the smallest keys whose usable characters reach the budget (bounded memory).

    Each candidate's kept lines are already in the source's spill file at (`offset`, `length`)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.threshold = np.uint64(_ALL)  # keys at or above it can no longer be chosen
        self.cols = {f: np.empty(0, dtype=np.uint64 if f == "keys" else np.int64) for f in _FIELDS}
        self._pending: list[dict[str, np.ndarray]] = []
        self._size = self._kept = 0

    def offer(self, **cols: np.ndarray) -> None:
        self._pending.append(cols)
        self._size += len(cols["keys"])
        if self._size > 2 * max(self._kept, 4096):
            self.prune()

    def prune(self) -> None:
        if self._pending:
            self.cols = {f: np.concatenate([self.cols[f], *(p[f] for p in self._pending)]) for f in _FIELDS}
            self._pending = []
        order = np.argsort(self.cols["keys"], kind="stable")
        cum = np.cumsum(self.cols["chars"][order])
        k = int(np.searchsorted(cum, self.budget))  # first position where the budget is reached
        if k < len(order):
            order = order[: k + 1]
            self.threshold = self.cols["keys"][order[-1]]
        self.cols = {f: v[order] for f, v in self.cols.items()}
        self._size = self._kept = len(order)

    def chosen(self) -> tuple[dict[str, np.ndarray], int, int | None]:
        """The chosen documents in spill order, the index of the boundary one and its allowance (None:
        every chosen document is taken whole)."""
        self.prune()
        c = self.cols
        total = int(c["chars"].sum())
        boundary = len(c["keys"]) - 1  # the largest key: the last one taken
        allowance = None
        if boundary >= 0 and total > self.budget:
            allowance = self.budget - (total - int(c["chars"][boundary]))
        order = np.argsort(c["offset"], kind="stable")
        position = int(np.flatnonzero(order == boundary)[0]) if boundary >= 0 else -1
        return {f: v[order] for f, v in c.items()}, position, allowance


def _joined_lines(lines: pa.Array) -> pa.Buffer:
    """`line\\n` for every line, as one buffer (no Python strings)."""
    with_newlines = pc.binary_join_element_wise(lines, "", "\n")  # "line" + "\n" + ""
    return pc.binary_join(pa.ListArray.from_arrays([0, len(with_newlines)], with_newlines), "")[0].as_buffer()


def _scan_source(
    s: SourceSample, seed: int, read_factor: float, spill: BinaryIO, bar: tqdm, manifest_path: str
) -> tuple[dict[str, np.ndarray], int, int | None]:
    """Row groups in seeded order until `read_factor × budget` usable characters are read: every
    document's key and usable length; the lines of those that may still be chosen go to the spill."""
    cands = _Candidates(s.budget_chars)
    spilled = 0
    groups = row_group_order(seed, s.source, corpus.row_groups(s.folder))
    s.corpus_documents = sum(rows for _, _, rows in groups)
    target = read_factor * s.budget_chars
    done = 0
    for path, index, _ in groups:
        if s.read_chars >= target:
            break
        spilled = _scan_row_group(path, index, s, seed, spill, spilled, cands, bar)
        done += 1
    s.read_all = done == len(groups)
    bar.update(sum(rows for _, _, rows in groups[done:]))
    if s.read_all and s.read_chars == 0:
        raise SampleError(
            f"source {s.source!r} ({s.folder}) has no text to sample ({s.corpus_documents} documents, "
            f"no line of 1..{MAX_SENTENCE_BYTES} bytes); give it documents or remove it from {manifest_path}"
        )
    return cands.chosen()


def _scan_row_group(
    path: str,
    index: int,
    s: SourceSample,
    seed: int,
    spill: BinaryIO,
    spilled: int,
    cands: _Candidates,
    bar: tqdm,
) -> int:
    """Keys and usable lengths of one row group's documents; candidates' lines appended to the spill."""
    for batch in corpus.iter_row_group(path, index, columns=["id", "text"], batch_rows=_BATCH_ROWS):
        ids = batch.column("id").to_pylist()
        n = len(ids)
        keys = doc_keys(seed, s.source, ids)
        lines = _Lines.of(batch.column("text"))
        nchars = pc.utf8_length(lines.flat).to_numpy()
        chars = lines.per_doc(lines.kept, n, nchars)
        s.read_documents += n
        s.read_chars += int(chars.sum())
        s.read_long_lines += int(lines.too_long.sum())
        bar.update(n)
        cand = (chars > 0) & (keys < cands.threshold)
        if not cand.any():
            continue
        take = lines.kept & cand[lines.parents]
        length = lines.per_doc(take, n, lines.nbytes + 1)[cand]
        data = _joined_lines(lines.flat.filter(pa.array(take)))
        spill.write(data)
        offsets = spilled + np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
        spilled += data.size
        cands.offer(
            keys=keys[cand],
            chars=chars[cand],
            lines=lines.per_doc(take, n)[cand],
            long=lines.per_doc(lines.too_long, n)[cand],
            reserved=lines.per_doc(lines.reserved, n)[cand],
            offset=offsets,
            length=length,
        )
    return spilled


def _copy(src: BinaryIO, start: int, end: int, out: BinaryIO, digest: Any) -> None:
    src.seek(start)
    while start < end:
        block = src.read(min(_COPY_BLOCK, end - start))
        out.write(block)
        digest.update(block)
        start += len(block)


def _write_chosen(
    chosen: dict[str, np.ndarray],
    boundary: int,
    allowance: int | None,
    spill: BinaryIO,
    out: BinaryIO,
    digest: Any,
    s: SourceSample,
) -> None:
    """Copy the chosen documents' lines from the spill (adjacent ones in one go); cut the boundary one."""
    s.documents = len(chosen["keys"])
    s.skipped_long_lines = int(chosen["long"].sum())
    s.skipped_reserved_lines = int(chosen["reserved"].sum())
    start = end = 0
    for k, (offset, length) in enumerate(
        zip(chosen["offset"].tolist(), chosen["length"].tolist(), strict=True)
    ):
        if k == boundary and allowance is not None:
            _copy(spill, start, end, out, digest)
            spill.seek(offset)
            lines = spill.read(length).decode("utf-8").split("\n")[:-1]
            taken = n_lines = 0
            for line in lines:
                if taken >= allowance:
                    break
                data = line.encode("utf-8") + b"\n"
                out.write(data)
                digest.update(data)
                taken += len(line)
                n_lines += 1
            s.chars += taken
            s.lines += n_lines
            s.partial_documents = 1
            start = end = offset + length
            continue
        if offset != end:
            _copy(spill, start, end, out, digest)
            start = offset
        end = offset + length
        s.chars += int(chosen["chars"][k])
        s.lines += int(chosen["lines"][k])
    _copy(spill, start, end, out, digest)


def draw_sample(
    manifest: Manifest, path: str, folders: Mapping[str, str] | None = None, progress: bool = True
) -> Sample:
    """Write the mixture sample of `manifest`'s corpus to the local file `path`, one sentence per line.

    One pass over each source; the lines of the documents that may still be chosen go to a spill file
    beside `path` (at most about `budget × (1 + ln(source / budget))` characters), and the chosen ones are
    copied from it in corpus order."""
    settings = manifest.tokenizer
    seed = settings.seed if settings.seed is not None else manifest.seed
    folders = dict(folders) if folders is not None else source_folders(manifest)
    total_weight = sum(manifest.sources[name].weight for name in folders)
    sample = Sample(
        path=path, seed=seed, sample_chars=settings.sample_chars, read_factor=settings.read_factor
    )
    for name, folder in folders.items():
        share = manifest.sources[name].weight / total_weight
        sample.sources[name] = SourceSample(
            source=name,
            folder=folder,
            weight=manifest.sources[name].weight,
            target_share=share,
            budget_chars=max(1, round(settings.sample_chars * share)),
        )
    n_docs = sum(corpus.CorpusManifest.read_from(f).kept for f in folders.values())

    digest = hashlib.sha256()
    spill_path = path + ".spill"
    try:
        with (
            open(path, "wb") as out,
            tqdm(total=n_docs, desc="sample", unit="doc", disable=not progress, leave=False) as bar,
        ):
            for name, s in sample.sources.items():
                with open(spill_path, "w+b") as spill:
                    chosen, boundary, allowance = _scan_source(
                        s, seed, settings.read_factor, spill, bar, manifest.path
                    )
                    spill.flush()
                    _write_chosen(chosen, boundary, allowance, spill, out, digest, s)
                s.short = s.read_all and s.read_chars < s.budget_chars
                if s.short:
                    log.warning(
                        "source %r: %s usable characters, fewer than its budget of %s (%.2f%% of "
                        "sample_chars); all of it is used and its share of the sample falls short of its weight",
                        name,
                        f"{s.read_chars:,}",
                        f"{s.budget_chars:,}",
                        100 * s.target_share,
                    )
    finally:
        if os.path.exists(spill_path):
            os.remove(spill_path)

    sample.sha256 = digest.hexdigest()
    for s in sample.sources.values():
        sample.chars += s.chars
        sample.lines += s.lines
        sample.documents += s.documents
        sample.skipped_long_lines += s.skipped_long_lines
        sample.skipped_reserved_lines += s.skipped_reserved_lines
    for s in sample.sources.values():
        s.achieved_share = s.chars / sample.chars if sample.chars else 0.0
    return sample


def iter_sample_lines(path: str) -> Iterator[str]:
    """The sample file's sentences (for checks that need real text)."""
    with open(path, "rb") as f:
        for raw in f:
            yield raw.rstrip(b"\n").decode("utf-8")
