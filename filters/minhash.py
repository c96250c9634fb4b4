"""MinHash signatures and LSH band keys for near-duplicate detection (RedPajama v2's settings).

RedPajama v2 settings: 128 permutations over 13-word shingles of normalised text, LSH bands
14×9 / 9×13 / 5×25 for Jaccard thresholds 0.7 / 0.8 / 0.9.

With `shingle_hash="datasketch"` the values are bit-for-bit those of
``datasketch.MinHash(num_perm, seed, scheme=...)`` fed with ``update(shingle)`` for every shingle of
:func:`shingles` (same SHA1-32 input hash, the permutation parameters datasketch 2.0 draws),
but a whole batch of documents is computed with one vectorised numpy pass instead of one Python call per
shingle. `shingle_hash="vectorized"` (the build's default) hashes the words and combines the n-gram
windows in numpy, with no Python call per word or shingle: the same LSH behaviour, other signature values.
Grouping the keys into clusters is the pipeline's job; this module only computes signatures and keys.
"""

from __future__ import annotations

import hashlib
import string
import sys
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

from filters.normalize import CharClass

Scheme = Literal["affine32", "legacy"]
ShingleHash = Literal["datasketch", "vectorized"]

#: Every signature value fits in 32 bits (both schemes); an empty document keeps this value everywhere.
EMPTY_VALUE = np.uint64((1 << 32) - 1)
_MERSENNE_PRIME = np.uint64((1 << 61) - 1)
_MAX32 = np.uint64((1 << 32) - 1)

#: (bands, rows) at 128 permutations, RedPajama v2's.
REDPAJAMA_LSH_PARAMS: dict[float, tuple[int, int]] = {0.7: (14, 9), 0.8: (9, 13), 0.9: (5, 25)}

# Rows of the (shingles × num_perm) matrix computed at once: bounds memory (8 MiB per 16k rows at 128
# perms) however long a document is, e.g. a 10 MB single line.
_CHUNK_ROWS = 16384


@lru_cache(maxsize=1)
def _deleted_and_spaced() -> tuple[CharClass, CharClass]:
    """What `normalize_for_minhash` deletes — ASCII `string.punctuation` (what RedPajama v2 removes) and
    every Unicode punctuation character (category P*) — and what it turns into spaces so that they separate
    words: control characters (Cc, e.g. NUL). See `filters.normalize.CharClass`."""
    deleted, spaced = set(string.punctuation), set()
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] == "P":
            deleted.add(chr(cp))
        elif cat == "Cc":
            spaced.add(chr(cp))
    return CharClass(deleted), CharClass(spaced)


def normalize_for_minhash(text: str) -> str:
    """Normalise text before shingling so trivial edits do not hide duplicates.

    NFD, punctuation deleted (ASCII `string.punctuation` as RedPajama v2, plus all Unicode P*),
    control characters → space, lowercase, whitespace collapsed to single spaces and stripped.
    Combining marks are KEPT (RedPajama v2 only applies NFD), so "café" and "cafe" stay different words.
    """
    deleted, spaced = _deleted_and_spaced()
    text = unicodedata.normalize("NFD", text)
    return " ".join(deleted.sub("", spaced.sub(" ", text)).lower().split())


