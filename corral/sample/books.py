"""The sample's books: plain-text novels in Project Gutenberg's layout (header, start/end markers, licence
footer), one of them a second edition of another (MinHash 0.9 removes it), one in French, one with the
older marker style and a byte-order mark.

The stories, headers and notices are generated here; the notices say so, and imitate the layout of a
Project Gutenberg eBook without reproducing its licence text.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path
from typing import Any

from corral.sample.grammar import Deck, Slot, paragraph, rng_for
from corral.sample.words import np_rng, word_lines
from corral.sample.world import FIRST_NAMES, World

NARRATIVE = [
    "{a} (walked|hurried|wandered) down to the (harbour|river|bridge|market) (before dawn|in the grey morning light|as the bells rang).",
    "The (wind|rain|fog) (came in|rolled in|swept in) from {sea}, and the (boats|gulls|fishermen) (stayed|kept) (close to shore|in the harbour).",
    "(For a long time|For a while) {a} (said nothing|did not answer|only looked at the water).",
    '"(We should|We must|I think we should) (leave|go back|wait) (before dark|until morning|for the tide)," said {b}.',
    '"(You always say that|Perhaps you are right|They will not come now)," (replied|answered|said) {a}, (smiling|without looking up|quietly).',
    "(The|Their) (house|cottage|shop) (stood|lay) at the end of a narrow lane, (above|behind|beside) the (old mill|church|river wall).",
    "(In the evenings|On Sundays|Every winter) the (family|two of them|whole street) (gathered|sat) (by the fire|in the kitchen|at the long table) and (talked of|remembered) {topic}.",
    "(It was|That was) the (summer|winter|year) (of the great flood|when the mill burned|when {b} went away), and (nothing|no one) (was|would ever be) quite the same (again|afterwards).",
    "{a} (thought of|remembered|could not forget) the (letter|promise|song) {b} had (left|made|sung) (years before|that last evening|in the spring).",
    "(Down in the valley|Across the river|Far below) the (lamps|lights|windows) of {town} (were lit one by one|shone faintly|went out one by one).",
    "(There was|They heard) a (knock|step|voice) at the door, and {b} (stood up|turned|went pale).",
    "(Outside|Beyond the window) the (snow|rain|dusk) (fell|settled|deepened) (softly|steadily) (on the fields|on the quiet town|on the water).",
    '"(Where have you been|What did he tell you|Did you see them)?" asked {b}.',
    '"(Nowhere|Nothing that matters|Only the ferryman)," said {a}, and (hung up the coat|sat down by the fire|looked away).',
    "The (road|path) to {town} (climbed|wound) (between|through) (stone walls|dark woods|wet fields), and {a} (walked|went on) (without stopping|more slowly now).",
    "(Old|Young) {c} (kept|ran) the (inn|ferry|bakery) (by the bridge|on the square|at the crossroads), and (knew|heard) (everything|every story) (that happened in the valley|before anyone else).",
    "(At the fair|On market day|At the church door) {a} (met|saw) {c} (again|for the first time in years), and (neither of them|both of them) (knew what to say|laughed).",
    "(The|A) (letter|parcel|message) (came|arrived) (on a Tuesday|in the spring|with the carrier), (and|but) {a} (did not open it|read it twice|put it away) (until evening|at once|for a week).",
    "(The|That) (night|evening) {b} (told|spoke of) (the|a) (story|secret) (that|which) (the family|no one) had (kept|spoken of) (for years|since the flood).",
    "(In the morning|By noon|Towards evening) the (river|tide|wind) had (risen|turned|dropped), and the (boats|carts|men) (went out|came back|set off) (again|at last).",
    "{a} (was|had been) (a clerk|a teacher|a carpenter|a seamstress|a ferryman's child) (in|at) {town}, (and|but) (wanted|had always wanted) (something more|to see the sea|a house of one's own).",
    "(No one|Nobody) in {town} (remembered|could say) (who had built|when they had built) the (old|stone) (tower|bridge|wall) (above the river|on the hill).",
    '"(I will come back|I shall write|Wait for me)," (said|whispered|promised) {b}, (and|but) {a} (only nodded|did not believe it|turned away).',
    "(Years later|Long afterwards|In old age) {a} would (say|remember) that (this|that) (was|had been) the (happiest|hardest|strangest) (time|season|year) of all.",
    "The (kitchen|room|shop) (smelled|was full) of (bread|wood smoke|apples|wet wool), and (the clock|a kettle|the cat) (ticked|sang|slept) (by the stove|on the shelf|in the window).",
    "(Somewhere|Far off) (a dog barked|a bell rang|a cart rattled over the stones), and (then|after that) (all was quiet|the street was still) (again|once more).",
]
TOPICS = (
    "the old days",
    "the war",
    "the ships that never came back",
    "the fair at midsummer",
    "their mother",
    "the harvest",
    "the winter of the great frost",
    "the mill",
)
CHAPTERS = (
    "The Harbour",
    "A Letter",
    "The Fair",
    "Winter",
    "The Ferry",
    "News from the City",
    "The Flood",
    "The Old Mill",
    "Spring",
    "The Return",
    "Night on the River",
    "The Market",
    "A Stranger",
    "The Bridge",
    "Last Light",
)
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV")
TITLES = (
    "The Salt Marsh",
    "Winter on the {river}",
    "The Ferryman's Daughter",
    "A House in {town}",
    "The Grey Sea",
    "Lamps of {town}",
)


def _wrap(text: str, width: int = 70) -> str:
    """Paragraphs hard-wrapped at about 70 columns, as Gutenberg's plain-text files are."""
    return "\n".join(textwrap.wrap(text, width=width, break_on_hyphens=False))


