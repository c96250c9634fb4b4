"""The demo sample's invented world: regions, rivers, towns, people, species and organisations.

Why one world for every source: the same facts (Brenford lies on the Elde and was chartered in 1243)
appear in the Wikipedia articles, in the web pages those articles cite, in the news, the books and the
Q&A, as they do in real data; a model trained on the sample can learn them, and the Wikipedia dump can
cite web pages that exist in the crawl. Every name is generated from syllables and word lists written
here; nothing is copied.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from corral.sample.grammar import rng_for

TOWN_HEADS = (
    "Bren Ash Mar Cold Elder Hol Kes Lin Wex Thorn Gral Mire Stan Ave Dun Fen Hart Ock Pell Quen Rav Sel "
    "Tam Ulver Vane Wick Yar Bar Cal Dor Gil Har Ives Kir Lam Mor Nor Orm Pen Rook"
).split()
TOWN_TAILS = "ford ton by wick dale mouth ham bury stead field more gate well brook mere holt ley".split()
SYLLABLES = "el an or is ver ka mo ri sa te lu den var os mir ta bel un gor fa ne li do ru ast".split()
FIRST_NAMES = (
    "Ada Albert Alice Arthur Beatrice Bertram Clara Cecil Dora Edmund Edith Elias Flora Frederick Grace "
    "Gideon Harriet Henry Ida Isaac Jane Jonas Kate Lionel Lydia Martin Mabel Nathan Nora Oliver Olive "
    "Percy Prudence Quentin Rosa Rupert Sarah Silas Thea Thomas Ursula Victor Vera Walter Winifred"
).split()
FEMALE_NAMES = frozenset(
    "Ada Alice Beatrice Clara Dora Edith Flora Grace Harriet Ida Jane Kate Lydia Mabel Nora Olive Prudence "
    "Rosa Sarah Thea Ursula Vera Winifred".split()
)
SURNAMES = (
    "Fenwick Ashdown Marlow Thorne Holloway Kestrel Lindqvist Weston Graves Penrose Hartley Ockham Sellers "
    "Tamworth Ulwin Varley Whitcombe Yardley Barrow Calloway Dunmore Gilchrist Harrow Ives Kirkby Lambert "
    "Morrow Norcross Ormerod Pell Quarry Ravensworth Stanhope Tennant Underhill Vance Wainwright Aldous "
    "Brightwell Corrigan Elmsley Fairweather"
).split()
OCCUPATIONS = {
    "painter": ("landscapes", "portraits", "the harbour at dawn", "the northern coast"),
    "engineer": ("bridges", "the first steam pumps", "canal locks", "railway viaducts"),
    "botanist": ("mosses", "alpine flowers", "the flora of the wetlands", "fruit trees"),
    "composer": ("string quartets", "choral music", "two operas", "songs for the piano"),
    "poet": ("sonnets", "long narrative poems", "ballads", "poems about the sea"),
    "architect": ("town halls", "churches", "the new library", "workers' housing"),
    "mathematician": ("prime numbers", "the geometry of curves", "probability", "tide tables"),
    "explorer": (
        "the northern ice",
        "the source of the great rivers",
        "the eastern mountains",
        "the islands",
    ),
    "historian": ("the medieval wool trade", "the old guilds", "the river towns", "the great flood"),
    "physician": ("fevers", "public health", "clean water", "the treatment of burns"),
}
WORK_WORDS = (
    "Silent Harbour, Northern Flora, Winter Light, Stone and Water, Long Road, Grey Valley, Salt Marsh, "
    "Last Summer, Iron Bridge, Quiet Fields, Old Mill, High Moor, Green Shore, Tidal River, Seven Hills"
).split(", ")
INDUSTRIES = (
    "the wool trade",
    "shipbuilding",
    "glassmaking",
    "salt mining",
    "apple orchards",
    "brewing",
    "paper mills",
    "clockmaking",
    "fishing",
    "pottery",
    "weaving",
    "tanneries",
    "rope making",
    "copper mining",
    "cheese making",
    "printing",
)
LANDMARKS = (
    "church of St. {saint}",
    "old market hall",
    "stone bridge",
    "town museum",
    "clock tower",
    "ruined castle",
    "botanical garden",
    "harbour lighthouse",
    "corn exchange",
    "abbey",
    "windmill",
    "old town wall",
    "railway station",
    "bathhouse",
)
SAINTS = "Aldric Bede Columba Edwin Hilda Oswin Wilfrid Cuthbert Agnes Brigid".split()
SEAS = ("the Grey Sea", "the Northern Sea", "the Bay of Orvand", "Lake Mirren", "the Sound of Kell")
MOUNTAINS = (
    "the Hallen Hills",
    "the Kester Range",
    "the Dunmoor Heights",
    "the Varn Mountains",
    "Mount Ossel",
)
BIRD_BASES = ("warbler", "harrier", "plover", "finch", "owl", "heron", "lark", "tern")
OTHER_BASES = {
    "fish": ("trout", "pike", "loach", "grayling"),
    "plant": ("orchid", "fern", "sedge", "saxifrage", "gentian"),
    "insect": ("beetle", "dragonfly", "moth", "bee"),
    "mammal": ("vole", "shrew", "bat", "marten"),
}
SPECIES_ADJ = (
    "grey",
    "marsh",
    "spotted",
    "lesser",
    "northern",
    "red-backed",
    "river",
    "hill",
    "golden",
    "pale",
    "black-tailed",
    "mountain",
    "tawny",
    "coastal",
)
HABITATS = {
    "bird": ("reed beds", "open moorland", "coastal cliffs", "river valleys", "old woodland"),
    "fish": ("cold, fast rivers", "deep lakes", "slow lowland rivers"),
    "plant": ("wet meadows", "limestone grassland", "shaded ravines", "alpine screes"),
    "insect": ("heathland", "ponds and ditches", "old orchards", "sunny banks"),
    "mammal": ("hedgerows", "river banks", "pine forest", "caves and old mines"),
}
SIZES_CM = {"bird": (9, 70), "fish": (12, 90), "plant": (5, 80), "insect": (1, 9), "mammal": (5, 45)}
ORG_KINDS = (
    ("railway company", "Railway Company"),
    ("glassworks", "Glassworks"),
    ("brewery", "Brewery"),
    ("learned society", "Philosophical Society"),
    ("bank", "Savings Bank"),
    ("shipyard", "Shipyard"),
    ("newspaper", "Gazette"),
    ("museum", "Museum of Natural History"),
    ("choir", "Choral Society"),
    ("football club", "Football Club"),
)


def syllable_name(rng: random.Random, n: int, ending: str = "") -> str:
    name = "".join(rng.choice(SYLLABLES) for _ in range(n)) + ending
    return name[0].upper() + name[1:]


@dataclass
class Region:
    name: str
    adjective: str
    capital: str = ""
    towns: list[str] = field(default_factory=list)


@dataclass
class River:
    name: str  # "Elde" (articles say "the River Elde", "the Elde")
    region: str
    length_km: int
    source: str
    mouth: str
    towns: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"River {self.name}"


@dataclass
class Town:
    name: str
    region: str
    river: str
    kind: str  # village, town, city
    founded: int
    charter: int
    population: int
    industry: str
    landmark: str
    elevation: int
    twin: str = ""
    people: list[str] = field(default_factory=list)


@dataclass
class Person:
    name: str
    born: int
    died: int
    birthplace: str
    occupation: str
    subject: str
    works: list[tuple[str, int]]
    teacher: str = ""

    @property
    def surname(self) -> str:
        return self.name.split()[-1]

    @property
    def female(self) -> bool:
        return self.name.split()[0] in FEMALE_NAMES


@dataclass
class Species:
    common: str
    latin: str
    kind: str
    habitat: str
    size_cm: int
    region: str
    river: str


@dataclass
class Org:
    name: str
    kind: str
    town: str
    founded: int
    founder: str
    closed: int | None


@dataclass
class World:
    regions: dict[str, Region]
    rivers: dict[str, River]
    towns: dict[str, Town]
    people: dict[str, Person]
    species: dict[str, Species]
    orgs: dict[str, Org]

    @property
    def country(self) -> str:
        return "Valdoria"

    def entities(self) -> list[tuple[str, str]]:
        """(kind, name) of everything a Wikipedia article or a reference page can be about."""
        return (
            [("town", t) for t in self.towns]
            + [("person", p) for p in self.people]
            + [("river", r) for r in self.rivers]
            + [("species", s) for s in self.species]
            + [("org", o) for o in self.orgs]
        )


def build_world(seed: int, scale: float = 1.0) -> World:
    """The world for a seed: about 10 regions, 30 rivers, 140 towns, 120 people, 60 species, 40 organisations
    at scale 1 (fewer at smaller scales, never fewer than the sample's planted items need)."""
    rng = rng_for(seed, "world")

    def count(n: int, least: int) -> int:
        return max(least, round(n * scale))

    names: set[str] = set()

    def fresh(make) -> str:
        for _ in range(1000):
            name = make()
            if name not in names:
                names.add(name)
                return name
        raise RuntimeError("name space exhausted")

    regions: dict[str, Region] = {}
    for _ in range(count(10, 4)):
        stem = fresh(lambda: syllable_name(rng, 2))
        name = stem + rng.choice(("ia", "and", "mark", "ia", "ora"))
        adjective = name + "n" if name.endswith("a") else name + "ian"
        regions[name] = Region(name, adjective)
    region_names = list(regions)
    rivers: dict[str, River] = {}
    for _ in range(count(30, 8)):
        name = fresh(lambda: syllable_name(rng, rng.choice((1, 2)), rng.choice(("e", "", "en", "a", "wy"))))
        rivers[name] = River(
            name, rng.choice(region_names), rng.randint(18, 640), rng.choice(MOUNTAINS), rng.choice(SEAS)
        )
    river_names = list(rivers)
    towns: dict[str, Town] = {}
    for _ in range(count(140, 30)):
        name = fresh(lambda: rng.choice(TOWN_HEADS) + rng.choice(TOWN_TAILS))
        river = rng.choice(river_names)
        region = rivers[river].region if rng.random() < 0.8 else rng.choice(region_names)
        kind = rng.choices(("village", "town", "city"), (3, 6, 2))[0]
        pop = {"village": (300, 4000), "town": (4000, 60000), "city": (60000, 900000)}[kind]
        founded = rng.randint(780, 1650)
        towns[name] = Town(
            name=name,
            region=region,
            river=river,
            kind=kind,
            founded=founded,
            charter=founded + rng.randint(20, 300),
            population=rng.randint(*pop),
            industry=rng.choice(INDUSTRIES),
            landmark=rng.choice(LANDMARKS).format(saint=rng.choice(SAINTS)),
            elevation=rng.randint(2, 900),
        )
        rivers[river].towns.append(name)
        regions[region].towns.append(name)
    town_names = list(towns)
    for t in towns.values():
        t.twin = rng.choice([n for n in town_names if n != t.name])
    for r in regions.values():
        if not r.towns:
            extra = rng.choice(town_names)
            r.towns.append(extra)
        r.capital = max(r.towns, key=lambda n: towns[n].population)
    people: dict[str, Person] = {}
    for _ in range(count(120, 30)):
        name = fresh(lambda: f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}")
        born = rng.randint(1700, 1915)
        occupation = rng.choice(list(OCCUPATIONS))
        works = []
        for _ in range(rng.randint(2, 5)):
            works.append(
                (
                    f"{rng.choice(('The ', '', 'On the ', 'Notes on the '))}{rng.choice(WORK_WORDS)}",
                    born + rng.randint(22, 60),
                )
            )
        works.sort(key=lambda w: w[1])
        birthplace = rng.choice(town_names)
        people[name] = Person(
            name=name,
            born=born,
            died=born + rng.randint(38, 95),
            birthplace=birthplace,
            occupation=occupation,
            subject=rng.choice(OCCUPATIONS[occupation]),
            works=works,
        )
        towns[birthplace].people.append(name)
    person_names = list(people)
    for p in people.values():
        older = [
            q for q in person_names if people[q].born < p.born - 15 and people[q].occupation == p.occupation
        ]
        if older:
            p.teacher = rng.choice(older)
    species: dict[str, Species] = {}
    for _ in range(count(60, 12)):
        kind = rng.choices(("bird", "fish", "plant", "insect", "mammal"), (4, 2, 3, 2, 2))[0]
        base = rng.choice(BIRD_BASES if kind == "bird" else OTHER_BASES[kind])
        common = fresh(lambda b=base: f"{rng.choice(SPECIES_ADJ)} {b}")
        latin = f"{syllable_name(rng, 2, 'us')} {syllable_name(rng, 2, rng.choice(('ensis', 'ii', 'a', 'is'))).lower()}"
        species[common] = Species(
            common,
            latin,
            kind,
            rng.choice(HABITATS[kind]),
            rng.randint(*SIZES_CM[kind]),
            rng.choice(region_names),
            rng.choice(river_names),
        )
    orgs: dict[str, Org] = {}
    for _ in range(count(40, 10)):
        kind, label = rng.choice(ORG_KINDS)
        town = rng.choice(town_names)
        name = fresh(lambda lab=label, t=town: f"{t} {lab}")
        founded = rng.randint(1780, 1960)
        orgs[name] = Org(
            name,
            kind,
            town,
            founded,
            rng.choice(person_names),
            closed if (closed := founded + rng.randint(30, 120)) < 2015 and rng.random() < 0.3 else None,
        )
    return World(regions, rivers, towns, people, species, orgs)
