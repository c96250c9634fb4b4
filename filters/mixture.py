"""The token-weighted mixture (LLaMA Table 1): epochs per source, repeats, validation split, shuffle order.

LLaMA's sampling proportions are shares of the training TOKENS (arXiv:2302.13971 §2.1, Table 1: 67%
CommonCrawl, Wikipedia seen 2.45 times, GitHub 0.64 times). So for a stream of `total_tokens`:

    target_s = weight_s × total_tokens        epochs_s = target_s / tokens_s

and every training document of source s appears `floor(epochs_s)` times (whole repeats) plus once more if
it is in a deterministic fractional sample holding `target_s − floor(epochs_s) × tokens_s` tokens. The
sample is the prefix, in the order of a key hashed from (seed, document id, repeat index), that comes
closest to that token count: its error is at most half of one document (the one where the prefix stops),
which is the smallest error whole documents allow for a key-ordered sample.

Everything here is a pure function of the document ids, their token counts and the seed, so the same
inputs give the same stream on any number of workers, and the decisions can be computed in pieces
(per file) and combined: a token histogram over key bins finds the bin where the prefix stops, and only
that bin's documents are ever gathered in one place.

The validation split depends on the document id alone (not on the seed or the weights), so mixture
ablations keep the same held-out documents and their losses stay comparable; it is chosen before
repetition, so a validation document never appears in training.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

KEY_BITS = 64
BIN_BITS = 12
KEY_BINS = 1 << BIN_BITS  # token histogram resolution of the fractional sample's key space
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


class MixtureError(ValueError):
    """A mixture that cannot be built; `source` names the source (None: the whole mixture)."""

    def __init__(self, source: str | None, message: str) -> None:
        self.source = source
        super().__init__(f"source {source!r}: {message}" if source else message)


# ---------------------------------------------------------------------------------------- hashing


def doc_hashes(doc_ids: Sequence[str]) -> np.ndarray:
    """64-bit hashes of document ids (BLAKE2b, little-endian): the only per-id hash call; every other key
    is mixed from these in numpy."""
    out = np.empty(len(doc_ids), dtype=np.uint64)
    for i, doc_id in enumerate(doc_ids):
        out[i] = int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest(), "little")
    return out


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele et al., 2014), vectorised: a bijection on uint64 with full
    avalanche, so keys derived from one id hash with different constants behave as independent."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def _stream(tag: str, seed: int | None = None, repeat: int = 0) -> np.uint64:
    data = f"corral/{tag}/{seed}/{repeat}".encode()
    return np.uint64(int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little"))


def validation_mask(hashes: np.ndarray, fraction: float) -> np.ndarray:
    """Documents held out for validation: a uniform value from the id hash alone, below `fraction`."""
    if fraction <= 0:
        return np.zeros(len(hashes), dtype=bool)
    u = mix64(np.asarray(hashes, dtype=np.uint64) ^ _stream("validation"))
    return (u >> np.uint64(11)).astype(np.float64) * 2.0**-53 < fraction


def sample_keys(hashes: np.ndarray, seed: int, repeat: int) -> np.ndarray:
    """The fractional sample's order key of each document for repeat index `repeat`."""
    return mix64(np.asarray(hashes, dtype=np.uint64) ^ _stream("sample", seed, repeat))


