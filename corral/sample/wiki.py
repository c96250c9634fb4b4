"""The sample's Wikipedia: `pages-articles` XML dumps (export-0.11) with real wikitext markup.

An English dump with one article per entity of the world (infoboxes, wikilinks, `<ref>` citations with
`{{cite web}}`, tables, files, categories, interlanguage links, comments, `{{citation needed}}`, lists,
headings), redirects, pages in other namespaces (talk, user, project, file, template, category) and two
stubs that are nothing but templates; and small French and German dumps. The articles cite the
reference pages of the crawl by URL, which is what the Wikipedia-reference classifier trains on.
"""

from __future__ import annotations

import bz2
import hashlib
import random
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from corral.sample.english import (
    ORG_HISTORY,
    ORG_LEAD,
    PERSON_CAREER,
    PERSON_EARLY,
    PERSON_LEAD,
    PERSON_LEGACY,
    REGION_BODY,
    REGION_LEAD,
    RIVER_COURSE,
    RIVER_HISTORY,
    RIVER_LEAD,
    SPECIES_DESC,
    SPECIES_LEAD,
    TOWN_CULTURE,
    TOWN_ECON,
    TOWN_GEO,
    TOWN_HISTORY,
    TOWN_LEAD,
    TOWN_POP,
    TOWN_RECENT,
    TOWN_TOURISM,
    entity_ctx,
    thousands,
)
from corral.sample.grammar import Deck, expand, link, paragraph, rng_for, wiki
from corral.sample.words import np_rng, word_lines
from corral.sample.world import World

NAMESPACES = {
    "en": {
        -2: "Media",
        -1: "Special",
        1: "Talk",
        2: "User",
        3: "User talk",
        4: "Wikipedia",
        6: "File",
        10: "Template",
        14: "Category",
        100: "Portal",
    },
    "fr": {
        -2: "Média",
        -1: "Spécial",
        1: "Discussion",
        2: "Utilisateur",
        4: "Wikipédia",
        6: "Fichier",
        10: "Modèle",
        14: "Catégorie",
    },
    "de": {
        -2: "Medium",
        -1: "Spezial",
        1: "Diskussion",
        2: "Benutzer",
        4: "Wikipedia",
        6: "Datei",
        10: "Vorlage",
        14: "Kategorie",
    },
}
EDITORS = (
    "Riverwatcher",
    "Heritage42",
    "OldMapsFan",
    "Tidewright",
    "Bot of Valdoria",
    "Marginalia",
    "Ferncounter",
)
MONTHS = ("January", "March", "May", "June", "September", "November")


def mediawiki_sha1(text: str) -> str:
    """The `<sha1>` of a revision as dumps write it: SHA-1 of the text in base 36, 31 digits."""
    n = int(hashlib.sha1(text.encode("utf-8")).hexdigest(), 16)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(31, "0")