def _header(title: str, author: str, number: int, date: str, lang: str, old: bool) -> str:
    if old:
        return (
            f"The Project Gutenberg EBook of {title}, by {author}\n\n"
            "This eBook is for the use of anyone anywhere at no cost. It was generated for the\n"
            "corral demo sample and imitates the layout of an older Project Gutenberg text file.\n\n\n"
            f"Title: {title}\n\nAuthor: {author}\n\nRelease Date: {date} [EBook #{number}]\n\n"
            f"Language: {lang}\n\nCharacter set encoding: UTF-8\n\n"
            f"***START OF THE PROJECT GUTENBERG EBOOK {title.upper()}***\n"
        )
    return (
        f"The Project Gutenberg eBook of {title}, by {author}\n\n"
        "This eBook is for the use of anyone anywhere at no cost and with almost no\n"
        "restrictions whatsoever. It was generated for the corral demo sample: the story, this\n"
        "header and the notice at the end are not Project Gutenberg texts, only their layout is.\n\n"
        f"Title: {title}\n\nAuthor: {author}\n\nRelease Date: {date} [eBook #{number}]\n\n"
        f"Language: {lang}\n\nCredits: Produced by the corral sample generator\n\n\n"
        f"*** START OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***\n"
    )


def _footer(title: str, old: bool) -> str:
    end = (
        f"End of the Project Gutenberg EBook of {title}"
        if old
        else f"*** END OF THE PROJECT GUTENBERG EBOOK {title.upper()} ***"
    )
    notice = [
        "Updated editions of this file replace the previous one. This notice is the same in every",
        "book of the sample, which is why a corpus builder removes it together with the header:",
        "left in, it would be the most repeated passage of the whole corpus.",
        "",
        "START: FULL NOTICE",
        "",
        "THE FULL NOTICE OF THE CORRAL DEMO SAMPLE",
        "",
        "Section 1. The texts of this sample were generated from templates and word lists written",
        "for corral. Section 2. They imitate the layout of public-domain eBooks so that the reader",
        "for that format can be tested and shown at work. Section 3. No part of a real eBook or of",
        "its licence is reproduced here.",
    ]
    return "\n\n" + end + "\n\n" + "\n".join(notice) + "\n"