def _shingle_spans(norm: bytes, ngram: int) -> tuple[list[int], list[int]]:
    """Byte (start, end) of every word n-gram of a normalised, UTF-8 encoded text (single spaces).

    Slicing one encoded buffer avoids building a string per shingle; a space byte never occurs inside a
    multi-byte UTF-8 sequence, so the spans are exactly the encodings of the joined words.
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    if not norm:
        return [], []
    spaces = np.flatnonzero(np.frombuffer(norm, dtype=np.uint8) == 0x20)
    n_words = len(spaces) + 1
    if n_words <= ngram:
        return [0], [len(norm)]
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [len(norm)]))
    return starts[: n_words - ngram + 1].tolist(), ends[ngram - 1 :].tolist()


@lru_cache(maxsize=1)
def _ascii_tables() -> tuple[bytes, bytes]:
    """`normalize_for_minhash` restricted to ASCII as a `bytes.translate` table and deletion set: ASCII
    control characters → space, `string.punctuation` deleted (every ASCII P* character is in it)."""
    deleted, spaced = _deleted_and_spaced()
    table = bytes(0x20 if spaced.sub(" ", chr(b)) == " " else b for b in range(256))
    delete = bytes(b for b in range(128) if not deleted.sub("", chr(b)))
    return table, delete


def _encode(text: str) -> bytes:
    """`normalize_for_minhash(text)` as UTF-8. An ASCII text (NFD changes nothing) takes a `bytes.translate`
    path, ~5x faster than the regex classes and equal to them on every ASCII character (tested)."""
    if text.isascii():
        table, delete = _ascii_tables()
        return b" ".join(text.encode("ascii").translate(table, delete).lower().split())
    # surrogatepass: lone surrogates (invalid UTF-16 left in scraped text) still hash deterministically.
    return normalize_for_minhash(text).encode("utf-8", "surrogatepass")


def shingles(text: str, ngram: int = 13) -> list[bytes]:
    """Word n-gram shingles (UTF-8, words joined by one space) of the normalised text.

    A text with fewer than `ngram` words gives one shingle of all its words; an empty text gives none.
    Lone surrogates are encoded with ``surrogatepass`` so any Python string hashes deterministically.
    Duplicate shingles are kept (they do not change a MinHash).
    """
    norm = _encode(text)
    starts, ends = _shingle_spans(norm, ngram)
    return [norm[s:e] for s, e in zip(starts, ends, strict=True)]


def _sha1_32_spans(buf: bytes, starts: list[int], ends: list[int]) -> bytes:
    """datasketch's `sha1_hash32` (first 4 bytes of SHA1, read little-endian) of each span, concatenated."""
    mv = memoryview(buf)
    sha1 = hashlib.sha1
    return b"".join([sha1(mv[s:e]).digest()[:4] for s, e in zip(starts, ends, strict=True)])


_WINDOW_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: multiply-add keeps word order in the window
_WORD_SEED = np.uint64(0x2545F4914F6CDD1D)
_WORD_BYTES_PER_STEP = 1 << 20  # bytes of text hashed at a time: bounds the arrays of a 10 MB document


def word_hashes(norm: bytes) -> np.ndarray:
    """A 64-bit hash of every word of a normalised, UTF-8 encoded text (words separated by single spaces),
    all in numpy: each byte is mixed with its position in its word (MurmurHash3's finaliser), the mixed
    bytes of a word are summed, and the sum is mixed again with the word's length. Equal words get equal
    hashes; different words collide with probability ~2^-64 (a sum of independently mixed terms, not a
    polynomial, so no family of strings collides for every seed)."""
    if not norm:
        return np.zeros(0, dtype=np.uint64)
    out = []
    buf = np.frombuffer(norm, dtype=np.uint8)
    lo = 0
    while lo < len(buf):
        hi = min(lo + _WORD_BYTES_PER_STEP, len(buf))
        # End the step at a space, so that no word is cut (a word longer than a step is one step).
        if hi < len(buf):
            nxt = norm.find(b" ", hi)
            hi = len(buf) if nxt < 0 else nxt
        out.append(_step_word_hashes(buf[lo:hi]))
        lo = hi + 1
    return np.concatenate(out) if len(out) > 1 else out[0]


_TABLE_POSITIONS = 64  # a word's first 64 bytes are mixed by table lookup; later bytes (rare) computed


@lru_cache(maxsize=1)
def _byte_mix_table() -> np.ndarray:
    """`_fmix64((position << 8 | byte) ^ _WORD_SEED)` for the first positions of a word and every byte value,
    flattened (128 KiB): one lookup per byte instead of seven array operations. A space adds nothing."""
    pos = np.arange(_TABLE_POSITIONS, dtype=np.uint64)[:, None]
    table = _fmix64((pos << np.uint64(8) | np.arange(256, dtype=np.uint64)[None, :]) ^ _WORD_SEED)
    table[:, 0x20] = 0
    return table.ravel()


