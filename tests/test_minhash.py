"""MinHash signatures and LSH keys: equal to datasketch, planted near-duplicates found, edge inputs."""

from __future__ import annotations

import gzip
import json
import math
import random
import time

import numpy as np
import pytest
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from filters.minhash import (
    EMPTY_VALUE,
    MinHasher,
    band_keys,
    band_keys_batch,
    jaccard,
    lsh_params,
    normalize_for_minhash,
    shingles,
)

MIXED = [
    "The quick brown fox jumps over the lazy dog, again and again, until the dog finally wakes up and barks.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю — говорит пословица о шрифтах.",
    "敏捷的棕色狐狸 跳过了 懒狗 这是 一个 中文 句子 用来 测试 分词 以 空格 为界",
    "Mixed: café naïve Ελληνικά العربية हिन्दी 日本語 한국어 emoji 🙂 and ASCII words 42 times.",
    "short",
    "a b c d e f g h i j k l m",  # exactly 13 words
    "a b c d e f g h i j k l m n",  # 14 words: two shingles
]


def _datasketch_values(text: str, num_perm: int, seed: int, scheme: str, ngram: int = 13) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
    for sh in shingles(text, ngram):
        m.update(sh)
    return m.hashvalues.astype(np.uint64)


def _random_doc(rng: random.Random, n_words: int, vocab_size: int = 20000) -> list[str]:
    return [f"w{rng.randrange(vocab_size)}" for _ in range(n_words)]


def _true_jaccard(a: str, b: str, ngram: int = 13) -> float:
    sa, sb = set(shingles(a, ngram)), set(shingles(b, ngram))
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
@pytest.mark.parametrize(("num_perm", "seed", "ngram"), [(128, 1, 13), (64, 7, 5)])
def test_signatures_equal_datasketch_update(scheme: str, num_perm: int, seed: int, ngram: int) -> None:
    rng = random.Random(3)
    texts = [*MIXED, " ".join(_random_doc(rng, 400)), " ".join(_random_doc(rng, 3000))]
    sigs = MinHasher(num_perm=num_perm, ngram=ngram, seed=seed, scheme=scheme).signatures(texts)
    assert sigs.shape == (len(texts), num_perm)
    assert sigs.dtype == np.uint64
    for text, sig in zip(texts, sigs, strict=True):
        np.testing.assert_array_equal(sig, _datasketch_values(text, num_perm, seed, scheme, ngram))


def test_batch_equals_one_by_one_and_chunking() -> None:
    # > _CHUNK_ROWS shingles in total so documents straddle chunk borders.
    rng = random.Random(11)
    texts = [" ".join(_random_doc(rng, rng.randrange(1, 9000))) for _ in range(8)]
    mh = MinHasher()
    batch = mh.signatures(texts)
    for text, row in zip(texts, batch, strict=True):
        np.testing.assert_array_equal(row, mh.signature(text))


def test_normalisation_makes_trivial_edits_identical() -> None:
    a = "Hello,   World! This is   a TEST of the “normalisation” — isn't it?"
    b = "hello world this is a test of the normalisation isnt it"
    assert normalize_for_minhash(a) == b
    mh = MinHasher()
    np.testing.assert_array_equal(mh.signature(a), mh.signature(b))
    # NFD: composed and decomposed é give the same shingles; the combining mark itself is kept.
    assert shingles("caf\u00e9 au lait") == shingles("cafe\u0301 au lait")
    assert shingles("café") != shingles("cafe")


def test_short_text_gives_one_shingle_of_all_words() -> None:
    assert shingles("One two three.", ngram=13) == [b"one two three"]
    assert len(shingles(MIXED[5])) == 1
    assert shingles(MIXED[6]) == [b"a b c d e f g h i j k l m", b"b c d e f g h i j k l m n"]
    assert shingles("a b c d", ngram=2) == [b"a b", b"b c", b"c d"]
    with pytest.raises(ValueError, match="ngram"):
        shingles("x", ngram=0)


@pytest.mark.parametrize("text", ["", "   \n\t  ", "!!! ... ,,, —", "\x00\x01\x02"])
def test_empty_text_has_defined_signature_and_no_keys(text: str) -> None:
    assert shingles(text) == []
    sig = MinHasher().signature(text)
    assert sig.dtype == np.uint64
    assert np.all(sig == EMPTY_VALUE)
    # datasketch's never-updated MinHash holds the same sentinel.
    np.testing.assert_array_equal(sig, MinHash(num_perm=128, seed=1).hashvalues.astype(np.uint64))
    assert band_keys(sig, *lsh_params(0.8)) == []


