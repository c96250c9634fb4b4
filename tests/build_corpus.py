"""Small original corpora for the build tests: English-like pages from a word grammar, planted duplicates.

Used to (re)generate `tests/fixtures/build_*` (run `python tests/build_corpus.py`) and, in the tests,
to write larger synthetic corpora (e.g. one boilerplate line in every document) into a temp folder.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from pathlib import Path
from xml.sax.saxutils import escape

SUBJECTS = [
    "the river",
    "a small village",
    "the old bridge",
    "our team",
    "the local council",
    "every farmer",
    "the museum",
    "a young engineer",
    "the railway company",
    "the school",
    "many visitors",
    "the northern valley",
    "a group of students",
    "the city library",
    "the harbour",
]
VERBS = [
    "built",
    "visited",
    "described",
    "improved",
    "studied",
    "opened",
    "repaired",
    "protected",
    "celebrated",
    "measured",
    "painted",
    "planned",
    "documented",
    "supported",
    "explored",
]
OBJECTS = [
    "a new road",
    "the stone church",
    "the annual festival",
    "a wooden boat",
    "the ancient walls",
    "the summer market",
    "a long report",
    "the mountain path",
    "the public garden",
    "a music hall",
    "the water supply",
    "the first map of the region",
    "a collection of letters",
    "the grain mill",
]
TAILS = [
    "in the spring of that year",
    "after a long winter",
    "with help from the neighbours",
    "before the war began",
    "during the harvest",
    "for the first time",
    "over several decades",
    "because the old one had failed",
    "despite the heavy rain",
    "near the edge of the forest",
]

FRENCH = (
    "Le petit village se trouve au bord de la rivière, entre les collines et la forêt. Chaque été, les "
    "habitants organisent une grande fête sur la place du marché, avec de la musique et des repas partagés. "
    "La vieille église, construite au douzième siècle, attire de nombreux visiteurs qui viennent admirer "
    "ses vitraux. Les enfants vont à l'école du village le matin et jouent près du pont l'après-midi. "
    "Le conseil municipal a décidé de rénover la bibliothèque et de planter des arbres le long de la route."
)
MASH = (
    "qwpeoriu zmxncbv lkajsdhf poiuqwer mznxbcv asdlkfj qpwoeiru zxcmvnb alskdjf woeiruty xcvbnmz sldkfjg "
    "rutyeiwo cvbnxmz dkfjgls eiruqpwo vbncmxz fjgkdls iruqowep bnmzxcv jgkfdls ruqowepi nmzxcvb gkfjdls "
)


def sentence(rng: random.Random) -> str:
    s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}."
    return s[0].upper() + s[1:]


def paragraph(rng: random.Random, n: int) -> str:
    return " ".join(sentence(rng) for _ in range(n))


def page_title(url: str) -> str:
    """A page title from its URL (cc_net reads the first content line of a WET record as the title)."""
    return url.rstrip("/").rsplit("/", 1)[-1].replace("-", " ").replace("_", " ").title() + " | Example"


def wet_record(url: str, text: str) -> bytes:
    body = (page_title(url) + "\n" + text).encode("utf-8")
    head = (
        "WARC/1.0\r\nWARC-Type: conversion\r\n"
        f"WARC-Target-URI: {url}\r\nWARC-Date: 2024-01-01T00:00:00Z\r\n"
        f"WARC-Record-ID: <urn:uuid:{int(hashlib.sha1(url.encode()).hexdigest()[:12], 16) % 10**12:012d}-0000-0000-0000-000000000000>\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("ascii")
    return head + body + b"\r\n\r\n"


BOILERPLATE = [
    "Copyright 2024 Example Network. All rights reserved.",
    "Subscribe to our newsletter for weekly updates.",
]


def cc_pages(seed: int = 7) -> list[tuple[str, str]]:
    """(url, text) pages: 8 English pages with two boilerplate lines, a near-duplicate pair, French, mash, short."""
    rng = random.Random(seed)
    pages = []
    for i in range(8):
        lines = [paragraph(rng, 4), BOILERPLATE[0], paragraph(rng, 5), BOILERPLATE[1], paragraph(rng, 3)]
        pages.append((f"http://example.org/page{i}", "\n".join(lines)))
    long_para = paragraph(rng, 40)
    pages.append(("http://news.example.com/story", long_para + " The end of the story."))
    pages.append(("http://mirror.example.net/story", long_para + " The end of the tale."))
    pages.append(("http://exemple.fr/village", FRENCH))
    mash = " ".join(f"the {w} of" for w in (MASH * 3).split())
    pages.append(("http://spam.example.biz/x", mash))
    pages.append(("http://example.org/short", "Too short to keep."))
    return pages


def write_wet(path: Path, pages: list[tuple[str, str]]) -> None:
    path.write_bytes(b"".join(wet_record(u, t) for u, t in pages))


def wiki_xml(pages: list[tuple[int, str, str]], dbname: str = "enwiki") -> bytes:
    out = [
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" xml:lang="en">',
        f"<siteinfo><sitename>Test</sitename><dbname>{dbname}</dbname><namespaces>"
        '<namespace key="0" case="first-letter" /></namespaces></siteinfo>',
    ]
    for pid, title, text in pages:
        out.append(
            f"<page><title>{escape(title)}</title><ns>0</ns><id>{pid}</id><revision><id>{pid}00</id>"
            f'<timestamp>2024-01-01T00:00:00Z</timestamp><text xml:space="preserve">{escape(text)}</text>'
            "</revision></page>"
        )
    out.append("</mediawiki>")
    return "\n".join(out).encode("utf-8")


def wiki_pages(n: int = 60, seed: int = 11) -> list[tuple[int, str, str]]:
    rng = random.Random(seed)
    return [(i + 1, f"Article {i + 1}", "\n\n".join(paragraph(rng, 5) for _ in range(3))) for i in range(n)]


def noisy_line(rng: random.Random, n: int = 12) -> str:
    """Random letter strings: what list/table debris does to an article's perplexity."""
    return " ".join(
        "".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(rng.randint(3, 8))) for _ in range(n)
    )


