"""The training stream: memory-mapped Arrow shards → fixed-length sequences in a seeded, resumable order.

What the order is, and why it survives preemption and any change of world size or loader workers:

- The stream is the train shards' tokens in manifest order (every document already ends with EOS), read
  zero-copy from the memory-mapped, uncompressed Arrow IPC files: no per-worker copy, no shared memory.
- Sequence `i` is tokens `[i·T, i·T + T + 1)`: the inputs are its first T tokens, the targets its last T.
  Documents are packed back to back and attention crosses document boundaries, as in GPT-3 and LLaMA.
- An epoch visits the `N = (tokens − 1) // T` sequences in a permutation that is a pure function of (shard
  manifest sha256, seed, epoch, T): a keyed Feistel network over the next power of 4 ≥ N with cycle walking
  (Black & Rogaway, "Ciphers with Arbitrary Finite Domains", 2002). It is computed per index on the fly,
  so it costs no memory at any corpus size and any position maps to its sequence in O(1).
- Step `s` of a run with a global batch of `B` sequences takes the permutation positions `[s·B, (s+1)·B)`
  (past an epoch's end, the next epoch's permutation); rank `r` of `W` takes the `r`-th `B/W` slice of those,
  cut into micro-batches. So the data position is one integer, the sequences consumed, and neither the
  world size nor the number of DataLoader workers changes which sequences a step sees. The loader is a plain
  `torch.utils.data.DataLoader` driven by `StepSampler`; its workers return batches in sampler order.
- Every token carries the id of its document's source (the dictionary index of the shard's `source` column
  = the manifest's `source_names` order), so the loss can be reported per source.

Checks: the tokenizer of the shards against the run's, every file's sha256 (once per file and size/mtime,
remembered in the run directory; `--verify` rehashes and scans every token) — errors name the file.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset, Sampler

from manifests import shards as shard_format
from manifests import storage
from manifests.shards import ShardFile, ShardManifest

VERIFIED_CACHE = "verified_shards.json"


class ShardError(ValueError):
    """A shard (or shard manifest) the run refuses; the message names the file."""


# ----------------------------------------------------------------------------------------------------------
# the order


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele et al., 2014): a fast, well-mixing bijection of uint64."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


class EpochPermutation:
    """A seeded permutation of `range(n)`, evaluated per index (vectorised); `perm[i]` = `self(i)`.

    Balanced Feistel network on 2h bits (4^h ≥ n), 6 rounds with a splitmix64 round function keyed from
    sha512(key); values that land outside [0, n) are encrypted again until they fall inside (cycle walking),
    which keeps it a bijection on [0, n). Fewer than 4 walks are expected per index since 4^h < 4n.
    """

    ROUNDS = 6

    def __init__(self, n: int, key: str) -> None:
        if n < 1:
            raise ValueError(f"a permutation needs n >= 1, got {n}")
        self.n = n
        self.half = max(1, ((n - 1).bit_length() + 1) // 2)
        self.mask = np.uint64((1 << self.half) - 1)
        digest = hashlib.sha512(key.encode()).digest()
        self.keys = [
            np.uint64(int.from_bytes(digest[8 * i : 8 * i + 8], "little")) for i in range(self.ROUNDS)
        ]

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        h = np.uint64(self.half)
        left, right = x >> h, x & self.mask
        for k in self.keys:
            left, right = right, left ^ (_mix64(right ^ k) & self.mask)
        return (left << h) | right

    def __call__(self, index: np.ndarray | Sequence[int] | int) -> np.ndarray:
        x = np.asarray(index, dtype=np.uint64)
        if x.size and int(x.max()) >= self.n:
            raise IndexError(f"permutation index {int(x.max())} out of range [0, {self.n})")
        y = self._encrypt(x)
        bad = y >= np.uint64(self.n)
        while bad.any():
            y[bad] = self._encrypt(y[bad])
            bad = y >= np.uint64(self.n)
        return y.astype(np.int64)


class SequenceOrder:
    """Global position (sequences consumed since the run began) → (epoch, sequence index)."""

    def __init__(self, n_sequences: int, manifest_sha256: str, seed: int, seq_len: int) -> None:
        self.n = n_sequences
        self.manifest_sha256 = manifest_sha256
        self.seed = seed
        self.seq_len = seq_len
        self._cache: dict[int, EpochPermutation] = {}

    def permutation(self, epoch: int) -> EpochPermutation:
        if epoch not in self._cache:
            if len(self._cache) > 4:
                self._cache.clear()
            key = f"corral-order/v1:{self.manifest_sha256}:{self.seed}:{epoch}:{self.seq_len}"
            self._cache[epoch] = EpochPermutation(self.n, key)
        return self._cache[epoch]

    def lookup(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, sequence indices) of global positions."""
        positions = np.asarray(positions, dtype=np.int64)
        epochs = positions // self.n
        out = np.empty_like(positions)
        for epoch in np.unique(epochs):
            sel = epochs == epoch
            out[sel] = self.permutation(int(epoch))(positions[sel] % self.n)
        return epochs, out

    def indices(self, start: int, stop: int) -> np.ndarray:
        return self.lookup(np.arange(start, stop, dtype=np.int64))[1]


