"""The sample's web text: Common Crawl WET files and C4 JSON lines, with what the filters must find planted.

Common Crawl (`commoncrawl/*.warc.wet.gz`, CC's format: a `warcinfo` record, then one `conversion`
record per page, each record its own gzip member, the page title as the first line of its block):

- sites with navigation and footer lines on every page (line dedup removes them);
- English pages in several registers: reference pages about the world's places and people (three in
  four cited by the Wikipedia articles: the wiki-ref classifier's positives), tourist-board pages (words
  Wikipedia uses, so a low perplexity, but not reference material: the classifier drops them), news,
  travel blogs, forums, shops, recipes; then keyword spam, word salad and keyboard mash (the perplexity
  tail);
- pages in French, German, Spanish, Russian and Italian, and bus timetables that no language is sure of
  (language ID);
- short pages (< 300 characters), exact mirrors (every line in two documents: line dedup empties both),
  near-duplicate clusters (a reference page syndicated on 2-4 sites, each copy with a word added where
  its paragraphs meet, so no line repeats and MinHash has to find them: J ≈ 0.95), chains A~B~C
  (J(A,B) ≈ J(B,C) ≈ 0.88, J(A,C) ≈ 0.77: one connected component), a title-only and an empty record.

C4 (`c4/c4-train.*.json.gz`, `{"text", "timestamp", "url"}` lines as the c4/en files): pages with lines
that the C4 rules remove (navigation without an end mark, JavaScript and cookie notices, a word over
1,000 characters, citation markers) and pages they drop (lorem ipsum, a curly bracket, too few sentences,
nothing left, over 190,000 characters), exact copies (line dedup), and non-English pages (language ID).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import random
import uuid
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from corral.sample import words as wet_format
from corral.sample.english import (
    BLOG,
    REFERENCE_FRAME,
    TOWN_CULTURE,
    TOWN_HISTORY,
    TOWN_TOURISM,
    fact_paragraphs,
    keyboard_mash,
    spam_lines,
    town_ctx,
    web_ctx,
    web_paragraphs,
)
from corral.sample.grammar import Deck, expand, plain, rng_for, sentences
from corral.sample.words import np_rng, word_lines
from corral.sample.world import FIRST_NAMES, SURNAMES, World

CRAWL = "CC-MAIN-2024-22"
_CRAWL_START = dt.datetime(2024, 5, 17, tzinfo=dt.UTC)
FOREIGN = {"fr": 25, "de": 25, "es": 20, "ru": 15, "it": 15}
FOREIGN_NAV = {
    "fr": (
        ["Accueil | Actualités | Contact", "Aller au contenu principal"],
        ["Mentions légales | Politique de confidentialité", "Tous droits réservés."],
    ),
    "de": (
        ["Startseite | Aktuelles | Kontakt", "Zum Inhalt springen"],
        ["Impressum | Datenschutz", "Alle Rechte vorbehalten."],
    ),
    "es": (
        ["Inicio | Noticias | Contacto", "Saltar al contenido"],
        ["Aviso legal | Política de privacidad", "Todos los derechos reservados."],
    ),
    "ru": (
        ["Главная | Новости | Контакты", "Перейти к содержимому"],
        ["Политика конфиденциальности", "Все права защищены."],
    ),
    "it": (
        ["Home | Notizie | Contatti", "Vai al contenuto"],
        ["Note legali | Privacy", "Tutti i diritti riservati."],
    ),
}
_TLDS = ("com", "org", "net", "info", "co.uk", "com", "org")


@dataclass
class Site:
    host: str
    name: str
    register: str
    nav: list[str]
    foot: list[str]
    lang: str = "en"


@dataclass
class WebPage:
    """One crawled page: the title line, the site's navigation, content lines, the site's footer."""

    url: str
    title: str
    lines: list[str]
    site: Site | None
    lang: str
    kind: str
    entity: tuple[str, str] | None = None
    cited: bool = False
    group: int | None = None  # planted group (exact copies, near-duplicate cluster, chain)

    def body(self) -> str:
        nav = self.site.nav if self.site else []
        foot = self.site.foot if self.site else []
        return "\n".join([self.title, *nav, *self.lines, *foot])


@dataclass
class CrawlPlan:
    pages: list[WebPage] = field(default_factory=list)
    cited: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # entity → cited URLs
    chain_jaccard: list[list[float]] = field(default_factory=list)  # [J(A,B), J(B,C), J(A,C)] per chain
    chain_pairs: list[list[tuple[int, int]]] = field(
        default_factory=list
    )  # LSH candidate pairs (A=0, B=1, C=2)
    cluster_jaccard: list[float] = field(default_factory=list)


def _slug(text: str) -> str:
    return (
        "-".join("".join(ch for ch in w.lower() if ch.isalnum()) for w in text.split()).strip("-") or "page"
    )


def _count(n: int, scale: float, least: int) -> int:
    return max(least, round(n * scale))


# ------------------------------------------------------------------------------------------------ sites

NAV_CHOICES = [
    "Skip to main content",
    "Home | News | Sport | What's On | Contact",
    "Menu",
    "Search",
    "Log in",
    "Home | About | Archive | Contact",
    "Subscribe",
    "Home | Shop | Delivery | FAQ | Basket",
]
FOOT_CHOICES = [
    "© 2024 {name}. All rights reserved.",
    "Privacy Policy | Terms of Use | Cookie Settings",
    "Follow us on Facebook, Twitter and Instagram",
    "Back to top",
    "Share this:",
    "{name} is registered in Valdoria, company no. {num}.",
    "Powered by WordPress",
    "Leave a Reply",
    "Your email address will not be published. Required fields are marked *",
]


def _site(rng: random.Random, host: str, name: str, register: str) -> Site:
    nav = rng.sample(NAV_CHOICES, rng.randint(1, 3))
    foot = [
        f.format(name=name, num=rng.randint(100000, 999999))
        for f in rng.sample(FOOT_CHOICES, rng.randint(2, 4))
    ]
    if register == "forum":
        foot.insert(0, "Reply | Quote | Report post")
    if register == "shop":
        nav.append("Add to basket")
    return Site(host, name, register, nav, foot)


def _sites(w: World, seed: int, register: str, n: int) -> list[Site]:
    rng = rng_for(seed, "sites", register)
    towns = list(w.towns)
    regions = list(w.regions)
    out: list[Site] = []
    hosts: set[str] = set()
    while len(out) < n:
        town, region = rng.choice(towns), rng.choice(regions)
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        name, stem = {
            "reference": (f"{region} Heritage Trust", f"{region}heritage"),
            "news": (f"{town} Gazette", f"{town}gazette"),
            "blog": (f"{first}'s Travels", f"{first}{last}travels"),
            "forum": (f"{region} Travellers Forum", f"forum.{region}travellers"),
            "shop": (f"{town} Goods", f"shop.{town}goods"),
            "recipe": (f"{first}'s Kitchen", f"{first}{last}kitchen"),
            "spam": (f"Cheap {town} Hotels", f"cheap-{town}-hotels"),
            "mirror": (f"{town} News Today", f"{town}newstoday"),
            "tourism": (f"Visit {town}", f"visit{town}"),
            "salad": (f"{last} Articles", f"{last}-articles-{rng.randint(1, 99)}"),
        }[register]
        host = f"{'www.' if rng.random() < 0.5 and not stem.count('.') else ''}{stem.lower()}.{rng.choice(_TLDS)}"
        if register in ("spam", "salad"):
            host = host.replace("www.", "").replace(".org", ".info").replace(".co.uk", ".biz")
        if host in hosts:
            continue
        hosts.add(host)
        out.append(_site(rng, host, name, register))
    return out


# -------------------------------------------------------------------------------------------- pages


def _reference_page(w: World, seed: int, i: int, site: Site, kind: str, name: str, long: int = 0) -> WebPage:
    """A reference page about one entity; `long` > 0: that many paragraphs of 12-14 sentences."""
    rng = rng_for(seed, "cc-reference", i)
    n, per = (long, (12, 14)) if long else (rng.randint(5, 7), (4, 6))
    paras = [plain(p) for p in fact_paragraphs(w, kind, name, rng, n, per)]
    region = w.towns[name].region if kind == "town" else site.name.split(" Heritage")[0]
    capital = w.regions[region].capital if region in w.regions else next(iter(w.towns))
    frame = expand(rng.choice(REFERENCE_FRAME), rng, {"subject_plain": name, "capital_plain": capital})
    paras[0] = f"{frame} {paras[0]}"
    label = {
        "town": "History of {}",
        "person": "{}: life and work",
        "river": "The River {}",
        "species": "The {}",
        "org": "{}: a history",
    }[kind].format(name)
    path = {"town": "towns", "person": "people", "river": "rivers", "species": "nature", "org": "industry"}[
        kind
    ]
    url = f"https://{site.host}/{path}/{_slug(name)}/"
    return WebPage(url, f"{label} | {site.name}", paras, site, "en", "reference", (kind, name))


def _register_page(w: World, seed: int, register: str, i: int, site: Site, long: int = 0) -> WebPage:
    """A page of one register; `long` > 0: that many paragraphs of 8-10 sentences (syndicated stories)."""
    rng = rng_for(seed, "cc", register, i)
    ctx = web_ctx(w, rng)
    town = str(ctx["town"])
    if register == "forum":
        lines = [" ".join(web_paragraphs("forum", ctx, rng, 1, (1, 3))) for _ in range(rng.randint(4, 9))]
        title = f"{rng.choice(('Best time to visit', 'Getting to', 'Things to do in', 'Parking in'))} {town}?"
    elif register == "recipe":
        dish = rng.choice(
            ("apple cake", "leek soup", "fish pie", "oat biscuits", "cheese tart", "honey bread")
        )
        title = f"{town} {dish}"
        intro = web_paragraphs("blog", ctx, rng, 1, (2, 3))
        steps = web_paragraphs("recipe", ctx, rng, rng.randint(3, 5), (1, 2))
        amounts = rng.sample(
            (
                "200 g flour",
                "100 g butter",
                "4 apples",
                "2 onions",
                "150 ml cream",
                "3 eggs",
                "2 tbsp honey",
                "1 tsp salt",
                "500 g potatoes",
                "1 leek",
            ),
            4,
        )
        lines = [*intro, "Ingredients", *amounts, "Method", *steps]
    else:
        n = long or rng.randint(4, 6)
        per = (10, 13) if long else (3, 5)
        lines = web_paragraphs(register, ctx, rng, n, per)
        title = {
            "news": f"{town}: {rng.choice(('council news', 'flood warning', 'weekend round-up', 'sport', 'local news'))}",
            "blog": f"{rng.choice(('A weekend in', 'Three days in', 'Why we loved', 'Rainy days in'))} {town}",
            "shop": f"{str(ctx['product']).title()} - {town}",
        }[register]
    lines = [plain(x) for x in lines]
    url = {
        "news": f"https://{site.host}/news/2024/05/{_slug(title)}-{i}",
        "blog": f"https://{site.host}/2023/{rng.randint(1, 12):02d}/{_slug(title)}/",
        "forum": f"https://{site.host}/t/{_slug(title)}/{1000 + i}",
        "shop": f"https://{site.host}/products/{_slug(title)}-{i}",
        "recipe": f"https://{site.host}/recipes/{_slug(title)}",
    }[register]
    return WebPage(url, f"{title} | {site.name}", lines, site, "en", register)


def _tourism_page(w: World, seed: int, i: int, site: Site) -> WebPage:
    """A tourist board's page: the town's history told with its sights, in words Wikipedia also uses (low
    perplexity) but not a page Wikipedia would cite (the wiki-ref classifier's target)."""
    rng = rng_for(seed, "cc-tourism", i)
    town = site.name.removeprefix("Visit ")
    ctx = town_ctx(w, w.towns[town])
    deck = Deck(rng)
    lines = []
    for _ in range(rng.randint(4, 6)):
        sents = [
            *sentences(TOWN_TOURISM, rng, ctx, rng.randint(2, 3), deck),
            *sentences(TOWN_HISTORY + TOWN_CULTURE, rng, ctx, rng.randint(2, 3), deck),
        ]
        rng.shuffle(sents)
        lines.append(plain(" ".join(sents)))
    title = f"{rng.choice(('Discover', 'Explore', 'Welcome to', 'Things to do in'))} {town}"
    return WebPage(
        f"https://{site.host}/{_slug(title)}-{i}/", f"{title} | {site.name}", lines, site, "en", "tourism"
    )


def _spam_page(w: World, seed: int, i: int, site: Site) -> WebPage:
    rng = rng_for(seed, "cc-spam", i)
    town = rng.choice(list(w.towns))
    lines = spam_lines(town, rng, rng.randint(4, 8))
    return WebPage(
        f"http://{site.host}/{_slug(town)}-hotels-{i}.html",
        f"Cheap {town} Hotels - Best Deals",
        lines,
        site,
        "en",
        "spam",
    )


def _salad_page(seed: int, i: int, site: Site) -> WebPage:
    """Word salad: English words by their real frequency, no grammar (auto-generated spam content)."""
    rng = rng_for(seed, "cc-salad", i)
    lengths = [rng.randint(6, 10)] + [rng.randint(40, 110) for _ in range(rng.randint(3, 6))]
    title, *lines = word_lines("en", np_rng(seed, 701, i), lengths, title=True)
    return WebPage(f"https://{site.host}/{_slug(title)}-{i}/", title, lines, site, "en", "salad")


def _mash_page(w: World, seed: int, i: int, site: Site) -> WebPage:
    """Keyboard mash with English glue words, so that language ID says English and perplexity decides."""
    rng = rng_for(seed, "cc-mash", i)
    glue = ("the", "and", "of", "to", "in", "for", "with", "is", "this", "that", "you", "we")
    lines = []
    for _ in range(rng.randint(3, 5)):
        mash = keyboard_mash(rng, rng.randint(30, 60)).split()
        lines.append(" ".join(f"{m} {rng.choice(glue)}" if k % 2 else m for k, m in enumerate(mash)))
    return WebPage(f"http://{site.host}/p/{i}", f"Welcome to {site.name}", lines, site, "en", "mash")


def _foreign_page(seed: int, lang: str, i: int, site: Site) -> WebPage:
    rng = rng_for(seed, "cc-foreign", lang, i)
    lengths = [rng.randint(4, 8)] + [rng.randint(40, 120) for _ in range(rng.randint(3, 6))]
    title, *lines = word_lines(lang, np_rng(seed, 702, list(FOREIGN).index(lang), i), lengths, title=True)
    return WebPage(
        f"https://{site.host}/{_slug(title)}-{i}.html", title, lines, site, lang, f"foreign_{lang}"
    )


def _timetable_page(w: World, seed: int, i: int, site: Site) -> WebPage:
    """Bus times: town names and clock times, few words any language model claims."""
    rng = rng_for(seed, "cc-timetable", i)
    stops = rng.sample(list(w.towns), 6)
    lines = []
    for _ in range(rng.randint(10, 16)):
        h, m = rng.randint(5, 22), rng.choice((0, 5, 15, 20, 35, 45, 50))
        row = []
        for s in stops:
            row.append(f"{h:02d}:{m:02d} {s}")
            m += rng.randint(6, 19)
            h, m = h + m // 60, m % 60
        lines.append(" ".join(row))
    route = rng.randint(1, 99)
    return WebPage(
        f"https://{site.host}/timetables/route-{route}-{i}",
        f"Route {route} {stops[0]} - {stops[-1]}",
        lines,
        site,
        "en",
        "timetable",
    )


SHORT_TEXTS = [
    ("404 Not Found", ["The page you requested could not be found.", "Return to the home page."]),
    ("Access denied", ["You do not have permission to view this page."]),
    ("Coming soon", ["Our new website is under construction.", "Please check back later."]),
    ("This domain is for sale", ["Contact the owner for an offer."]),
    ("Log in", ["Please log in to continue.", "Forgot your password?"]),
]


def _short_page(seed: int, i: int) -> WebPage:
    rng = rng_for(seed, "cc-short", i)
    title, lines = SHORT_TEXTS[i % len(SHORT_TEXTS)]
    host = f"{rng.choice(SURNAMES).lower()}{rng.randint(1, 999)}.{rng.choice(_TLDS)}"
    return WebPage(f"http://{host}/{_slug(title)}", title, list(lines), None, "en", "short")


# ---------------------------------------------------------------------------------- near duplicates

END_INSERTS = [
    " today.",
    " again.",
    " locally.",
    " too.",
    " recently.",
    " once.",
    " there.",
    " since.",
    " still.",
    " then.",
]
START_INSERTS = [
    "Meanwhile, ",
    "Locally, ",
    "Also, ",
    "Still, ",
    "Now ",
    "However, ",
    "Here ",
    "Again, ",
    "Indeed, ",
    "Later, ",
]


# J(A,B) and J(B,C) of a chain A~B~C (at most): near LSH's 0.8 threshold, so J(A,C) lands near 0.78.
CHAIN_TARGET = 0.895


def _join_edit(lines: list[str], i: int, k: int) -> None:
    """Add a word at the join of lines i and i+1 (variant k): both lines change, the text still reads."""
    _end_edit(lines, i, k)
    _start_edit(lines, i + 1, k)


def _end_edit(lines: list[str], i: int, k: int) -> None:
    if lines[i].endswith("."):
        lines[i] = lines[i][:-1] + END_INSERTS[k % len(END_INSERTS)]
    else:
        lines[i] += END_INSERTS[k % len(END_INSERTS)]


def _start_edit(lines: list[str], i: int, k: int) -> None:
    lines[i] = START_INSERTS[k % len(START_INSERTS)] + lines[i][:1].lower() + lines[i][1:]


def edit_every_line(lines: list[str], k: int, parity: int) -> list[str]:
    """A copy in which every line differs (line dedup must not remove shared lines) at the least cost in
    13-word shingles: words added where two lines meet (one edit changes both), and at the very start or
    end of the text (an edit there changes a single shingle). `parity` picks which joins, so two copies
    made with different parities share no edit site; `k` picks the words."""
    out = list(lines)
    i = 0
    if parity == 0:
        _start_edit(out, 0, k)
        i = 1
    while i + 1 < len(out):
        _join_edit(out, i, k)
        i += 2
    if i == len(out) - 1:
        _end_edit(out, i, k)
    return out


def _jaccard(a: list[str], b: list[str]) -> float:
    from filters.minhash import shingles

    sa, sb = set(shingles("\n".join(a))), set(shingles("\n".join(b)))
    return round(len(sa & sb) / len(sa | sb), 4)


@lru_cache(maxsize=1)
def _recipe_minhash() -> tuple[Any, int, int]:
    from filters.minhash import MinHasher, lsh_params
    from manifests.schema import RECIPES, MinHashSettings

    mh = MinHashSettings(**RECIPES["wet"]["minhash"])
    hasher = MinHasher(num_perm=mh.num_perm, ngram=mh.ngram, seed=mh.seed, shingle_hash=mh.shingle_hash)
    return hasher, *lsh_params(mh.threshold, mh.num_perm)


def lsh_pairs(docs: list[list[str]]) -> set[tuple[int, int]]:
    """The pairs (i, j) of documents (as content lines) that share a MinHash LSH band under the `wet`
    recipe's settings: the candidate pairs the build's near-dedup joins into clusters."""
    from filters.minhash import band_digests

    hasher, bands, rows = _recipe_minhash()
    keys = [set(k) for k in band_digests(hasher.signatures(["\n".join(d) for d in docs]), bands, rows)]
    return {(i, j) for i in range(len(docs)) for j in range(i + 1, len(docs)) if keys[i] & keys[j]}


def _interior_edit(lines: list[str], rng: random.Random, k: int) -> None:
    """Insert a short phrase after a sentence inside a random line."""
    li = rng.randrange(len(lines))
    parts = lines[li].split(". ")
    if len(parts) < 3:
        return
    j = rng.randrange(1, len(parts) - 1)
    parts[j] = parts[j] + END_INSERTS[(k + 3) % len(END_INSERTS)].rstrip(".")
    lines[li] = ". ".join(parts)


# ------------------------------------------------------------------------------------------------- plan


def plan_crawl(w: World, seed: int, scale: float = 1.0) -> CrawlPlan:
    """Every page of the crawl, in a seeded order; which entity pages the Wikipedia articles cite."""
    plan = CrawlPlan()
    rng = rng_for(seed, "crawl")
    n = {
        "reference": _count(300, scale, 70),
        "news": _count(160, scale, 20),
        "blog": _count(100, scale, 15),
        "forum": _count(45, scale, 8),
        "shop": _count(45, scale, 8),
        "recipe": _count(40, scale, 8),
        "spam": _count(25, scale, 6),
        "salad": _count(25, scale, 6),
        "mash": _count(12, scale, 4),
        "tourism": _count(30, scale, 6),
    }
    sites = {r: _sites(w, seed, r, max(2, n[r] // 5)) for r in n if r not in ("salad", "mash")}
    sites["salad"] = _sites(w, seed, "salad", max(2, n["salad"] // 5))
    sites["mash"] = sites["spam"]
    sites["mirror"] = _sites(w, seed, "mirror", 4)
    pages = plan.pages
    # reference pages: every entity kind, towns most; a fixed share is cited by the articles
    entities = w.entities()
    rng.shuffle(entities)
    ref_sites = sites["reference"]
    for i in range(n["reference"]):
        kind, name = entities[i % len(entities)]
        page = _reference_page(w, seed, i, ref_sites[i % len(ref_sites)], kind, name)
        page.cited = i % 4 != 3  # 75%: P(wiki) of most reference pages stays above RedPajama's 0.25
        if page.cited:
            plan.cited.setdefault((kind, name), []).append(page.url)
        pages.append(page)
    for register in ("news", "blog", "forum", "shop", "recipe"):
        for i in range(n[register]):
            pages.append(_register_page(w, seed, register, i, sites[register][i % len(sites[register])]))
    for i in range(n["tourism"]):
        pages.append(_tourism_page(w, seed, i, sites["tourism"][i % len(sites["tourism"])]))
    for i in range(n["spam"]):
        pages.append(_spam_page(w, seed, i, sites["spam"][i % len(sites["spam"])]))
    for i in range(n["salad"]):
        pages.append(_salad_page(seed, i, sites["salad"][i % len(sites["salad"])]))
    for i in range(n["mash"]):
        pages.append(_mash_page(w, seed, i, sites["mash"][i % len(sites["mash"])]))
    for lang, k in FOREIGN.items():
        nav, foot = FOREIGN_NAV[lang]
        tld = {"fr": "fr", "de": "de", "es": "es", "ru": "ru", "it": "it"}[lang]
        lsites = [
            Site(f"www.{rng.choice(SURNAMES).lower()}{j}.{tld}", lang, "foreign", nav, foot, lang)
            for j in range(3)
        ]
        for i in range(_count(k, scale, 3)):
            pages.append(_foreign_page(seed, lang, i, lsites[i % 3]))
    tt_site = _site(rng_for(seed, "timetables"), "www.valdoria-buses.com", "Valdoria Buses", "news")
    for i in range(_count(8, scale, 3)):
        pages.append(_timetable_page(w, seed, i, tt_site))
    for i in range(_count(20, scale, 5)):
        pages.append(_short_page(seed, i))
    group = 0
    # exact mirrors: a news or blog page copied whole onto an aggregator site
    for g in range(_count(12, scale, 3)):
        src = _register_page(
            w, seed, "news" if g % 2 else "blog", 10_000 + g, sites["news" if g % 2 else "blog"][g % 3]
        )
        src.kind, src.group = "exact", group
        pages.append(src)
        for c in range(1 + (g % 3 == 0)):
            mirror = sites["mirror"][(g + c) % len(sites["mirror"])]
            pages.append(
                WebPage(
                    f"https://{mirror.host}/story/{_slug(src.title)}-{c}",
                    src.title.split(" | ")[0] + f" | {mirror.name}",
                    list(src.lines),
                    mirror,
                    "en",
                    "exact",
                    group=group,
                )
            )
        group += 1
    # near-duplicate clusters: a long reference page syndicated on 2-4 heritage sites, each copy edited at
    # the joins of its paragraphs (so no line repeats and line dedup leaves the copies to MinHash). About
    # people and rivers that a cited page is about too: the wiki-ref classifier runs before MinHash, and
    # pages about towns share their words with the news (negatives), so more of those would not reach it.
    subjects = [e for e in w.entities() if e[0] in ("person", "river") and e in plan.cited]
    rng_for(seed, "syndicated").shuffle(subjects)
    for g in range(_count(10, scale, 3)):
        site = ref_sites[g % len(ref_sites)]
        base = _reference_page(w, seed, 20_000 + g, site, *subjects[g % len(subjects)], long=4)
        base.kind, base.group = "near_dup", group
        base.url = base.url.rstrip("/") + "-full/"
        base.cited = True  # the article cites the original; the copies are what a crawl also finds
        plan.cited[base.entity].append(base.url)
        pages.append(base)
        for c in range(1, 2 + g % 3):
            lines = edit_every_line(base.lines, c + g, 0)
            copy_site = ref_sites[(g + c) % len(ref_sites)]
            pages.append(
                WebPage(
                    f"https://{copy_site.host}/syndicated/{_slug(base.title)}-{c}/",
                    base.title.split(" | ")[0] + f" | {copy_site.name}",
                    lines,
                    copy_site,
                    "en",
                    "near_dup",
                    group=group,
                )
            )
            plan.cluster_jaccard.append(_jaccard(base.lines, lines))
        group += 1
    # chains A~B~C: A and C edit B at disjoint places, so J(A,B) and J(B,C) are high and J(A,C) is not.
    # LSH pairs documents by chance around the threshold; the edits are redrawn until the recipe's own
    # MinHash bands pair A with B and B with C but not A with C: a chain only connected components join.
    for g in range(_count(3, scale, 2)):
        site = ref_sites[g % len(ref_sites)]
        b = _reference_page(w, seed, 30_000 + g, site, *subjects[-1 - g], long=6)
        for attempt in range(40):
            crng = rng_for(seed, "chain", g, attempt)
            a_lines = edit_every_line(b.lines, g + attempt, 0)
            c_lines = edit_every_line(b.lines, g + attempt + 5, 1)
            for lines, k0 in ((a_lines, 0), (c_lines, 1)):
                k = 0
                while _jaccard(lines, b.lines) > CHAIN_TARGET and k < 20:
                    _interior_edit(lines, crng, k + k0)
                    k += 1
            if lsh_pairs([a_lines, b.lines, c_lines]) == {(0, 1), (1, 2)}:
                break
        plan.chain_jaccard.append(
            [_jaccard(a_lines, b.lines), _jaccard(b.lines, c_lines), _jaccard(a_lines, c_lines)]
        )
        plan.chain_pairs.append(sorted(lsh_pairs([a_lines, b.lines, c_lines])))
        for tag, lines in (("a", a_lines), ("b", b.lines), ("c", c_lines)):
            copy_site = ref_sites[(g + ord(tag)) % len(ref_sites)]
            pages.append(
                WebPage(
                    f"https://{copy_site.host}/archive/{_slug(b.title)}-{tag}/",
                    b.title.split(" | ")[0] + f" | {copy_site.name}",
                    list(lines),
                    copy_site,
                    "en",
                    f"chain_{tag}",
                    entity=b.entity,
                    cited=tag == "b",  # the article cites the middle version
                    group=group,
                )
            )
            if tag == "b":
                plan.cited[b.entity].append(pages[-1].url)
        group += 1
    pages.append(
        WebPage(
            "https://www.valdoria-buses.com/timetables/",
            "Timetables | Valdoria Buses",
            [],
            None,
            "en",
            "title_only",
        )
    )
    pages.append(WebPage("https://www.valdoria-buses.com/empty", "", [], None, "en", "empty"))
    rng.shuffle(pages)
    return plan


# ------------------------------------------------------------------------------------------------ write


def _record_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def write_crawl(plan: CrawlPlan, out: Path, seed: int, n_files: int = 3) -> dict[str, Any]:
    """The WET files (one gzip member per record); returns what was planted, by corral document id."""
    out.mkdir(parents=True, exist_ok=True)
    rng = rng_for(seed, "wet")
    planted: dict[str, Any] = {"files": [], "pages": 0, "kinds": {}, "groups": {}, "cited": []}
    k = len(plan.pages)
    for f in range(n_files):
        name = f"{CRAWL}-demo-{f:05d}.warc.wet.gz"
        info = (
            f"software: corral.sample\r\nisPartOf: {CRAWL}\r\ndescription: demo sample, file {f} of {n_files}"
            "\r\nformat: WARC File Format 1.0\r\n"
        ).encode()
        records = [
            wet_format.warc_record(
                [
                    ("WARC-Type", "warcinfo"),
                    ("WARC-Date", "2024-05-30T00:00:00Z"),
                    ("WARC-Filename", name),
                    ("WARC-Record-ID", f"<urn:uuid:{_record_id(rng)}>"),
                    ("Content-Type", "application/warc-fields"),
                ],
                info,
            )
        ]
        offset = len(records[0])
        for page in plan.pages[f * k // n_files : (f + 1) * k // n_files]:
            body = (page.body() + "\n").encode("utf-8") if page.kind != "empty" else b""
            date = (_CRAWL_START + dt.timedelta(seconds=rng.randrange(13 * 86400))).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            )
            lang3 = wet_format.LANGS.get(page.lang, "eng")
            rec = wet_format.conversion_record(page.url, date, _record_id(rng), _record_id(rng), lang3, body)
            doc_id = f"{name}:{offset}"
            planted["kinds"].setdefault(page.kind, []).append(doc_id)
            if page.group is not None:
                planted["groups"].setdefault(str(page.group), []).append(doc_id)
            if page.cited:
                planted["cited"].append(doc_id)
            records.append(rec)
            offset += len(rec)
        (out / name).write_bytes(b"".join(zlib.compress(r, 6, wbits=31) for r in records))
        planted["files"].append(name)
    planted["pages"] = k
    planted["groups"] = {
        kind: [
            planted["groups"][str(g)]
            for g in sorted({p.group for p in plan.pages if p.kind.startswith(kind) and p.group is not None})
        ]
        for kind in ("exact", "near_dup", "chain")
    }
    planted["chain_jaccard"] = plan.chain_jaccard
    planted["chain_lsh_pairs"] = plan.chain_pairs
    planted["near_dup_jaccard"] = plan.cluster_jaccard
    planted["cited_urls"] = sum(len(v) for v in plan.cited.values())
    return planted


# -------------------------------------------------------------------------------------------------- C4

C4_JUNK = [
    "Home",
    "Menu",
    "Share this article",
    "Click here to subscribe",
    "Read more...",
    "Sign up for our newsletter",
    "Please enable JavaScript to view the comments powered by our partner.",
    "This website uses cookies to ensure you get the best experience on our website.",
    "By continuing to browse the site you agree to our privacy policy and terms of use.",
]
C4_SHARED = [
    "Thanks for reading and see you next week.",
    "If you enjoyed this post, please share it with your friends and family.",
    "All photographs on this page were taken by the author unless stated otherwise.",
]


def c4_records(w: World, seed: int, scale: float = 1.0) -> tuple[list[dict[str, Any]], list[str]]:
    """C4 records and the planted kind of each."""
    recs: list[dict[str, Any]] = []
    kinds: list[str] = []
    n_good = _count(190, scale, 30)

    def add(kind: str, text: str, url: str, rng: random.Random) -> None:
        day = dt.datetime(2019, 4, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(25 * 86400))
        recs.append({"text": text, "timestamp": day.strftime("%Y-%m-%dT%H:%M:%SZ"), "url": url})
        kinds.append(kind)

    for i in range(n_good):
        rng = rng_for(seed, "c4", i)
        register = rng.choice(("news", "blog", "recipe", "news", "blog"))
        ctx = web_ctx(w, rng)
        lines = [plain(x) for x in web_paragraphs(register, ctx, rng, rng.randint(3, 6), (3, 5))]
        if rng.random() < 0.3:
            kind, name = rng.choice([("town", str(ctx["town"])), ("river", str(ctx["river_name"]))])
            lines += [plain(p) for p in fact_paragraphs(w, kind, name, rng, 1, (3, 5))]
        if rng.random() < 0.6:
            lines.insert(rng.randrange(len(lines) + 1), rng.choice(C4_JUNK))
        if rng.random() < 0.4:
            lines.append(rng.choice(C4_SHARED))
        if rng.random() < 0.15:
            j = rng.randrange(len(lines))
            lines[j] = lines[j].replace(". ", f".[{rng.randint(1, 9)}] ", 1)
        if i % 40 == 7:
            lines.insert(
                1,
                "Download the data here: "
                + "".join(rng.choice("abcdef0123456789") for _ in range(1200))
                + " if you want it.",
            )
        add("good", "\n".join(lines), f"https://{_slug(str(ctx['town']))}-{register}.com/{i}", rng)
    for i in range(_count(4, scale, 1)):
        rng = rng_for(seed, "c4-lorem", i)
        add(
            "lorem_ipsum",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n" * 3
            + "Our new theme is coming soon. Stay tuned for more updates.",
            f"https://theme-demo-{i}.com/",
            rng,
        )
    for i in range(_count(4, scale, 1)):
        rng = rng_for(seed, "c4-curly", i)
        ctx = web_ctx(w, rng)
        lines = [plain(x) for x in web_paragraphs("blog", ctx, rng, 2, (3, 4))]
        lines.insert(
            1, 'To change the theme, add this line to your settings file: { "theme": "dark", "font": 14 }.'
        )
        add("curly_bracket", "\n".join(lines), f"https://dev-notes-{i}.com/settings", rng)
    for i in range(_count(10, scale, 2)):
        rng = rng_for(seed, "c4-few", i)
        ctx = web_ctx(w, rng)
        calm = [t for t in BLOG if "?" not in t and "!" not in t]
        two = " ".join(plain(expand(t, rng, ctx)) for t in rng.sample(calm, 2))  # two sentences: C4 wants 3
        add("too_few_sentences", two, f"https://shop-{i}.com/item", rng)
    for i in range(_count(4, scale, 1)):
        rng = rng_for(seed, "c4-nav", i)
        add("nav_only", "\n".join(rng.sample(C4_JUNK[:6], 4)), f"https://portal-{i}.com/", rng)
    rng = rng_for(seed, "c4-long")
    ctx = web_ctx(w, rng)
    long_lines = [plain(x) for x in web_paragraphs("news", ctx, rng, 12, (5, 5))]
    text = "\n".join(long_lines)
    add("too_long", "\n".join([text] * (190_001 // len(text) + 1)), "https://archive-dump.com/all", rng)
    for lang in ("fr", "de", "es"):
        for i in range(_count(4, scale, 1)):
            rng = rng_for(seed, "c4-foreign", lang, i)
            lengths = [rng.randint(40, 90) for _ in range(rng.randint(3, 5))]
            lines = word_lines(lang, np_rng(seed, 703, ord(lang[0]), i), lengths)
            add(f"foreign_{lang}", "\n".join(lines), f"https://{lang}-site-{i}.com/", rng)
    for i in range(_count(4, scale, 1)):
        rng = rng_for(seed, "c4-exact", i)
        ctx = web_ctx(w, rng)
        text = "\n".join(plain(x) for x in web_paragraphs("news", ctx, rng, 3, (3, 5)))
        add("exact", text, f"https://news-a-{i}.com/story", rng)
        add("exact", text, f"https://news-b-{i}.com/story", rng)
    order = list(range(len(recs)))
    rng_for(seed, "c4-order").shuffle(order)
    return [recs[i] for i in order], [kinds[i] for i in order]


def write_c4(w: World, out: Path, seed: int, scale: float, n_files: int = 2) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    recs, kinds = c4_records(w, seed, scale)
    planted: dict[str, Any] = {"files": [], "records": len(recs), "kinds": {}}
    k = len(recs)
    for f in range(n_files):
        name = f"c4-train.{f:05d}-of-{n_files:05d}.json.gz"
        lo, hi = f * k // n_files, (f + 1) * k // n_files
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in recs[lo:hi])
        (out / name).write_bytes(gzip.compress(lines.encode("utf-8"), compresslevel=6, mtime=0))
        for j in range(lo, hi):
            planted["kinds"].setdefault(kinds[j], []).append(f"{name}:{j - lo + 1}")
        planted["files"].append(name)
    return planted