def _step_word_hashes(b: np.ndarray) -> np.ndarray:
    is_space = b == 0x20
    spaces = np.flatnonzero(is_space)
    starts = np.concatenate(([0], spaces + 1))
    word_of = np.cumsum(is_space, dtype=np.int64) - is_space  # a space closes the word before it
    pos = np.arange(len(b), dtype=np.int64) - starts[word_of]
    mixed = _byte_mix_table()[np.minimum(pos, _TABLE_POSITIONS - 1) << 8 | b]
    far = np.flatnonzero(pos >= _TABLE_POSITIONS)
    if len(far):
        late = _fmix64((pos[far].astype(np.uint64) << np.uint64(8) | b[far].astype(np.uint64)) ^ _WORD_SEED)
        late[b[far] == 0x20] = 0
        mixed[far] = late
    sums = np.add.reduceat(mixed, starts)
    lengths = np.diff(np.append(starts, len(b) + 1)).astype(np.uint64) - np.uint64(1)
    return _fmix64(sums ^ (lengths * _WINDOW_MULTIPLIER))


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser (avalanche before taking the high 32 bits)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 32-bit finalizer, datasketch's one-shot pre-mix for the affine schemes."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def permutations(num_perm: int, seed: int, scheme: Scheme) -> tuple[np.ndarray, np.ndarray]:
    """The `(a, b)` permutation parameters datasketch 2.0 draws (`MinHash._init_permutations`), without
    importing datasketch (whose package import pulls in scipy): a seeded `RandomState`; "legacy" draws
    `a ∈ [1, p)`, `b ∈ [0, p)` per permutation with p = 2^61 − 1, "affine32" an odd `a` and a `b` below 2^32."""
    gen = np.random.RandomState(seed)
    if scheme == "legacy":
        pairs = [
            (
                gen.randint(1, _MERSENNE_PRIME, dtype=np.uint64),
                gen.randint(0, _MERSENNE_PRIME, dtype=np.uint64),
            )
            for _ in range(num_perm)
        ]
        arr = np.array(pairs, dtype=np.uint64).T
        return arr[0], arr[1]
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