def batch_fingerprint(order: SequenceOrder, start: int, stop: int) -> str:
    """A short hash of the (epoch, sequence index) pairs of global positions [start, stop): one step."""
    epochs, idx = order.lookup(np.arange(start, stop, dtype=np.int64))
    return hashlib.sha256(np.stack([epochs, idx]).astype("<i8").tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class BatchPlan:
    """How one optimiser step's global batch splits over ranks and micro-batches."""

    global_batch: int  # sequences per optimiser step (all ranks)
    micro_batch: int  # sequences per forward/backward
    world: int
    accumulation: int  # micro-batches per rank per step

    @classmethod
    def make(cls, batch_tokens: int, seq_len: int, micro_batch: int, world: int) -> BatchPlan:
        per_pass = micro_batch * seq_len * world
        if batch_tokens % per_pass != 0:
            raise ValueError(
                f"train.batch_tokens ({batch_tokens}) must be a multiple of train.micro_batch × data.seq_len × "
                f"world size = {micro_batch} × {seq_len} × {world} = {per_pass}"
            )
        return cls(batch_tokens // seq_len, micro_batch, world, batch_tokens // per_pass)


class StepSampler(Sampler[list[int]]):
    """Yields this rank's micro-batches (lists of sequence indices) from global position `start` on."""

    def __init__(self, order: SequenceOrder, plan: BatchPlan, rank: int, start: int, steps: int) -> None:
        if start % plan.global_batch != 0:
            raise ValueError(
                f"data position {start} is not a multiple of the global batch {plan.global_batch}"
            )
        self.order, self.plan, self.rank, self.start, self.steps = order, plan, rank, start, steps

    def rank_positions(self, step_start: int) -> tuple[int, int]:
        share = self.plan.global_batch // self.plan.world
        lo = step_start + self.rank * share
        return lo, lo + share

    def __len__(self) -> int:
        return self.steps * self.plan.accumulation

    def __iter__(self) -> Iterator[list[int]]:
        mb = self.plan.micro_batch
        for s in range(self.steps):
            lo, hi = self.rank_positions(self.start + s * self.plan.global_batch)
            idx = self.order.indices(lo, hi)
            for m in range(self.plan.accumulation):
                yield idx[m * mb : (m + 1) * mb].tolist()


# ----------------------------------------------------------------------------------------------------------
# the stream


@dataclass
class _Segment:
    """One record batch of one shard file, as zero-copy numpy views of the memory map."""

    file: str
    start: int  # global token offset of its first token
    values: np.ndarray  # token ids (uint16/uint32), the whole child array
    offsets: np.ndarray  # int32 row offsets into `values` (absolute), rows + 1
    row_source: np.ndarray  # int16 source id per row

    @property
    def ntokens(self) -> int:
        return int(self.offsets[-1] - self.offsets[0])


def _open_segments(path: str, relative: str, start: int, source_names: list[str]) -> list[_Segment]:
    try:
        reader = shard_format.open_shard(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ShardError(f"{relative}: cannot open as an Arrow IPC file: {exc}") from None
    segments = []
    for b in range(reader.num_record_batches):
        batch = reader.get_batch(b)
        tokens, source = batch.column(0), batch.column(1)
        if tokens.null_count or source.null_count:
            raise ShardError(f"{relative}: record batch {b} has null tokens or sources")
        if source.dictionary.to_pylist() != source_names:
            raise ShardError(
                f"{relative}: record batch {b}: source dictionary {source.dictionary.to_pylist()} differs "
                f"from the manifest's source_names {source_names}"
            )
        seg = _Segment(
            relative,
            start,
            tokens.values.to_numpy(zero_copy_only=True),
            tokens.offsets.to_numpy(zero_copy_only=True),
            source.indices.to_numpy(zero_copy_only=True),
        )
        start += seg.ntokens
        if seg.ntokens:
            segments.append(seg)
    return segments


class TokenStream:
    """The concatenated tokens (and per-token source ids) of a list of shard files, random access."""

    def __init__(self, folder: str, files: Sequence[ShardFile], source_names: list[str]) -> None:
        self.folder, self.files, self.source_names = folder, list(files), list(source_names)
        self.total = sum(f.tokens for f in self.files)
        self._segments: list[_Segment] | None = None
        self._pid = -1

    def _ensure_open(self) -> list[_Segment]:
        # Re-opened in each process (a DataLoader worker after fork or spawn): opening reads the footer only.
        if self._segments is None or self._pid != os.getpid():
            segments, start = [], 0
            for f in self.files:
                segs = _open_segments(storage.join(self.folder, f.file), f.file, start, self.source_names)
                got = sum(s.ntokens for s in segs)
                if got != f.tokens:
                    raise ShardError(f"{f.file}: holds {got} tokens, the manifest says {f.tokens}")
                segments += segs
                start += got
            self._segments, self._pid = segments, os.getpid()
            self._starts = [s.start for s in segments]
        return self._segments

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_segments"], state["_pid"] = None, -1  # memory maps do not pickle; reopened on first use
        state.pop("_starts", None)
        return state

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, str]:
        """Tokens [start, stop) as int64, their source ids as int16, and the file the first one is in."""
        if not 0 <= start <= stop <= self.total:
            raise IndexError(f"token range [{start}, {stop}) outside the stream of {self.total} tokens")
        segments = self._ensure_open()
        tokens = np.empty(stop - start, dtype=np.int64)
        sources = np.empty(stop - start, dtype=np.int16)
        b = bisect.bisect_right(self._starts, start) - 1
        first_file = segments[b].file if segments else ""
        pos = start
        while pos < stop:
            seg = segments[b]
            base = int(seg.offsets[0])
            lo, hi = pos - seg.start, min(stop - seg.start, seg.ntokens)
            out = slice(pos - start, pos - start + hi - lo)
            tokens[out] = seg.values[base + lo : base + hi]
            r0 = int(np.searchsorted(seg.offsets, base + lo, side="right")) - 1
            r1 = int(np.searchsorted(seg.offsets, base + hi - 1, side="right")) - 1
            bounds = np.clip(seg.offsets[r0 : r1 + 2].astype(np.int64) - base, lo, hi)
            sources[out] = np.repeat(seg.row_source[r0 : r1 + 1], np.diff(bounds))
            pos += hi - lo
            b += 1
        return tokens, sources, first_file


class PackedSequences(Dataset):
    """Sequence i of a TokenStream: `tokens` (T + 1) and the source id of each of its T targets."""

    def __init__(self, stream: TokenStream, seq_len: int, vocab_size: int) -> None:
        self.stream, self.seq_len, self.vocab_size = stream, seq_len, vocab_size
        self.n = (stream.total - 1) // seq_len if stream.total > 0 else 0

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        t = self.seq_len
        tokens = np.empty((len(indices), t + 1), dtype=np.int64)
        sources = np.empty((len(indices), t), dtype=np.int16)
        for row, i in enumerate(indices):
            if not 0 <= i < self.n:
                raise IndexError(f"sequence {i} out of range [0, {self.n})")
            tok, src, file = self.stream.read(i * t, i * t + t + 1)
            if tok.size and int(tok.max()) >= self.vocab_size:
                raise ShardError(
                    f"{file}: token id {int(tok.max())} in sequence {i} is outside the vocabulary "
                    f"({self.vocab_size}): a shard from another tokenizer?"
                )
            tokens[row], sources[row] = tok, src[1:]
        return {
            "tokens": torch.from_numpy(tokens),
            "sources": torch.from_numpy(sources),
            "index": torch.as_tensor(np.asarray(indices, dtype=np.int64)),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([index]).items()}


def _collate(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch  # __getitems__ already stacked the micro-batch


def _quiet_worker(_: int) -> None:
    """Loader workers ignore SIGINT/SIGTERM: the trainer handles them (checkpoint, then exit), and a Ctrl-C
    that reaches the whole process group must not kill the workers first."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_loader(
    dataset: PackedSequences, sampler: StepSampler, num_workers: int, pin_memory: bool = False
) -> torch.utils.data.DataLoader:
    """A plain DataLoader over `sampler`'s micro-batches; batches come back in sampler order.

    Workers start from a forkserver, never by forking this process: the trainer runs after threaded work
    (Beam's thread pools in `corral demo`, progress monitors, NCCL), and a fork taken while another thread
    holds a lock can leave a worker deadlocked (Python's `os.fork` documentation). The server itself is a
    fresh interpreter that imported this module once, so each worker still starts in milliseconds."""
    context = None
    if num_workers:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=pin_memory,
        worker_init_fn=_quiet_worker if num_workers else None,
        prefetch_factor=4 if num_workers else None,
        persistent_workers=False,
        multiprocessing_context=context,
    )


# ----------------------------------------------------------------------------------------------------------
# checks


def _cache_key(path: str) -> str:
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def verify_shards(
    folder: str,
    manifest: ShardManifest,
    *,
    full: bool = False,
    cache_file: str | None = None,
) -> int:
    """Refuse a shards folder with a missing, altered or foreign file, naming it; returns files hashed.

    Every train and validation file's sha256 is compared with the manifest's. A file already checked with
    the same size and mtime (remembered in `cache_file`) is not hashed again, so a resumed run starts at
    once; `full` rehashes everything and scans every record batch: token ids below the vocabulary, the
    source dictionary, rows/tokens/tokens per source as the manifest says, and documents ending with EOS.
    """
    cache: dict[str, dict[str, str]] = {}
    if cache_file and not full and os.path.exists(cache_file):
        try:
            cache = json.loads(open(cache_file, encoding="utf-8").read())
        except (OSError, ValueError):
            cache = {}
    hashed = 0
    checked: dict[str, dict[str, str]] = {}
    for f in [*manifest.train, *manifest.validation]:
        path = storage.join(folder, f.file)
        if not os.path.exists(path):
            raise ShardError(f"{path}: shard file listed in {shard_format.MANIFEST} is missing")
        key = _cache_key(path)
        entry = cache.get(f.file)
        if not (entry and entry.get("key") == key and entry.get("sha256") == f.sha256):
            digest = storage.sha256_of(path)
            hashed += 1
            if digest != f.sha256:
                raise ShardError(
                    f"{path}: sha256 {digest} does not match {shard_format.MANIFEST} ({f.sha256}): the file "
                    "changed after the shards were written"
                )
        checked[f.file] = {"key": key, "sha256": f.sha256}
        reader = shard_format.open_shard(path)
        stamped = shard_format.shard_tokenizer_sha256(reader)
        if stamped is not None and stamped != manifest.tokenizer.sha256:
            raise ShardError(
                f"{path}: made with tokenizer {stamped}, the manifest's tokenizer is {manifest.tokenizer.sha256}"
            )
        expected_type = shard_format.token_type(manifest.tokenizer.vocab_size)
        if reader.schema.field("tokens").type.value_type != expected_type:
            raise ShardError(
                f"{path}: tokens are {reader.schema.field('tokens').type.value_type}, expected {expected_type} "
                f"for a vocabulary of {manifest.tokenizer.vocab_size}"
            )
        if full:
            _scan(path, f, manifest)
    if cache_file:
        storage.write_text_atomic(cache_file, json.dumps(checked, indent=1, sort_keys=True) + "\n")
    return hashed


def _scan(path: str, f: ShardFile, manifest: ShardManifest) -> None:
    names, vocab, eos = manifest.source_names, manifest.tokenizer.vocab_size, manifest.tokenizer.eos_id
    _open_segments(path, path, 0, names)  # nulls and the source dictionary of every record batch
    reader = shard_format.open_shard(path)
    rows = tokens_before = 0
    per_source = np.zeros(len(names), dtype=np.int64)
    for b in range(reader.num_record_batches):
        batch = reader.get_batch(b)
        offsets = batch.column(0).offsets.to_numpy(zero_copy_only=True).astype(np.int64)
        values = batch.column(0).values.to_numpy(zero_copy_only=True)[offsets[0] : offsets[-1]]
        row_source = batch.column(1).indices.to_numpy(zero_copy_only=True).astype(np.int64)
        if values.size and int(values.max()) >= vocab:
            bad = int(np.argmax(values >= vocab))
            raise ShardError(
                f"{path}: token id {int(values[bad])} at token {tokens_before + bad} is outside the "
                f"vocabulary ({vocab})"
            )
        lengths = np.diff(offsets)
        per_source += np.bincount(row_source, weights=lengths, minlength=len(names)).astype(np.int64)
        if manifest.eos_appended:
            ends = offsets[1:] - offsets[0] - 1
            wrong = (lengths > 0) & (values[np.maximum(ends, 0)] != eos) if values.size else lengths > 0
            if wrong.any():
                raise ShardError(f"{path}: row {rows + int(np.argmax(wrong))} does not end with EOS ({eos})")
        rows += len(row_source)
        tokens_before += int(values.size)
    if rows != f.rows:
        raise ShardError(f"{path}: holds {rows} rows, the manifest says {f.rows}")
    got = {n: int(per_source[i]) for i, n in enumerate(names) if per_source[i]}
    if got != f.tokens_per_source:
        raise ShardError(f"{path}: tokens per source {got}, the manifest says {f.tokens_per_source}")


def tokenizer_sha256_of(path: str) -> tuple[str, str]:
    """(sha256, model file) of a SentencePiece model given as the file or the folder holding it."""
    from manifests.tokenizer import MODEL_FILE

    model = storage.join(path, MODEL_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(model):
        raise ShardError(f"{model}: no tokenizer model there (data.tokenizer)")
    return storage.sha256_of(model), model


def find_tokenizer(shards_dir: str, manifest: ShardManifest, configured: str | None) -> str | None:
    """The SentencePiece model that made the shards: `data.tokenizer` (which must match, else an error
    naming both files), else `tokenizer/tokenizer.model` beside the shards folder when its sha256 matches
    the manifest's; None when there is none."""
    want = manifest.tokenizer.sha256
    if configured is not None:
        got, model = tokenizer_sha256_of(configured)
        if got != want:
            raise ShardError(
                f"{storage.join(shards_dir, shard_format.MANIFEST)}: the shards were made with tokenizer "
                f"{want}, but data.tokenizer {model} is {got}: a shards folder from another tokenizer"
            )
        return model
    candidate = os.path.join(os.path.dirname(os.path.abspath(shards_dir)), "tokenizer")
    try:
        got, model = tokenizer_sha256_of(candidate)
    except ShardError:
        return None
    return model if got == want else None