def test_empty_batch() -> None:
    assert MinHasher().signatures([]).shape == (0, 128)
    assert band_keys_batch(np.zeros((0, 128), dtype=np.uint64), 9, 13) == []


def test_lone_surrogates_and_nul_bytes() -> None:
    mh = MinHasher()
    surrogate = "text with a lone \ud800 surrogate and another \udfff one in it"
    sig = mh.signature(surrogate)
    assert not np.all(sig == EMPTY_VALUE)
    np.testing.assert_array_equal(sig, _datasketch_values(surrogate, 128, 1, "affine32"))
    # NUL and other control characters separate words instead of gluing them.
    assert normalize_for_minhash("alpha\x00beta\x07gamma") == "alpha beta gamma"
    np.testing.assert_array_equal(mh.signature("alpha\x00beta"), mh.signature("alpha beta"))


def test_ten_megabyte_single_line() -> None:
    rng = random.Random(5)
    one_word = "x" * 10_000_000
    many_words = " ".join("".join(rng.choices("abcdefghij", k=40)) for _ in range(250_000))
    assert len(many_words) > 10_000_000 and "\n" not in many_words
    mh = MinHasher()
    start = time.perf_counter()
    sigs = mh.signatures([one_word, many_words])
    elapsed = time.perf_counter() - start
    assert sigs.shape == (2, 128)
    np.testing.assert_array_equal(sigs[0], _datasketch_values(one_word, 128, 1, "affine32"))
    assert not np.any(sigs == EMPTY_VALUE)
    assert elapsed < 30, f"10 MB took {elapsed:.1f}s"  # generous: a hang guard, not a benchmark


def test_lsh_params_spec_table_and_optimum() -> None:
    assert lsh_params(0.7) == (14, 9)
    assert lsh_params(0.8) == (9, 13)
    assert lsh_params(0.9) == (5, 25)
    for threshold, num_perm in [(0.5, 128), (0.85, 128), (0.8, 64)]:
        b, r = lsh_params(threshold, num_perm)
        assert b * r <= num_perm
        assert (b, r) == _optimal_param(threshold, num_perm, 0.5, 0.5)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            lsh_params(bad)


def test_band_keys_layout_and_band_index() -> None:
    sig = np.full(128, 12345, dtype=np.uint64)  # every band has identical values
    keys = band_keys(sig, 9, 13)
    assert len(keys) == 9
    assert len(set(keys)) == 9  # the band index keeps them apart
    assert all(len(k) == 2 + 4 * 13 for k in keys)
    assert keys[3][:2] == (3).to_bytes(2, "big")
    assert keys[0][2:6] == (12345).to_bytes(4, "big")
    with pytest.raises(ValueError, match="bands"):
        band_keys(sig, 10, 13)  # 130 > 128
    with pytest.raises(ValueError, match="32 bits"):
        band_keys(np.full(128, 1 << 40, dtype=np.uint64), 9, 13)


