"""Real words and Common Crawl's record format, shared by the demo sample (`corral sample`) and the
synthetic corpora of the benchmarks (`benchmarks/synth.py`).

Words: the most frequent alphabetic words of wordfreq 3.1.1's `best` lists (code Apache-2.0, word
frequency data CC BY-SA 4.0; https://github.com/rspeer/wordfreq), drawn by their real frequency, in
sentences with capitals, commas and full stops. wordfreq is the `demo` extra (`pip install corral[demo]`;
`make demo` installs it).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

WORD_LIST = "wordfreq 3.1.1 'best' frequency lists (code Apache-2.0; data CC BY-SA 4.0, https://github.com/rspeer/wordfreq)"
#: ISO 639-1 (wordfreq) → ISO 639-3 as CC writes in WARC-Identified-Content-Language.
LANGS = {
    "en": "eng",
    "fr": "fra",
    "de": "deu",
    "es": "spa",
    "it": "ita",
    "pt": "por",
    "nl": "nld",
    "pl": "pol",
    "ru": "rus",
}
VOCAB_SIZE = 20000
_LUT_SIZE = 1 << 21
# wordfreq's English tokenizer splits contractions ("it's" → "it", "s"): those halves are not words.
_EN_FRAGMENTS = frozenset(
    {"s", "t", "d", "m", "ll", "re", "ve", "b", "c", "e", "f", "g", "h", "j", "k", "l"} | set("nopqruvwxyz")
)

# Token styles: a token is style * vocab.size + word index into `Vocab.table`.
PLAIN, CAP, STOP, CAPSTOP, COMMA = range(5)


@dataclass(frozen=True)
class Vocab:
    lang: str
    size: int
    cdf: np.ndarray  # cumulative frequency over the words, last = 1.0
    table: np.ndarray  # object array of 5 × size strings: plain, Capitalised, "word.", "Word.", "word,"
    lower: tuple[str, ...]
    lut: np.ndarray  # inverse CDF at 2^21 points: sampling is one gather (words rarer than 2^-21 merge)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.lut[rng.integers(0, _LUT_SIZE, n, dtype=np.uint32)].astype(np.int64)


@cache
def vocab(lang: str, size: int = VOCAB_SIZE) -> Vocab:
    """The `size` most frequent alphabetic words of wordfreq's list, weighted by their frequency.

    wordfreq's lists are buckets by centibel: every word in bucket i has frequency 10^(-i/100).
    """
    try:
        from wordfreq import get_frequency_list
    except ImportError:
        raise RuntimeError(
            "the demo sample and the synthetic corpora need wordfreq: pip install 'corral[demo]' "
            "(`make demo` installs it)"
        ) from None

    words: list[str] = []
    weights: list[float] = []
    seen: set[str] = set()
    for cb, bucket in enumerate(get_frequency_list(lang, wordlist="best")):
        for w in bucket:
            if w.isalpha() and w not in seen and not (lang == "en" and w in _EN_FRAGMENTS):
                seen.add(w)
                words.append(w)
                weights.append(10.0 ** (-cb / 100.0))
        if len(words) >= size:
            break
    words, weights = words[:size], weights[:size]
    if len(words) < 1000:
        raise RuntimeError(f"wordfreq's {lang!r} list has only {len(words)} alphabetic words")
    plain = ["I" if (lang == "en" and w == "i") else w for w in words]
    cap = [w[:1].upper() + w[1:] for w in words]
    table = np.array(
        plain + cap + [w + "." for w in plain] + [w + "." for w in cap] + [w + "," for w in plain],
        dtype=object,
    )
    cdf = np.cumsum(np.asarray(weights))
    cdf /= cdf[-1]
    points = (np.arange(_LUT_SIZE, dtype=np.float64) + 0.5) / _LUT_SIZE
    lut = np.minimum(np.searchsorted(cdf, points, side="right"), len(words) - 1).astype(np.uint16)
    return Vocab(lang, len(words), cdf, table, tuple(words), lut)


def prose(v: Vocab, rng: np.random.Generator, lengths: np.ndarray, title: int = 0) -> np.ndarray:
    """Tokens of consecutive lines of the given word counts: sentences of ~14 words, capitals, stops.

    With `title` > 0 the first `title` tokens are a Title Cased line (`lengths[0]` should be `title`).
    """
    return prose_lines(v, rng, lengths, np.arange(len(lengths)) == 0 if title else None)


def prose_lines(
    v: Vocab, rng: np.random.Generator, lengths: np.ndarray, titles: np.ndarray | None
) -> np.ndarray:
    """`prose` for many lines at once; lines where `titles` is true are Title Cased, without a stop."""
    n = int(lengths.sum())
    idx = v.sample(rng, n)
    u = rng.random(n)
    start = u < 1.0 / 14.0
    pos = np.flatnonzero(start)
    start[pos[np.diff(pos, prepend=-10) < 3]] = False  # no one- or two-word sentences (mostly)
    start[np.cumsum(lengths) % n] = True  # every line starts a sentence (n % n: the first)
    end = np.roll(start, -1)
    style = start + 2 * end.astype(np.int64)
    style[(u > 0.95) & (style == PLAIN)] = COMMA
    if titles is not None and titles.any():
        style[np.repeat(titles, lengths)] = CAP
    return style * v.size + idx


def warc_record(headers: list[tuple[str, str]], body: bytes) -> bytes:
    """One WARC/1.0 record: version line, headers, Content-Length, blank line, block, CRLF CRLF."""
    head = (
        "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("utf-8") + body + b"\r\n\r\n"


def conversion_record(url: str, date: str, record_id: str, refers_to: str, lang3: str, body: bytes) -> bytes:
    """A CC WET `conversion` record, headers in CC's order, WARC-Block-Digest as CC writes it."""
    digest = base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")
    return warc_record(
        [
            ("WARC-Type", "conversion"),
            ("WARC-Target-URI", url),
            ("WARC-Date", date),
            ("WARC-Record-ID", f"<urn:uuid:{record_id}>"),
            ("WARC-Refers-To", f"<urn:uuid:{refers_to}>"),
            ("WARC-Block-Digest", f"sha1:{digest}"),
            ("WARC-Identified-Content-Language", lang3),
            ("Content-Type", "text/plain"),
        ],
        body,
    )


def word_lines(lang: str, rng: np.random.Generator, lengths: list[int], title: bool = False) -> list[str]:
    """Lines of the given word counts in `lang`, words drawn by their real frequency (wordfreq)."""
    v = vocab(lang)
    arr = np.asarray(lengths, dtype=np.int64)
    tokens = prose(v, rng, arr, title=int(arr[0]) if title else 0)
    words = v.table[tokens].tolist()
    out, o = [], 0
    for n in lengths:
        out.append(" ".join(words[o : o + n]))
        o += n
    return out


def np_rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])
