"""The sample's StackExchange: a `Posts.xml` of a home-improvement site, in the dump's schema.

Questions (`PostTypeId="1"`: title, HTML body, tags, score) and answers (`PostTypeId="2"`, `ParentId`)
with scores from -3 to 60, so that sorting them as strings (RedPajama's bug) and as numbers differ;
answers appear before and after their question. Planted: tag-wiki posts (other post types), an answer
whose question is not in the file, a row without a score (a dead letter), and questions without answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from corral.sample.grammar import Deck, Slot, expand, paragraph, rng_for
from corral.sample.world import World

SITE = "diy.stackexchange.com"
PROBLEMS = [  # (problem, room, part, tags, tool, trade)
    ("a dripping tap", "kitchen", "washer", ("plumbing", "taps"), "adjustable spanner", "plumber"),
    ("a damp patch on the wall", "bedroom", "gutter", ("damp", "walls"), "moisture meter", "builder"),
    ("a squeaky floorboard", "hallway", "joist", ("flooring", "wood"), "drill", "carpenter"),
    (
        "a fuse that keeps tripping",
        "bathroom",
        "circuit breaker",
        ("electrical", "safety"),
        "socket tester",
        "electrician",
    ),
    (
        "a cold radiator",
        "living room",
        "bleed valve",
        ("heating", "radiators"),
        "radiator key",
        "heating engineer",
    ),
    ("a window that will not close", "attic", "hinge", ("windows", "wood"), "plane", "carpenter"),
    ("cracked tiles", "bathroom", "grout", ("tiles", "bathroom"), "grout saw", "tiler"),
    ("mould around the shower", "bathroom", "silicone sealant", ("mould", "bathroom"), "scraper", "builder"),
    ("a noisy boiler", "kitchen", "pump", ("heating", "boiler"), "multimeter", "heating engineer"),
    ("a sticking front door", "hallway", "door frame", ("doors", "wood"), "chisel", "carpenter"),
]
Q_TITLE = [
    "How do I fix {problem} in my {room}?",
    "What causes {problem} in (my|the) {room}?",
    "Is it safe to (repair|deal with) {problem} myself?",
    "(Best way|Cheapest way) to (stop|fix) {problem} in an old house?",
]
Q_BODY = [
    "I live in (an old|a 1930s|a stone) house in {town} and (the|our) {room} has {problem}.",
    "(It started|This began) (last winter|a few weeks ago|after the heating came on) and (it is getting worse|it comes and goes).",
    "I (have already|already) (looked at|replaced) the {part}, but (nothing changed|it only helped for a day).",
    "(I have|We have) a {tool} (and|but) (not much experience|no idea what I am doing).",
    "(Do I need to|Should I) (call a {trade}|get a {trade} in) or is this (a simple job|something I can do at the weekend)?",
    "(Any|All) (advice|suggestions) (would be|are) (appreciated|welcome).",
]
A_BODY = [
    "(The most likely cause|My first guess) is the {part}: it (is probably worn|has come loose|is failing).",
    "(I had|We had) (the same|exactly this) problem in (my|our) (flat|house) in {town2}, and (it turned out to be|the cause was) the {part}.",
    "(Turn off|Isolate) the (water|power|supply) (first|before you start), (and|then) (check|test) (it|everything) with a {tool}.",
    "(Do not|Don't) (use|try) (bleach|expanding foam|a hammer) (on it|here); it (will make it worse|only hides the problem).",
    "If none of that (works|helps), (call|get) a (qualified|registered) {trade}.",
    "(It|The job) (should take|takes) (about an hour|an afternoon|a weekend) and (costs|needs) (very little|a few pounds in parts).",
    "(Replacing|Fixing) the {part} is (easy|not hard) (with|if you have) a {tool}.",
]
STEPS = [
    "Turn off the supply at the main switch or stopcock.",
    "Take off the cover and look at the {part}.",
    "Clean everything and let it dry for a day.",
    "Fit the new {part} and check that it sits firmly.",
    "Turn the supply back on and check for a week.",
]


def _html(paras: list[str], steps: list[str] | None = None, link_to: int | None = None) -> str:
    out = [f"<p>{p}</p>" for p in paras]
    if steps:
        out.insert(1, "<ol>" + "".join(f"<li>{s}</li>" for s in steps) + "</ol>")
    if link_to is not None:
        out.append(f'<p>See also <a href="https://{SITE}/questions/{link_to}">this question</a>.</p>')
    return "\n".join(out)


def _row(**attrs: Any) -> str:
    return "  <row " + " ".join(f"{k}={quoteattr(str(v))}" for k, v in attrs.items() if v is not None) + " />"


def posts(w: World, seed: int, scale: float) -> tuple[list[str], dict[str, Any]]:
    n_q = max(20, round(150 * scale))
    towns = list(w.towns)
    rows: list[tuple[int, str]] = []
    planted: dict[str, Any] = {"questions": [], "no_answers": [], "answers": 0}
    next_id = 1
    for q in range(n_q):
        qrng = rng_for(seed, "se-q", q)
        problem, room, part, tags, tool, trade = PROBLEMS[q % len(PROBLEMS)]
        ctx: dict[str, Slot] = {
            "problem": problem,
            "room": room,
            "part": part,
            "tool": tool,
            "trade": trade,
            "town": towns[q % len(towns)],
            "town2": towns[(q * 7 + 3) % len(towns)],
        }
        deck = Deck(qrng)
        qid = next_id
        next_id += qrng.randint(1, 4)
        title = expand(qrng.choice(Q_TITLE), qrng, ctx)
        body = _html(
            [paragraph(Q_BODY, qrng, ctx, qrng.randint(2, 4), deck) for _ in range(qrng.randint(1, 3))]
        )
        n_a = 0 if q % 13 == 5 else qrng.randint(1, 5)
        created = f"20{qrng.randint(12, 23)}-{qrng.randint(1, 12):02d}-{qrng.randint(1, 28):02d}T{qrng.randint(0, 23):02d}:{qrng.randint(0, 59):02d}:{qrng.randint(0, 59):02d}.{qrng.randint(100, 999)}"
        answer_rows = []
        for a in range(n_a):
            aid = next_id
            next_id += qrng.randint(1, 3)
            steps = [expand(s, qrng, ctx) for s in STEPS] if qrng.random() < 0.3 else None
            abody = _html(
                [paragraph(A_BODY, qrng, ctx, qrng.randint(2, 5), deck) for _ in range(qrng.randint(1, 3))],
                steps,
                link_to=1 + (qid * 3) % max(1, qid) if qrng.random() < 0.1 else None,
            )
            score = (
                qrng.choice((-3, -1, 0, 1, 2, 3, 5, 8, 9, 10, 12, 21, 34, 60)) if a else qrng.randint(2, 60)
            )
            answer_rows.append(
                (
                    aid,
                    _row(
                        Id=aid,
                        PostTypeId=2,
                        ParentId=qid,
                        CreationDate=created,
                        Score=score,
                        Body=abody,
                        OwnerUserId=qrng.randint(2, 9000),
                        CommentCount=qrng.randint(0, 4),
                        ContentLicense="CC BY-SA 4.0",
                    ),
                )
            )
        rows.append(
            (
                qid,
                _row(
                    Id=qid,
                    PostTypeId=1,
                    AcceptedAnswerId=answer_rows[0][0] if answer_rows and qrng.random() < 0.6 else None,
                    CreationDate=created,
                    Score=qrng.randint(-2, 80),
                    ViewCount=qrng.randint(30, 90000),
                    Body=body,
                    OwnerUserId=qrng.randint(2, 9000),
                    Title=title,
                    Tags="".join(f"<{t}>" for t in tags),
                    AnswerCount=n_a,
                    CommentCount=qrng.randint(0, 6),
                    ContentLicense="CC BY-SA 4.0",
                ),
            )
        )
        for aid, row in answer_rows:
            # most answers follow their question; some come first (the dump is ordered by id, ids are not)
            rows.append((aid if qrng.random() < 0.8 else qid - 1, row))
        planted["questions"].append(f"{SITE}:{qid}")
        planted["answers"] += n_a
        if n_a == 0:
            planted["no_answers"].append(f"{SITE}:{qid}")
    for t, (tag_id, kind) in enumerate(((next_id, 4), (next_id + 1, 5), (next_id + 2, 4))):
        rows.append(
            (
                tag_id,
                _row(
                    Id=tag_id,
                    PostTypeId=kind,
                    CreationDate="2014-01-01T00:00:00.000",
                    Score=0,
                    Body=f"<p>Questions about {PROBLEMS[t][3][0]}.</p>",
                    ContentLicense="CC BY-SA 3.0",
                ),
            )
        )
    orphan = next_id + 3
    rows.append(
        (
            orphan,
            _row(
                Id=orphan,
                PostTypeId=2,
                ParentId=999_999,
                CreationDate="2020-01-01T00:00:00.000",
                Score=1,
                Body="<p>Answer to a question that was deleted.</p>",
                ContentLicense="CC BY-SA 4.0",
            ),
        )
    )
    rows.append(
        (
            orphan + 1,
            _row(
                Id=orphan + 1,
                PostTypeId=2,
                ParentId=1,
                CreationDate="2020-01-02T00:00:00.000",
                Body="<p>This row lost its score.</p>",
            ),
        )
    )
    rows.sort(key=lambda r: r[0])
    planted.update(other_post_types=3, orphan_answers=1, bad_rows=1)
    return [r for _, r in rows], planted


def write_stackexchange(w: World, out: Path, seed: int, scale: float) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rows, planted = posts(w, seed, scale)
    name = f"{SITE.removesuffix('.com')}.Posts.xml"
    xml = '<?xml version="1.0" encoding="utf-8"?>\n<posts>\n' + "\n".join(rows) + "\n</posts>\n"
    (out / name).write_text(xml, encoding="utf-8")
    planted["files"] = [name]
    return planted