def test_band_keys_batch_matches_rows() -> None:
    rng = random.Random(2)
    texts = [" ".join(_random_doc(rng, 200)) for _ in range(5)] + [""]
    sigs = MinHasher().signatures(texts)
    batch = band_keys_batch(sigs, 14, 9)
    assert batch == [band_keys(row, 14, 9) for row in sigs]
    assert batch[-1] == []
    # Rows differing in one position differ in exactly the key of that position's band.
    other = sigs[0].copy()
    other[20] ^= np.uint64(1)
    pairs = zip(band_keys(sigs[0], 14, 9), band_keys(other, 14, 9), strict=True)
    diff = [i for i, (x, y) in enumerate(pairs) if x != y]
    assert diff == [20 // 9]


def test_planted_near_duplicates_found_and_distinct_pairs_not() -> None:
    """At 0.8 (9 bands × 13 rows) a pair with Jaccard J is a candidate with probability 1-(1-J^13)^9:
    ≥ 0.997 for J ≥ 0.94, ~0.001 for J = 0.5. Plant pairs on both sides and prove J by counting shingles."""
    rng = random.Random(1234)
    bands, rows = lsh_params(0.8)
    near, far = [], []
    for _ in range(12):
        words = _random_doc(rng, 1500)
        edited = list(words)
        for pos in rng.sample(range(0, 1500, 20), k=rng.randrange(1, 4)):  # 1–3 spread substitutions
            edited[pos] = f"edit{rng.randrange(10**6)}"
        near.append((" ".join(words), " ".join(edited)))
        keep = rng.randrange(300, 600)  # share a prefix only: J well below 0.5
        far.append((" ".join(words), " ".join(words[:keep] + _random_doc(rng, 1500 - keep))))
    mh = MinHasher()
    for pairs, expect_shared in ((near, True), (far, False)):
        texts = [t for pair in pairs for t in pair]
        keys = band_keys_batch(mh.signatures(texts), bands, rows)
        for i, (a, b) in enumerate(pairs):
            true_j = _true_jaccard(a, b)
            if expect_shared:
                assert true_j >= 0.94
            else:
                assert true_j < 0.5
            shared = set(keys[2 * i]) & set(keys[2 * i + 1])
            assert bool(shared) is expect_shared, f"pair {i}: J={true_j:.3f}, shared={len(shared)}"


def test_candidate_rate_follows_s_curve_near_threshold() -> None:
    """Pairs at J≈0.8 are candidates about 40% of the time at 9×13 (RedPajama's S-curve is centred at
    ~0.845): check the measured rate against the theory, which a wrong banding would miss."""
    rng = random.Random(99)
    bands, rows = lsh_params(0.8)
    texts, js = [], []
    for _ in range(150):
        words = _random_doc(rng, 600)
        edited = list(words)
        for pos in range(10, 600, 106):  # 6 spread substitutions, 13 shingles lost each
            edited[pos] = f"edit{rng.randrange(10**6)}"
        texts += [" ".join(words), " ".join(edited)]
    keys = band_keys_batch(MinHasher().signatures(texts), bands, rows)
    hits = 0
    for i in range(0, len(texts), 2):
        js.append(_true_jaccard(texts[i], texts[i + 1]))
        hits += bool(set(keys[i]) & set(keys[i + 1]))
    j = float(np.mean(js))
    assert 0.75 < j < 0.85
    p = 1 - (1 - j**rows) ** bands
    n = len(js)
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(hits / n - p) < 4 * sigma, f"rate {hits / n:.3f} vs theory {p:.3f} at J={j:.3f}"


def test_jaccard_estimate() -> None:
    rng = random.Random(8)
    words = _random_doc(rng, 2000)
    edited = words[:1400] + _random_doc(rng, 600)
    a, b = " ".join(words), " ".join(edited)
    sigs = MinHasher(num_perm=256).signatures([a, b])
    assert abs(jaccard(sigs[0], sigs[1]) - _true_jaccard(a, b)) < 0.1
    assert jaccard(sigs[0], sigs[0]) == 1.0
    with pytest.raises(ValueError, match="equal length"):
        jaccard(sigs[0], sigs[1][:10])


def test_invalid_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="num_perm"):
        MinHasher(num_perm=0)
    with pytest.raises(ValueError, match="scheme"):
        MinHasher(scheme="affine64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ngram"):
        MinHasher(ngram=0)
    with pytest.raises(TypeError, match="sequence"):
        MinHasher().signatures("one text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"texts\[1\] is bytes"):
        MinHasher().signatures(["ok", b"raw bytes"])  # type: ignore[list-item]


@pytest.mark.realdata
def test_real_wikipedia_articles(shared_data) -> None:
    path = shared_data / "wikipedia" / "enwiki-extracted.DERIVED.wikiextractor.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    texts = [t for t in texts if len(t.split()) > 200][:40]
    assert len(texts) >= 20
    mh = MinHasher()
    sigs = mh.signatures(texts)
    for i in (0, len(texts) // 2, len(texts) - 1):
        np.testing.assert_array_equal(sigs[i], _datasketch_values(texts[i], 128, 1, "affine32"))
    # A re-formatted copy (case, punctuation, spacing) is the same document; a copy with a paragraph
    # appended is a near-duplicate; different articles are not candidates.
    ascii_upper = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    variant = " ,  ".join(texts[0].split()).translate(ascii_upper)
    longest = max(range(len(texts)), key=lambda i: len(texts[i]))
    extended = texts[longest] + "\n\nThis paragraph was appended to the article by a mirror site to look new."
    vsigs = mh.signatures([variant, extended])
    np.testing.assert_array_equal(vsigs[0], sigs[0])
    bands, rows = lsh_params(0.8)
    keys = band_keys_batch(sigs, bands, rows)
    assert _true_jaccard(texts[longest], extended) > 0.97
    assert set(band_keys(vsigs[1], bands, rows)) & set(keys[longest])
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            assert not set(keys[i]) & set(keys[j]), (i, j)


def test_minhash_normalisation_matches_its_translation_table_on_every_code_point() -> None:
    """The regex classes delete and space exactly what the table of the definition does: ASCII
    punctuation and Unicode P* deleted, Cc to a space, everything else kept."""
    import string
    import sys
    import unicodedata

    from filters.minhash import normalize_for_minhash

    table: dict[int, int | None] = {ord(c): None for c in string.punctuation}
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        if cat[0] == "P":
            table[cp] = None
        elif cat == "Cc":
            table[cp] = 0x20
    points = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    for start in range(0, len(points), 1 << 16):
        text = "a" + " x".join(points[start : start + (1 << 16)])
        nfd = unicodedata.normalize("NFD", text)
        assert normalize_for_minhash(text) == " ".join(nfd.translate(table).lower().split())


def test_word_hashes_depend_on_the_word_only(monkeypatch) -> None:
    """Equal words hash equal wherever they stand, across the steps a long text is cut into; 60k distinct
    random words give as many distinct hashes; an anagram or a word one byte longer hashes differently."""
    import random

    import filters.minhash as mh

    rng = random.Random(3)
    words = [bytes(rng.choice(b"abcdefgh") for _ in range(rng.randint(1, 7))) for _ in range(100_000)]
    text = b" ".join(words)
    whole = mh.word_hashes(text)
    monkeypatch.setattr(mh, "_WORD_BYTES_PER_STEP", 97)
    assert (mh.word_hashes(text) == whole).all()
    seen: dict[int, bytes] = {}
    for word, h in zip(words, whole.tolist(), strict=True):
        assert seen.setdefault(h, word) == word
    assert len(seen) == len(set(words)) > 40_000
    a, b, c = mh.word_hashes(b"listen silent listens").tolist()
    assert len({a, b, c}) == 3
    assert mh.word_hashes(b"").size == 0


def test_ascii_fast_path_equals_the_definition_on_every_ascii_character() -> None:
    """`_encode` takes `bytes.translate` for ASCII text: the same bytes as `normalize_for_minhash`."""
    from filters.minhash import _encode

    for cp in range(128):
        c = chr(cp)
        for text in (c, f"a{c}b", f" {c}X{c} ", c * 3, f"Word{c}\t{c}END"):
            assert text.isascii()
            assert _encode(text) == normalize_for_minhash(text).encode(), repr(text)


def _per_document_signature(mh: MinHasher, text: str) -> np.ndarray:
    """The vectorized scheme one document at a time (its definition, without the batch path)."""
    hv = np.frombuffer(mh._window_hashes(normalize_for_minhash(text).encode("utf-8", "surrogatepass")), "<u4")
    if not len(hv):
        return np.full(mh.num_perm, EMPTY_VALUE, dtype=np.uint64)
    return mh._permute(hv).min(axis=1).astype(np.uint64)


def test_batched_window_hashes_equal_the_per_document_definition() -> None:
    """A batch hashes the words of all its texts at once and combines windows over the joined words;
    every text still gets exactly its own windows: short, empty, 13-word, long, non-ASCII, long words."""
    rng = random.Random(5)
    alphabet = [chr(i) for i in range(128)] + ["é", "Σ", "—", "\u00a0", "\ue000", "🙂"]
    texts = list(MIXED) + ["", " ", "\n\n", "x" * 200 + " " + "y" * 70 + " tail"]
    for _ in range(600):
        words = rng.choice([0, 1, 3, 12, 13, 14, 40, 300])
        pool = alphabet if rng.random() < 0.3 else list("abcdefgh")
        texts.append(
            " ".join("".join(rng.choice(pool) for _ in range(rng.randint(0, 9))) for _ in range(words))
        )
    mh = MinHasher(shingle_hash="vectorized")
    batch = mh.signatures(texts)
    for text, row in zip(texts, batch, strict=True):
        np.testing.assert_array_equal(row, _per_document_signature(mh, text))


def test_word_hash_table_equals_the_mix_it_tabulates() -> None:
    """The first bytes of a word are mixed by table lookup, later ones computed: both are the same mix."""
    import filters.minhash as mh

    rng = random.Random(9)
    for _ in range(50):
        words = [
            bytes(rng.choice(b"abc\xc3\xa9") for _ in range(rng.choice([1, 5, 63, 64, 65, 200])))
            for _ in range(20)
        ]
        buf = np.frombuffer(b" ".join(words), dtype=np.uint8)
        expected = []
        for w in words:
            b = np.frombuffer(w, dtype=np.uint8).astype(np.uint64)
            pos = np.arange(len(w), dtype=np.uint64)
            total = mh._fmix64((pos << np.uint64(8) | b) ^ mh._WORD_SEED).sum(dtype=np.uint64)
            length = (
                np.array([len(w)], dtype=np.uint64) * mh._WINDOW_MULTIPLIER
            )  # wraps mod 2^64, as arrays do
            expected.append(mh._fmix64(total ^ length)[0])
        np.testing.assert_array_equal(mh._step_word_hashes(buf), np.array(expected, dtype=np.uint64))