def novel(w: World, seed: int, index: int, chapters: int) -> tuple[str, str, str, list[str]]:
    """(title, author, body) of a generated novel; the body as Gutenberg paragraphs (blank-line separated)."""
    rng = rng_for(seed, "book", index)
    writers = [p for p in w.people.values() if p.occupation in ("poet", "historian")] or list(
        w.people.values()
    )
    author = writers[index % len(writers)]
    town = rng.choice(list(w.towns))
    title = TITLES[index % len(TITLES)].format(river=w.towns[town].river, town=town)
    cast = rng.sample(FIRST_NAMES, 4)
    ctx: dict[str, Slot] = {
        "a": cast[:2],
        "b": cast[1:3],
        "c": cast[2:],
        "topic": TOPICS,
        "town": town,
        "sea": ("the sea", "the Grey Sea", "the marshes", "the north"),
    }
    deck = Deck(rng)
    names = rng.sample(CHAPTERS, chapters)
    out = [
        title.upper(),
        f"by {author.name}",
        "CONTENTS",
        "\n".join(f"  CHAPTER {ROMAN[i]}. {n}" for i, n in enumerate(names)),
    ]
    for i, name in enumerate(names):
        out.append(f"CHAPTER {ROMAN[i]}.\n{name.upper()}")
        for _ in range(rng.randint(12, 18)):
            out.append(_wrap(paragraph(NARRATIVE, rng, ctx, rng.randint(3, 6), deck)))
    return title, author.name, "\n\n\n".join(out[:4]) + "\n\n\n" + "\n\n".join(out[4:]), names


def second_edition(body: str, seed: int) -> str:
    """The same book with about one word in a thousand changed (a corrected second edition)."""
    rng = random.Random(f"{seed}:second-edition")
    lines = body.split("\n")
    swaps = {"the": "that", "and": "but", "was": "had been", "old": "ancient", "said": "answered"}
    for i, line in enumerate(lines):
        words = line.split(" ")
        if len(words) > 6 and rng.random() < 0.06:
            j = rng.randrange(len(words))
            words[j] = swaps.get(words[j], words[j])
            lines[i] = " ".join(words)
    return "\n".join(lines)


def french_novel(seed: int, index: int) -> tuple[str, str, str]:
    rng = rng_for(seed, "book-fr", index)
    lengths = [rng.randint(50, 120) for _ in range(70)]
    paras = word_lines("fr", np_rng(seed, 705, index), lengths)
    body = "LA MAISON DU PASSEUR\n\n\npar Thea Marlow\n\n\n" + "\n\n".join(
        (f"CHAPITRE {ROMAN[k // 10]}.\n\n" if k % 10 == 0 else "") + _wrap(p) for k, p in enumerate(paras)
    )
    return "La Maison du passeur", "Thea Marlow", body


def write_books(w: World, out: Path, seed: int, scale: float) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    planted: dict[str, Any] = {"files": [], "kinds": {}}
    chapters = max(3, round(8 * scale))
    dates = ("March 3, 2021", "July 19, 2019", "January 8, 2023", "October 30, 2020", "May 2, 2022")
    first_body = ""
    for i in range(4):
        title, author, body, _ = novel(w, seed, i, chapters)
        number = 64001 + i * 37
        old = i == 3
        text = _header(title, author, number, dates[i], "English", old) + "\n\n" + body + _footer(title, old)
        name = f"pg{number}.txt"
        data = ("\ufeff" + text if old else text).encode("utf-8")
        (out / name).write_bytes(data)
        planted["files"].append(name)
        planted["kinds"].setdefault("old_style_bom" if old else "book", []).append(name)
        if i == 0:
            first_body, first = body, (title, author, number)
    title, author, number = first
    text = (
        _header(title + " (Second Edition)", author, number + 500, "June 1, 2024", "English", False)
        + "\n\n"
        + second_edition(first_body, seed)
        + _footer(title, False)
    )
    name = f"pg{number + 500}.txt"
    (out / name).write_bytes(text.encode("utf-8"))
    planted["files"].append(name)
    planted["kinds"]["second_edition"] = [name]
    planted["second_edition_of"] = f"pg{number}.txt"
    title, author, body = french_novel(seed, 0)
    text = (
        _header(title, author, 64999, "April 4, 2022", "French", False)
        + "\n\n"
        + body
        + _footer(title, False)
    )
    (out / "pg64999.txt").write_bytes(text.encode("utf-8"))
    planted["files"].append("pg64999.txt")
    planted["kinds"]["french"] = ["pg64999.txt"]
    return planted