class MinHasher:
    """Batch MinHash identical to datasketch's, for many documents in one numpy pass.

    `scheme="affine32"` is datasketch 2.x's default (fmix32 then ``a*h+b mod 2^32``, a bijection);
    `scheme="legacy"` is the pre-2.0 ``(a*h+b) mod (2^61-1)`` truncated to 32 bits. Signatures are
    returned as uint64 either way.
    """

    def __init__(
        self,
        num_perm: int = 128,
        ngram: int = 13,
        seed: int = 1,
        scheme: Scheme = "affine32",
        shingle_hash: ShingleHash = "datasketch",
    ):
        if shingle_hash not in ("datasketch", "vectorized"):
            raise ValueError(f"shingle_hash must be 'datasketch' or 'vectorized', got {shingle_hash!r}")
        self.shingle_hash: ShingleHash = shingle_hash
        if num_perm < 1:
            raise ValueError(f"num_perm must be >= 1, got {num_perm}")
        if scheme not in ("affine32", "legacy"):
            raise ValueError(f"scheme must be 'affine32' or 'legacy', got {scheme!r}")
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {ngram}")
        self.num_perm = num_perm
        self.ngram = ngram
        self.seed = seed
        self.scheme: Scheme = scheme
        a, b = permutations(num_perm, seed, scheme)
        if scheme == "affine32":
            self._a = np.asarray(a, dtype=np.uint32)
            self._b = np.asarray(b, dtype=np.uint32)
        else:
            self._a = np.asarray(a, dtype=np.uint64)
            self._b = np.asarray(b, dtype=np.uint64)

    def _permute(self, hv: np.ndarray) -> np.ndarray:
        """(k,) uint32 input hashes → (num_perm, k) permuted values (uint32 or uint64 by scheme).

        Permutations on the first axis so the per-document min-reduction runs over contiguous memory.
        """
        if self.scheme == "affine32":
            return self._a[:, None] * _fmix32(hv) + self._b[:, None]  # uint32 wrap-around is the mod 2^32
        h = hv.astype(np.uint64)
        return ((self._a[:, None] * h + self._b[:, None]) % _MERSENNE_PRIME) & _MAX32

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), num_perm) uint64 signatures; a text without shingles gets all `EMPTY_VALUE`."""
        if isinstance(texts, str):
            raise TypeError("signatures() takes a sequence of texts, not one str; use signature()")
        n = len(texts)
        out = np.full((n, self.num_perm), EMPTY_VALUE, dtype=np.uint64)
        digests: list[bytes] = []
        counts = np.zeros(n, dtype=np.int64)
        norms = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
            norms.append(_encode(text))
        if self.shingle_hash == "vectorized":
            hv, counts = self._batch_window_hashes(norms)
        else:
            for i, norm in enumerate(norms):
                starts, ends = _shingle_spans(norm, self.ngram)
                counts[i] = len(starts)
                digests.append(_sha1_32_spans(norm, starts, ends))
            hv = np.frombuffer(b"".join(digests), dtype="<u4")
        del digests, norms
        if not counts.any():
            return out
        doc_of = np.repeat(np.arange(n, dtype=np.int64), counts)
        for start in range(0, len(hv), _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, len(hv))
            phv = self._permute(hv[start:stop])
            docs = doc_of[start:stop]
            # Documents are contiguous runs: reduce each run, then merge with what earlier chunks found.
            seg_starts = np.flatnonzero(np.r_[True, docs[1:] != docs[:-1]])
            mins = np.minimum.reduceat(phv, seg_starts, axis=1).T.astype(np.uint64)
            seg_docs = docs[seg_starts]
            out[seg_docs] = np.minimum(out[seg_docs], mins)
        return out

    def _batch_window_hashes(self, norms: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """`_window_hashes` of every text, concatenated, and how many each has — computed for the whole
        batch at once: the words of all texts hashed in one pass, the windows combined over the joined
        word array (windows across two texts are computed and never used), then each text's picked out.
        Texts shorter than a window take `_window_hashes` one by one. Same values as one text at a time, with
        the array work done once per batch instead of a dozen numpy calls per text."""
        n, ngram = len(norms), self.ngram
        words = np.fromiter((x.count(b" ") + 1 if x else 0 for x in norms), dtype=np.int64, count=n)
        counts = np.where(words >= ngram, words - ngram + 1, 0)
        parts: list[np.ndarray] = [np.zeros(0, dtype="<u4")] * n
        long_docs = np.flatnonzero(words >= ngram)
        if len(long_docs):
            hashes = word_hashes(b" ".join([norms[i] for i in long_docs.tolist()]))
            n_win = len(hashes) - ngram + 1
            acc = np.zeros(n_win, dtype=np.uint64)
            for i in range(ngram):
                acc = acc * _WINDOW_MULTIPLIER + hashes[i : i + n_win]
            values = (_fmix64(acc) >> np.uint64(32)).astype("<u4")
            first_word = np.cumsum(words[long_docs]) - words[long_docs]
            for d, lo, k in zip(
                long_docs.tolist(), first_word.tolist(), counts[long_docs].tolist(), strict=True
            ):
                parts[d] = values[lo : lo + k]
        for d in np.flatnonzero((words > 0) & (words < ngram)).tolist():
            parts[d] = np.frombuffer(self._window_hashes(norms[d]), dtype="<u4")
            counts[d] = len(parts[d])
        return np.concatenate(parts) if n else np.zeros(0, dtype="<u4"), counts

    def _window_hashes(self, norm: bytes) -> bytes:
        """32-bit hashes of the word n-grams of a normalised text: every word hashed in numpy
        (`word_hashes`), the n words of each window combined by multiply-add, then a 64-bit finaliser.

        Not datasketch's values: the same documents are near-duplicates with the same probability, but
        signatures differ from the SHA1 scheme's. No Python call per shingle or per word.
        """
        if not norm:
            return b""
        hashes = word_hashes(norm)
        n_words = len(hashes)
        n_win = max(1, n_words - self.ngram + 1)
        width = min(self.ngram, n_words)
        acc = np.zeros(n_win, dtype=np.uint64)
        for i in range(width):
            acc = acc * _WINDOW_MULTIPLIER + hashes[i : i + n_win]
        return (_fmix64(acc) >> np.uint64(32)).astype("<u4").tobytes()

    def signature(self, text: str) -> np.ndarray:
        """One document's (num_perm,) signature."""
        return self.signatures([text])[0]


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """MinHash estimate of the Jaccard similarity: the fraction of equal signature positions."""
    a = np.asarray(sig_a)
    b = np.asarray(sig_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"signatures must be 1-D and of equal length, got {a.shape} and {b.shape}")
    return float(np.count_nonzero(a == b)) / a.size