def shuffle_keys(hashes: np.ndarray, repeats: np.ndarray, seed: int) -> np.ndarray:
    """The global shuffle key of each row (document hash, repeat index): rows are written in key order."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    repeats = np.asarray(repeats, dtype=np.int64)
    out = np.empty(len(hashes), dtype=np.uint64)
    for r in np.unique(repeats):
        sel = repeats == r
        out[sel] = mix64(hashes[sel] ^ _stream("shuffle", seed, int(r)))
    return out


def key_bins(keys: np.ndarray) -> np.ndarray:
    return (np.asarray(keys, dtype=np.uint64) >> np.uint64(KEY_BITS - BIN_BITS)).astype(np.int64)


def shard_of(keys: np.ndarray, shards: int) -> np.ndarray:
    """Shard index of each row: contiguous key ranges, so shards hold disjoint slices of one global
    key order and are equal in size up to sampling noise."""
    if shards <= 0:
        raise ValueError(f"shards must be > 0, got {shards}")
    top = np.asarray(keys, dtype=np.uint64) >> np.uint64(32)
    with np.errstate(over="ignore"):
        return ((top * np.uint64(shards)) >> np.uint64(32)).astype(np.int64)


def num_shards(tokens: int, shard_tokens: int) -> int:
    return 0 if tokens <= 0 else max(1, math.ceil(tokens / shard_tokens))


def shuffle_order(keys: np.ndarray, doc_ids: Sequence[str], repeats: np.ndarray) -> np.ndarray:
    """Row order of one shard: by key, ties (a 64-bit collision) broken by (doc id, repeat), so the
    order never depends on the order rows arrived in."""
    keys = np.asarray(keys, dtype=np.uint64)
    order = np.argsort(keys, kind="stable")
    if len(order) > 1 and bool(np.any(np.diff(keys[order]) == 0)):
        order = np.array(
            sorted(range(len(keys)), key=lambda i: (int(keys[i]), doc_ids[i], int(repeats[i]))),
            dtype=np.int64,
        )
    return order


# ---------------------------------------------------------------------------------------- planning


def normalise_weights(weights: Mapping[str, float]) -> tuple[dict[str, float], str | None]:
    """Weights as token shares summing to 1, and a note when they did not already."""
    total = float(sum(weights.values()))
    if not total > 0:
        raise MixtureError(None, f"weights must sum to > 0, got {total}")
    shares = {name: float(w) / total for name, w in weights.items()}
    note = None
    if abs(total - 1.0) > 1e-9:
        listed = ", ".join(f"{n} {w:g} → {shares[n]:.4f}" for n, w in weights.items())
        note = f"weights sum to {total:g}, not 1: normalised to token shares ({listed})"
    return shares, note


@dataclass(frozen=True)
class SourcePlan:
    """What the mixture asks of one source, before the fractional sample is chosen."""

    name: str
    weight: float  # normalised token share
    target: int  # tokens of this source in the training stream
    unique_tokens: int  # tokens of its training documents, each once
    documents: int  # its training documents
    epochs: float  # target / unique_tokens
    whole: int  # repeats every document gets
    fraction_tokens: int  # tokens the fractional sample (repeat index `whole`) must hold


def plan_mixture(
    weights: Mapping[str, float],
    unique_tokens: Mapping[str, int],
    documents: Mapping[str, int],
    total_tokens: int,
    max_epochs: float,
    hard_max_epochs: float,
) -> tuple[dict[str, SourcePlan], list[str]]:
    """Epochs per source from the token weights; warnings for sources above `max_epochs`.

    Refused: `total_tokens` ≤ 0, a weighted source without training documents (nothing can give it
    its share), epochs above `hard_max_epochs`.
    """
    if total_tokens <= 0:
        raise MixtureError(None, f"total_tokens must be > 0, got {total_tokens}")
    shares, _ = normalise_weights(weights)
    plans: dict[str, SourcePlan] = {}
    warnings: list[str] = []
    for name, share in shares.items():
        tokens, docs = int(unique_tokens.get(name, 0)), int(documents.get(name, 0))
        if docs <= 0 or tokens <= 0:
            raise MixtureError(
                name,
                f"weight {weights[name]:g} but no training documents (documents={docs}, tokens={tokens})",
            )
        target = round(share * total_tokens)
        epochs = target / tokens
        if epochs > hard_max_epochs:
            raise MixtureError(
                name,
                f"{epochs:.2f} epochs (target {target:,} tokens from {tokens:,} unique) is above the hard "
                f"limit of {hard_max_epochs:g}: lower its weight or total_tokens, or add data",
            )
        if epochs > max_epochs:
            warnings.append(
                f"source {name!r}: {epochs:.2f} epochs is above max_epochs={max_epochs:g} "
                f"(each of its documents is seen that often)"
            )
        whole = target // tokens
        plans[name] = SourcePlan(name, share, target, tokens, docs, epochs, whole, target - whole * tokens)
    return plans, warnings


# ---------------------------------------------------------------------------- the fractional sample


def token_histogram(keys: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Tokens per key bin (int64, exact): combined by summing across files."""
    counts = np.bincount(key_bins(keys), weights=np.asarray(lengths, dtype=np.float64), minlength=KEY_BINS)
    return np.rint(counts).astype(np.int64)


@dataclass(frozen=True)
class Boundary:
    """The key bin where the fractional sample's prefix stops, and what is left to take inside it."""

    bin: int
    below: int  # tokens of the documents in lower bins (all taken)
    remaining: int  # tokens still wanted from this bin