def wiki_pages_mixed(
    n: int = 60, seed: int = 13, cite: list[str] | None = None
) -> list[tuple[int, str, str]]:
    """Articles like real Wikipedia: half clean prose, half with debris lines; the first few cite `cite` URLs.

    The debris puts the p60 cut-off above clean prose, as tables and lists do in a real dump.
    """
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        paras = [paragraph(rng, 5) for _ in range(3)]
        if i % 2:
            paras.insert(1, noisy_line(rng))
        text = "\n\n".join(paras)
        if cite and i < len(cite):
            text += f"<ref>[{cite[i]} A source]</ref>"
        pages.append((i + 1, f"Article {i + 1}", text))
    return pages


def c4_records(n: int = 6, seed: int = 21) -> list[dict]:
    """C4-style JSON records: prose that passes the C4 rules, plus one 'lorem ipsum' page they drop."""
    rng = random.Random(seed)
    recs = [
        {"text": "\n".join(paragraph(rng, 3) for _ in range(3)), "url": f"https://c4.example/{i}",
         "timestamp": "2019-04-20T00:00:00Z"}
        for i in range(n)
    ]  # fmt: skip
    recs.append(
        {
            "text": "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 5,
            "url": "https://c4.example/l",
        }
    )
    return recs


GITHUB_CODE = """def add(a, b):
    \"\"\"Return the sum of two numbers.\"\"\"
    return a + b


def mean(values):
    \"\"\"Arithmetic mean of a non-empty list.\"\"\"
    return sum(values) / len(values)
"""


def github_records() -> list[dict]:
    """Two MIT-licensed Python files (one an exact copy) and one GPL file the licence filter drops."""
    meta = {"repo_name": "corral/example", "language": "Python", "license": "mit"}
    return [
        {"text": GITHUB_CODE, "meta": {**meta, "path": "src/maths.py"}},
        {"text": GITHUB_CODE, "meta": {**meta, "path": "vendor/maths.py"}},
        {
            "text": GITHUB_CODE.replace("add", "plus"),
            "meta": {**meta, "path": "gpl/x.py", "license": "gpl-3.0"},
        },
    ]


def main() -> None:
    fixtures = Path(__file__).resolve().parent / "fixtures"
    fixtures.mkdir(exist_ok=True)
    write_wet(fixtures / "build_cc.warc.wet", cc_pages())
    (fixtures / "build_enwiki.xml").write_bytes(wiki_xml(wiki_pages()))
    whole = gzip.compress(b"".join(wet_record(u, t) for u, t in cc_pages(seed=99)[:3]), mtime=0)
    (fixtures / "build_cc_truncated.warc.wet.gz").write_bytes(whole[: len(whole) * 2 // 3])
    for name, recs in (("build_c4.jsonl", c4_records()), ("build_github.jsonl", github_records())):
        (fixtures / name).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))


if __name__ == "__main__":
    main()