@lru_cache(maxsize=64)
def lsh_params(
    threshold: float,
    num_perm: int = 128,
    false_positive_weight: float = 0.5,
    false_negative_weight: float = 0.5,
) -> tuple[int, int]:
    """(bands, rows) for a Jaccard threshold.

    At 128 permutations and thresholds 0.7 / 0.8 / 0.9 these are RedPajama v2's values; anything
    else is datasketch's `_optimal_param`: the b×r ≤ num_perm minimising the weighted false-positive and
    false-negative areas under the S-curve 1-(1-s^r)^b.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    if num_perm == 128:
        for t, br in REDPAJAMA_LSH_PARAMS.items():
            if abs(threshold - t) < 1e-9:
                return br
    from datasketch.lsh import _optimal_param  # imports scipy (~40 MB a process): only for other thresholds

    b, r = _optimal_param(threshold, num_perm, false_positive_weight, false_negative_weight)
    return int(b), int(r)


def _check_bands(num_perm: int, bands: int, rows: int) -> None:
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(f"bands×rows must be ≥ 1 and ≤ num_perm ({num_perm}), got {bands}×{rows}")
    if bands > 0xFFFF:
        raise ValueError(f"at most 65535 bands, got {bands}")


def band_keys(signature_row: np.ndarray, bands: int, rows: int) -> list[bytes]:
    """One LSH key per band: 2-byte big-endian band index + the band's values as big-endian uint32.

    Documents that share any key are candidate duplicates; the band index in the key keeps equal values
    in different bands apart. An empty document (all `EMPTY_VALUE`) gets NO keys: it has no shingles, so
    it is nobody's near-duplicate (otherwise all empty documents would form one cluster).
    """
    return band_keys_batch(np.asarray(signature_row)[None, :], bands, rows)[0]


def band_keys_batch(signatures: np.ndarray, bands: int, rows: int) -> list[list[bytes]]:
    """`band_keys` for every row of an (n, num_perm) signature array."""
    sigs = np.asarray(signatures)
    if sigs.ndim != 2:
        raise ValueError(f"signatures must be 2-D (n, num_perm), got shape {sigs.shape}")
    n, num_perm = sigs.shape
    _check_bands(num_perm, bands, rows)
    if n == 0:
        return []
    used = sigs[:, : bands * rows]
    if used.size and int(used.max()) > int(_MAX32):
        raise ValueError("signature values exceed 32 bits: not a MinHasher signature")
    width = 2 + 4 * rows
    buf = np.empty((n, bands, width), dtype=np.uint8)
    buf[:, :, :2] = np.arange(bands, dtype=">u2").view(np.uint8).reshape(bands, 2)
    buf[:, :, 2:] = np.ascontiguousarray(used.astype(">u4")).view(np.uint8).reshape(n, bands, 4 * rows)
    empty = np.all(sigs == EMPTY_VALUE, axis=1)
    flat = buf.tobytes()
    row_bytes = bands * width
    out: list[list[bytes]] = []
    for i in range(n):
        if empty[i]:
            out.append([])
            continue
        base = i * row_bytes
        out.append([flat[base + j * width : base + (j + 1) * width] for j in range(bands)])
    return out


_BAND_MULTIPLIERS = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def band_digests(signatures: np.ndarray, bands: int, rows: int) -> list[list[bytes]]:
    """`band_keys_batch` compressed to 16 bytes a key: two independent 64-bit mixes of each band's values
    and its index (collisions between different bands are ~2^-128, where the full key is 2 + 4·rows bytes).
    Documents without shingles get no keys."""
    sigs = np.asarray(signatures)
    if sigs.ndim != 2:
        raise ValueError(f"signatures must be 2-D (n, num_perm), got shape {sigs.shape}")
    n, num_perm = sigs.shape
    _check_bands(num_perm, bands, rows)
    if n == 0:
        return []
    used = sigs[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    band_index = np.arange(1, bands + 1, dtype=np.uint64)[None, :]
    halves = []
    for mult in _BAND_MULTIPLIERS:
        acc = np.broadcast_to(band_index, (n, bands)).copy()
        for r in range(rows):
            acc = acc * mult + used[:, :, r]
        halves.append(_fmix64(acc))
    digest = np.stack(halves, axis=2).astype("<u8")  # (n, bands, 2)
    flat = digest.tobytes()
    empty = np.all(sigs == EMPTY_VALUE, axis=1)
    out: list[list[bytes]] = []
    for i in range(n):
        if empty[i]:
            out.append([])
            continue
        base = i * bands * 16
        out.append([flat[base + j * 16 : base + (j + 1) * 16] for j in range(bands)])
    return out