def find_boundary(histogram: np.ndarray, fraction_tokens: int) -> Boundary:
    """The first bin whose cumulative tokens reach `fraction_tokens` (> 0)."""
    if fraction_tokens <= 0:
        raise ValueError("no fractional sample to place")
    cum = np.cumsum(np.asarray(histogram, dtype=np.int64))
    b = int(np.searchsorted(cum, fraction_tokens, side="left"))
    if b >= len(cum):
        raise ValueError(f"fraction of {fraction_tokens} tokens exceeds the {int(cum[-1])} available")
    below = int(cum[b - 1]) if b else 0
    return Boundary(b, below, fraction_tokens - below)


@dataclass(frozen=True)
class Cut:
    """Inside the boundary bin, documents whose (key, id) ≤ (key, doc_id) are in the sample."""

    bin: int
    key: int | None  # None: no document of the boundary bin is taken
    doc_id: str
    taken: int  # tokens taken from the boundary bin
    sample_tokens: int  # tokens of the whole fractional sample
    boundary_tokens: int  # tokens of the document where the prefix stops (the granularity)


def choose_cut(boundary: Boundary, candidates: Sequence[tuple[int, str, int]]) -> Cut:
    """The prefix of the boundary bin's documents (sorted by key, then id) whose tokens come closest to
    `boundary.remaining`; on a tie the shorter prefix."""
    ordered = sorted(candidates)
    best_err, best_m, best_taken = boundary.remaining, 0, 0
    taken, granularity = 0, 0
    for m, (_, _, length) in enumerate(ordered, start=1):
        taken += length
        err = abs(taken - boundary.remaining)
        if err < best_err:
            best_err, best_m, best_taken = err, m, taken
        if taken >= boundary.remaining:
            granularity = length
            break
    if best_m == 0:
        return Cut(boundary.bin, None, "", 0, boundary.below, granularity)
    key, doc_id, _ = ordered[best_m - 1]
    return Cut(boundary.bin, key, doc_id, best_taken, boundary.below + best_taken, granularity)


def in_sample(keys: np.ndarray, doc_ids: Sequence[str], cut: Cut | None) -> np.ndarray:
    """Which documents the fractional sample holds."""
    keys = np.asarray(keys, dtype=np.uint64)
    if cut is None:
        return np.zeros(len(keys), dtype=bool)
    bins = key_bins(keys)
    mask = bins < cut.bin
    if cut.key is not None:
        for i in np.flatnonzero(bins == cut.bin):
            mask[i] = (int(keys[i]), doc_ids[i]) <= (cut.key, cut.doc_id)
    return mask


def explain_share_error(
    name: str,
    tokens: int,
    target: int,
    weight: float,
    boundary_tokens: int,
    stream_tokens: int,
    limit_pp: float = 0.5,
) -> str | None:
    """Why a source's share misses its weight by more than `limit_pp` points, or None when it does not.

    share − weight = (tokens − target) / N  +  (target / N − weight): the first part is the source's own
    sample (at most half its boundary document), the second comes from the stream's total N being off
    its `total_tokens`, i.e. from the other sources' boundary documents.
    """
    if stream_tokens <= 0:
        return None
    err = (tokens / stream_tokens - weight) * 100
    if abs(err) <= limit_pp:
        return None
    own = (tokens - target) / stream_tokens * 100
    rest = err - own
    half = boundary_tokens / 2 / stream_tokens * 100
    return (
        f"source {name!r}: achieved {tokens / stream_tokens:.4%} vs target {weight:.4%} ({err:+.2f} pp): "
        f"{own:+.2f} pp from its own sample, which stops at a document of {boundary_tokens:,} tokens "
        f"(half of it is {half:.2f} pp of the stream), and {rest:+.2f} pp because the stream holds "
        f"{stream_tokens:,} tokens rather than the sum of the targets (the other sources' boundary documents): "
        "each sample is the key-order prefix closest to its own target, so only whole documents limit it"
    )


def repeats_of(whole: int, sampled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of some training documents: (document index, repeat index) for `whole` repeats of each,
    then repeat index `whole` for the sampled ones; in document order."""
    sampled = np.asarray(sampled, dtype=bool)
    counts = whole + sampled.astype(np.int64)
    index = np.repeat(np.arange(len(sampled), dtype=np.int64), counts)
    starts = np.cumsum(counts) - counts
    repeat = np.arange(len(index), dtype=np.int64) - np.repeat(starts, counts)
    return index, repeat