class Refs:
    """`<ref>` citations of one article: named reuse (`<ref name="x" />`) as editors write them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.named: set[str] = set()

    def web(self, url: str, title: str, site: str, name: str | None = None) -> str:
        if name and name in self.named:
            return f'<ref name="{name}" />'
        date = f"{self.rng.randint(1, 28)} {self.rng.choice(MONTHS)} {self.rng.randint(2015, 2024)}"
        body = f"{{{{cite web |url={url} |title={title} |website={site} |access-date={date}}}}}"
        if name:
            self.named.add(name)
            return f'<ref name="{name}">{body}</ref>'
        return f"<ref>{body}</ref>"

    def book(self, author: str, title: str, year: int) -> str:
        return f"<ref>{{{{cite book |last={author.split()[-1]} |first={author.split()[0]} |title={title} |year={year}}}}}</ref>"


def _slug(name: str) -> str:
    return name.lower().replace(" ", "-").replace(".", "")


def _cited(refs: Refs, urls: list[str], title: str) -> list[str]:
    return [
        refs.web(u, title, u.split("/")[2].removeprefix("www."), name=f"src{i}") for i, u in enumerate(urls)
    ]


def _body(
    w: World,
    kind: str,
    name: str,
    rng: random.Random,
    sections: list[tuple[str, list[str], int]],
    linked: set[str],
    extra: list[str],
) -> list[str]:
    """Section headings and paragraphs; `extra` refs are spread over the paragraphs."""
    ctx = entity_ctx(w, kind, name)
    deck = Deck(rng)
    out = []
    k = 0
    for heading, pool, n in sections:
        if heading:
            out.append(f"\n== {heading} ==")
        for j in range(n):
            para = wiki(paragraph(pool, rng, ctx, rng.randint(4, 6), deck), linked)
            if k < len(extra):
                para += extra[k]
                k += 1
            elif rng.random() < 0.08:
                para += f"{{{{citation needed|date={rng.choice(MONTHS)} {rng.randint(2012, 2023)}}}}}"
            out.append("\n" + para if j else para)  # a blank line between paragraphs, as editors write
    return out


def town_article(w: World, name: str, rng: random.Random, cites: list[str]) -> str:
    t = w.towns[name]
    ctx = entity_ctx(w, "town", name)
    refs = Refs(rng)
    linked = {name}
    census = refs.web(
        f"https://www.valdoria-statistics.gov/census/2011/{_slug(name)}",
        f"Census 2011: {name}",
        "Valdoria Statistics Office",
        name="census",
    )
    lead = " ".join(wiki(expand(x, rng, ctx), linked) for x in (rng.choice(TOWN_LEAD), rng.choice(TOWN_POP)))
    parts = [
        f"{{{{Short description|{t.kind.capitalize()} in {t.region}, {w.country}}}}}",
        f"{{{{Use dmy dates|date={rng.choice(MONTHS)} 2024}}}}",
        "{{Infobox settlement\n"
        f"| name                = {name}\n| settlement_type     = {t.kind.capitalize()}\n"
        f"| image_skyline       = {name} {t.landmark}.jpg\n| image_caption       = The {t.landmark}\n"
        f"| subdivision_type    = Country\n| subdivision_name    = [[{w.country}]]\n"
        f"| subdivision_type1   = Province\n| subdivision_name1   = [[{t.region}]]\n"
        f"| established_title   = First recorded\n| established_date    = {t.founded}\n"
        f"| elevation_m         = {t.elevation}\n| population_total    = {thousands(t.population)}\n"
        f"| population_as_of    = 2011\n| timezone            = CET\n}}}}",
        lead + census,
    ]
    sections = [
        ("History", TOWN_HISTORY, 3),
        ("Geography", TOWN_GEO, 2),
        ("Economy", TOWN_ECON, 1 + rng.randint(0, 1)),
        ("Culture", TOWN_CULTURE, 1 + rng.randint(0, 1)),
    ]
    if rng.random() < 0.6:
        sections.insert(1, ("Recent history", TOWN_RECENT, 1))
    if rng.random() < 0.5:
        sections.append(("Tourism", TOWN_TOURISM, 1))
    body = _body(w, "town", name, rng, sections, linked, _cited(refs, cites, f"History of {name}"))
    body.insert(
        1,
        f"[[File:{name} {t.landmark}.jpg|thumb|left|upright=1.2|The {t.landmark} in about 19{rng.randint(0, 39):02d}]]",
    )
    geo = next(i for i, x in enumerate(body) if x.endswith("Geography =="))
    body.insert(geo + 2, "<!-- elevation from the 1998 survey; please do not change without a source -->")
    parts += body
    pop = t.population
    rows = []
    for year in (1901, 1951, 1981, 2001, 2011):
        factor = {1901: 0.35, 1951: 0.6, 1981: 0.8, 2001: 0.95, 2011: 1.0}[year]
        rows.append(f"|-\n| {year} || {thousands(int(pop * factor * rng.uniform(0.93, 1.07)))}")
    parts.append(
        '\n== Population ==\n{| class="wikitable" style="text-align:right"\n|+ Population of '
        f"{name}\n! Year !! Population\n" + "\n".join(rows) + "\n|}"
    )
    if t.people:
        items = [
            f"* [[{p}]] ({w.people[p].born}–{w.people[p].died}), {w.people[p].occupation}" for p in t.people
        ]
        parts.append("\n== Notable people ==\n" + "\n".join(items))
    parts.append("\n== References ==\n{{Reflist}}")
    parts.append(
        f"\n== External links ==\n* [https://www.{_slug(name)}-council.gov.vd/ Official website]\n"
        f"* {{{{Commons category|{name}}}}}"
    )
    parts.append(f"\n{{{{{t.region}}}}}\n{{{{Authority control}}}}")
    parts.append(
        f"\n[[Category:{t.kind.capitalize()}s in {t.region}]]\n[[Category:Populated places on the River "
        f"{t.river}]]\n[[Category:Populated places established in the {ctx['century']} century]]"
    )
    parts.append(f"\n[[fr:{name}]]\n[[de:{name}]]")
    return "\n".join(parts)


def person_article(w: World, name: str, rng: random.Random, cites: list[str]) -> str:
    p = w.people[name]
    ctx = entity_ctx(w, "person", name)
    refs = Refs(rng)
    linked = {name}
    lead = wiki(expand(PERSON_LEAD[0], rng, ctx), linked)
    works = "\n".join(f"* ''{title}'' ({year})" for title, year in p.works)
    book = refs.book(
        "Harriet Underhill",
        f"Lives of {w.regions[w.towns[p.birthplace].region].adjective} {p.occupation.capitalize()}s",
        1960 + rng.randint(0, 50),
    )
    parts = [
        f"{{{{Short description|{w.regions[w.towns[p.birthplace].region].adjective} {p.occupation} ({p.born}–{p.died})}}}}",
        "{{Infobox person\n"
        f"| name        = {name}\n| birth_date  = {{{{birth year|{p.born}}}}}\n"
        f"| birth_place = [[{p.birthplace}]], [[{w.towns[p.birthplace].region}]]\n"
        f"| death_date  = {{{{death year and age|{p.died}|{p.born}}}}}\n| occupation  = {p.occupation.capitalize()}\n"
        f"| known_for   = {p.subject.capitalize()}\n}}}}",
        lead + book,
    ]
    sections = [
        ("Early life", PERSON_EARLY, 1 + rng.randint(0, 1)),
        ("Career", PERSON_CAREER, 2),
        ("Legacy", PERSON_LEGACY, 1),
    ]
    body = _body(w, "person", name, rng, sections, linked, _cited(refs, cites, f"{name}: life and work"))
    career_end = next(i for i, x in enumerate(body) if x.endswith("Legacy =="))
    body.insert(career_end, "\n== Works ==\n" + works)
    parts += body
    parts.append("\n== References ==\n{{Reflist}}")
    first, last = name.split()[0], name.split()[-1]
    region = w.towns[p.birthplace].region
    parts.append(
        f"\n{{{{DEFAULTSORT:{last}, {first}}}}}\n[[Category:{p.born} births]]\n[[Category:{p.died} deaths]]\n"
        f"[[Category:{w.regions[region].adjective} {p.occupation}s]]\n[[Category:People from {p.birthplace}]]"
    )
    return "\n".join(parts)


def river_article(w: World, name: str, rng: random.Random, cites: list[str]) -> str:
    r = w.rivers[name]
    ctx = entity_ctx(w, "river", name)
    refs = Refs(rng)
    linked = {r.title}
    lead = wiki(expand(RIVER_LEAD[0], rng, ctx), linked)
    parts = [
        "{{Infobox river\n"
        f"| name         = River {name}\n| source1_location = {r.source}\n| mouth_location = {r.mouth}\n"
        f"| length       = {{{{convert|{r.length_km}|km|mi|abbr=on}}}}\n| subdivision_name1 = [[{r.region}]]\n}}}}",
        lead,
    ]
    parts += _body(
        w,
        "river",
        name,
        rng,
        [("Course", RIVER_COURSE, 2), ("History", RIVER_HISTORY, 2)],
        linked,
        _cited(refs, cites, f"The River {name}"),
    )
    if r.towns:
        parts.append("\n== Settlements ==\n" + "\n".join(f"* [[{t}]]" for t in r.towns))
    parts.append("\n== References ==\n{{Reflist}}\n\n[[Category:Rivers of " + r.region + "]]")
    return "\n".join(parts)


def species_article(w: World, name: str, rng: random.Random, cites: list[str]) -> str:
    s = w.species[name]
    ctx = entity_ctx(w, "species", name)
    refs = Refs(rng)
    linked = {name}
    lead = wiki(expand(SPECIES_LEAD[0], rng, ctx), linked)
    parts = [
        f"{{{{Speciesbox\n| name = {name.capitalize()}\n| genus = {s.latin.split()[0]}\n| species = {s.latin.split()[1]}\n"
        f"| status = LC\n| status_system = IUCN3.1\n}}}}",
        lead,
    ]
    parts += _body(
        w,
        "species",
        name,
        rng,
        [("Description", SPECIES_DESC, 2)],
        linked,
        _cited(refs, cites, f"The {name}"),
    )
    parts.append(
        f"\n<gallery>\nFile:{name.capitalize()} adult.jpg|Adult\nFile:{name.capitalize()} range.png|Range\n</gallery>"
    )
    parts.append(f"\n== References ==\n{{{{Reflist}}}}\n\n[[Category:{s.kind.capitalize()}s of {s.region}]]")
    return "\n".join(parts)


def org_article(w: World, name: str, rng: random.Random, cites: list[str]) -> str:
    o = w.orgs[name]
    ctx = entity_ctx(w, "org", name)
    refs = Refs(rng)
    linked = {name}
    lead = wiki(expand(ORG_LEAD[0], rng, ctx), linked)
    closed = f" It closed in {o.closed}." if o.closed else ""
    parts = [
        f"{{{{Infobox organization\n| name = {name}\n| founded = {o.founded}\n| location = [[{o.town}]]\n}}}}",
        lead + closed,
    ]
    parts += _body(
        w, "org", name, rng, [("History", ORG_HISTORY, 2)], linked, _cited(refs, cites, f"{name}: a history")
    )
    parts.append(f"\n== References ==\n{{{{Reflist}}}}\n\n[[Category:Companies based in {o.town}]]")
    return "\n".join(parts)


def region_article(w: World, name: str, rng: random.Random) -> str:
    ctx = entity_ctx(w, "region", name)
    linked = {name}
    r = w.regions[name]
    lead = wiki(expand(REGION_LEAD[0], rng, ctx), linked)
    body = [wiki(paragraph(REGION_BODY, rng, ctx, 4), linked)]
    rows = "\n".join(
        f"|-\n| [[{t}]] || {w.towns[t].kind} || {thousands(w.towns[t].population)}" for t in r.towns[:12]
    )
    table = '{| class="wikitable sortable"\n! Town !! Type !! Population\n' + rows + "\n|}"
    return "\n".join([lead, *body, "\n== Towns ==", table, f"\n[[Category:Provinces of {w.country}]]"])


ARTICLES = {
    "town": town_article,
    "person": person_article,
    "river": river_article,
    "species": species_article,
    "org": org_article,
}


# ------------------------------------------------------------------------------------------------- pages


class Dump:
    """One `pages-articles` dump being written: pages with ids, revisions, contributors, sha1."""

    def __init__(self, lang: str, seed: int) -> None:
        self.lang = lang
        self.rng = rng_for(seed, "dump", lang)
        self.pages: list[str] = []
        self.next_id = 1000 if lang == "en" else 5000
        self.ids: dict[str, list[str]] = {}
        self.dbname = f"{lang}wiki"

    def add(self, title: str, ns: int, text: str, kind: str, redirect: str | None = None) -> None:
        pid = self.next_id
        self.next_id += self.rng.randint(1, 40)
        rev = pid * 13 + self.rng.randint(0, 12)
        stamp = f"2024-0{self.rng.randint(1, 5)}-{self.rng.randint(10, 28)}T{self.rng.randint(10, 23)}:{self.rng.randint(10, 59)}:0{self.rng.randint(0, 9)}Z"
        editor = self.rng.choice(EDITORS)
        red = f"\n    <redirect title={quoteattr(redirect)} />" if redirect else ""
        self.pages.append(
            f"  <page>\n    <title>{escape(title)}</title>\n    <ns>{ns}</ns>\n    <id>{pid}</id>{red}\n"
            f"    <revision>\n      <id>{rev}</id>\n      <parentid>{rev - self.rng.randint(1, 900)}</parentid>\n"
            f"      <timestamp>{stamp}</timestamp>\n      <contributor>\n        <username>{escape(editor)}</username>\n"
            f"        <id>{10_000 + EDITORS.index(editor)}</id>\n      </contributor>\n"
            f"      <comment>{escape(self.rng.choice(('copyedit', 'added source', 'infobox', 'expand history', 'fix link')))}</comment>\n"
            "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{escape(text)}</text>\n'
            f"      <sha1>{mediawiki_sha1(text)}</sha1>\n    </revision>\n  </page>"
        )
        self.ids.setdefault(kind, []).append(f"{self.dbname}:{pid}")

    def xml(self) -> bytes:
        ns = NAMESPACES[self.lang]
        spaces = "\n".join(
            f'      <namespace key="{k}" case="first-letter">{escape(v)}</namespace>'
            if k
            else '      <namespace key="0" case="first-letter" />'
            for k, v in sorted({**ns, 0: ""}.items())
        )
        head = (
            '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="0.11" '
            f'xml:lang="{self.lang}">\n  <siteinfo>\n    <sitename>Wikipedia</sitename>\n'
            f"    <dbname>{self.dbname}</dbname>\n    <base>https://{self.lang}.wikipedia.org/wiki/Main_Page</base>\n"
            "    <generator>MediaWiki 1.43.0-wmf.7</generator>\n    <case>first-letter</case>\n"
            f"    <namespaces>\n{spaces}\n    </namespaces>\n  </siteinfo>\n"
        )
        return (head + "\n".join(self.pages) + "\n</mediawiki>\n").encode("utf-8")


def english_dump(w: World, seed: int, cited: dict[tuple[str, str], list[str]]) -> Dump:
    d = Dump("en", seed)
    entities = w.entities()
    for region in w.regions:
        d.add(region, 0, region_article(w, region, rng_for(seed, "wiki", "region", region)), "article")
    titles = []
    for kind, name in entities:
        rng = rng_for(seed, "wiki", kind, name)
        text = ARTICLES[kind](w, name, rng, cited.get((kind, name), []))
        title = (
            w.rivers[name].title if kind == "river" else (name.capitalize() if kind == "species" else name)
        )
        d.add(title, 0, text, "article")
        titles.append((kind, name, title))
    for kind, name, title in titles[:: max(1, len(titles) // 40)]:
        alias = {
            "town": f"{name}, {w.towns[name].region}" if kind == "town" else "",
            "person": f"{name.split()[-1]} ({w.people[name].occupation})" if kind == "person" else "",
            "river": f"{name} (river)",
            "species": w.species[name].latin if kind == "species" else "",
            "org": f"The {name}",
        }[kind]
        d.add(
            alias, 0, f"#REDIRECT [[{title}]]\n\n{{{{R from alternative name}}}}", "redirect", redirect=title
        )
    for _kind, _name, title in titles[3 :: max(1, len(titles) // 15)]:
        d.add(
            f"Talk:{title}",
            1,
            f"{{{{WikiProject {w.country}|class=C|importance=low}}}}\n\n== Sources ==\n"
            f"Is there a better source for the dates in the history section? ~~~~",
            "talk",
        )
    for editor in EDITORS[:5]:
        d.add(
            f"User:{editor}",
            2,
            f"I edit articles about the rivers and towns of {w.country}.\n\n{{{{Babel|en|fr-2}}}}",
            "user",
        )
    d.add(
        f"Wikipedia:WikiProject {w.country}",
        4,
        f"This WikiProject covers the geography and history of {w.country}.",
        "project",
    )
    for _kind, _name, title in titles[:: max(1, len(titles) // 5)][:5]:
        d.add(
            f"File:{title} view.jpg",
            6,
            "== Summary ==\nView from the bridge.\n== Licensing ==\n{{self|cc-by-sa-4.0}}",
            "file",
        )
    for tpl in ("Infobox settlement", "Infobox person", "Citation needed", "Reflist", "Authority control"):
        d.add(
            f"Template:{tpl}",
            10,
            "<includeonly>{{#invoke:"
            + tpl.replace(" ", "")
            + "|main}}</includeonly><noinclude>{{Documentation}}</noinclude>",
            "template",
        )
    for region in list(w.regions)[:6]:
        d.add(
            f"Category:Towns in {region}", 14, f"Towns in [[{region}]].\n\n[[Category:{region}]]", "category"
        )
    d.add(
        "Asterby (disambiguation)",
        0,
        "{{Disambiguation}}\n[[Category:Place name disambiguation pages]]",
        "empty",
    )
    d.add("Valdoria geography stub", 0, f"{{{{{w.country}-geo-stub}}}}\n{{{{Coord|51|N|4|E}}}}", "empty")
    return d


LEADS = {
    "fr": "'''{name}''' est une (ville|commune) de {region}, située sur la rivière {river}.",
    "de": "'''{name}''' ist eine (Stadt|Gemeinde) in {region} am Fluss {river}.",
}
SECTIONS = {"fr": ("Histoire", "Géographie", "Économie"), "de": ("Geschichte", "Geographie", "Wirtschaft")}
CATEGORY = {"fr": "Catégorie:Commune de {region}", "de": "Kategorie:Ort in {region}"}


def foreign_dump(w: World, seed: int, lang: str, n: int) -> Dump:
    """A smaller dump in `lang`: the same towns, text from word frequencies around real markup."""
    d = Dump(lang, seed)
    for i, name in enumerate(list(w.towns)[:n]):
        t = w.towns[name]
        rng = rng_for(seed, "wiki", lang, name)
        lead = wiki(
            expand(LEADS[lang], rng, {"name": name, "region": link(t.region), "river": link(t.river)})
        )
        paras = word_lines(lang, np_rng(seed, 704, ord(lang[0]), i), [rng.randint(40, 90) for _ in range(6)])
        body = []
        for j, heading in enumerate(SECTIONS[lang]):
            body.append(f"\n== {heading} ==\n{paras[2 * j]}\n\n{paras[2 * j + 1]}")
        ns = NAMESPACES[lang]
        text = (
            f"{{{{Infobox Commune\n| nom = {name}\n| population = {t.population}\n}}}}\n{lead}<ref>{{{{Lien web |url=https://stats.valdoria.gov/{_slug(name)} |titre=Recensement}}}}</ref>\n"
            + "\n".join(body)
            + f"\n\n== Références ==\n<references />\n\n[[{CATEGORY[lang].format(region=t.region)}]]\n[[en:{name}]]"
        )
        d.add(name, 0, text, "article")
        if i % 10 == 0:
            d.add(f"{ns[1]}:{name}", 1, "Quelle source ? ~~~~" if lang == "fr" else "Quelle? ~~~~", "talk")
        if i % 12 == 5:
            d.add(f"{name} ({t.region})", 0, f"#REDIRECT [[{name}]]", "redirect", redirect=name)
    return d


def write_wikipedia(
    w: World, out: Path, seed: int, cited: dict[tuple[str, str], list[str]], scale: float
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    planted: dict[str, Any] = {"files": [], "ids": {}, "cited_urls": sum(len(v) for v in cited.values())}
    n_foreign = max(8, round(25 * scale))
    for dump in (
        english_dump(w, seed, cited),
        foreign_dump(w, seed, "fr", n_foreign),
        foreign_dump(w, seed, "de", n_foreign),
    ):
        name = f"{dump.dbname}-20240601-pages-articles.xml.bz2"
        (out / name).write_bytes(bz2.compress(dump.xml(), 9))
        planted["files"].append(name)
        for kind, ids in dump.ids.items():
            planted["ids"].setdefault(kind, []).extend(ids)
    return planted
