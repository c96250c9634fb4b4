"""English prose for the demo sample, by register: encyclopedic facts, news, travel blogs, forums, shops,
recipes and spam, all about the invented world of `corral.sample.world` (fiction: `books`, Q&A: `qa`).

Why registers: the filters act on differences between them. The perplexity LM is trained on the
encyclopedic register (the Wikipedia articles), so reference pages score as Wikipedia does, news (which
shares some of Wikipedia's sentences about recent events) higher, chatty blogs, forums and shops much
higher, keyword spam and word salad highest; the Wikipedia-reference classifier learns the reference
pages that the articles cite. Facts in every register agree with the world.
"""

from __future__ import annotations

import random

from corral.sample.grammar import Deck, Slot, expand, link, paragraph, sentences
from corral.sample.world import FIRST_NAMES, SURNAMES, Org, Person, River, Species, Town, World


def ordinal_century(year: int) -> str:
    c = year // 100 + 1
    suffix = "th" if 10 <= c % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(c % 10, "th")
    return f"{c}{suffix}"


def thousands(n: int) -> str:
    return f"{n:,}"


def resident(rng: random.Random) -> str:
    """A name that is not one of the world's notable people (a resident, a reporter, a forum user)."""
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"


FIELDS = {
    "painter": "drawing",
    "engineer": "machines",
    "botanist": "plants",
    "composer": "music",
    "poet": "poetry",
    "architect": "drawing buildings",
    "mathematician": "numbers",
    "explorer": "maps",
    "historian": "old documents",
    "physician": "medicine",
}


def river_link(w: World, name: str, the: bool = True) -> str:
    r = w.rivers[name]
    return link(r.title, f"the River {name}" if the else f"River {name}")


# ------------------------------------------------------------------------------------------ contexts


def town_ctx(w: World, t: Town) -> dict[str, Slot]:
    people = t.people or list(w.people)[:1]
    orgs = [o for o in w.orgs.values() if o.town == t.name]
    return {
        "town": link(t.name),
        "town_plain": t.name,
        "kind": t.kind,
        "region": link(t.region),
        "region_adj": w.regions[t.region].adjective,
        "river": river_link(w, t.river),
        "river_name": t.river,
        "founded": str(t.founded),
        "century": ordinal_century(t.founded),
        "charter": str(t.charter),
        "charter_century": ordinal_century(t.charter),
        "population": thousands(t.population),
        "industry": t.industry,
        "landmark": t.landmark,
        "elevation": str(t.elevation),
        "twin": link(t.twin),
        "person": [link(p) for p in people],
        "org": [link(o.name) for o in orgs] or [f"the {t.name} town council"],
        "capital": link(w.regions[t.region].capital),
        "country": w.country,
        "flood_year": str(max(t.charter + 40, 1600 + (t.founded * 7) % 340)),
        "rail_year": str(1840 + t.population % 60),
        "census_year": "2011",
        **_derived_town(w, t),
    }


def _derived_town(w: World, t: Town) -> dict[str, Slot]:
    """Facts a town's texts agree on, drawn once from its name (every article and page says the same)."""
    r = random.Random(f"town-facts:{t.name}")
    towns = list(w.rivers[t.river].towns) or list(w.towns)
    neighbour = r.choice([x for x in towns if x != t.name] or [t.twin])
    guild_year = t.charter + r.randint(30, 200)
    return {
        "market_day": r.choice(("Monday", "Tuesday", "Thursday", "Saturday")),
        "fair_month": r.choice(("May", "June", "July", "August", "September")),
        "fire_year": str(t.charter + r.randint(60, 400)),
        "guild": r.choice(("weavers' guild", "merchants' guild", "guild of glassmakers", "salt merchants")),
        "guild_year": str(guild_year),
        "school_year": str(guild_year + r.randint(10, 90)),
        "bridge_year": str(t.charter + r.randint(100, 500)),
        "war_year": str(r.choice((1644, 1702, 1758, 1813, 1871))),
        "fever_year": str(r.choice((1832, 1849, 1866, 1892))),
        "dead": str(r.randint(40, 900)),
        "light_year": str(r.randint(1860, 1925)),
        "distance": str(r.randint(8, 140)),
        "neighbour": link(neighbour),
        "near_km": str(r.randint(3, 30)),
        "wood": r.choice(SURNAMES) + r.choice((" Wood", " Forest", " Chase")),
        "workers": thousands(r.randint(3, 60) * 100),
        "choir_year": str(r.randint(1850, 1975)),
        "saint": r.choice(("Aldric", "Bede", "Hilda", "Oswin", "Agnes")),
        "recent_year": lambda rng: str(rng.randint(1995, 2023)),
        "club_year": str(r.randint(1950, 2015)),
        "facility": FACILITIES,
        "festival": (f"{t.name} Festival", f"{t.name} Summer Fair", "Riverside Festival", "Apple Fair"),
        "percent": lambda rng: str(rng.randint(2, 19)),
    }


def person_ctx(w: World, p: Person) -> dict[str, Slot]:
    t = w.towns[p.birthplace]
    first, last = p.works[0], p.works[-1]
    return {
        "person": link(p.name),
        "surname": p.surname,
        "he": "she" if p.female else "he",
        "his": "her" if p.female else "his",
        "His": "Her" if p.female else "His",
        "him": "her" if p.female else "him",
        "child": "daughter" if p.female else "son",
        "born": str(p.born),
        "died": str(p.died),
        "age": str(p.died - p.born),
        "birthplace": link(p.birthplace),
        "region": link(t.region),
        "region_adj": w.regions[t.region].adjective,
        "river": river_link(w, t.river),
        "occupation": p.occupation,
        "subject": p.subject,
        "field": FIELDS[p.occupation],
        "first_work": f"''{first[0]}''",
        "first_year": str(first[1]),
        "last_work": f"''{last[0]}''",
        "last_year": str(last[1]),
        "work": [f"''{title}''" for title, _ in p.works],
        "teacher": link(p.teacher) if p.teacher else "a local schoolmaster",
        "century": ordinal_century(p.born + 30),
        "industry": t.industry,
        "capital": link(w.regions[t.region].capital),
        "study_town": link(w.regions[t.region].capital),
        **_derived_person(w, p),
    }


def _derived_person(w: World, p: Person) -> dict[str, Slot]:
    r = random.Random(f"person-facts:{p.name}")
    mid = p.born + r.randint(30, 45)
    colleagues = [q for q in w.people if q != p.name and abs(w.people[q].born - p.born) < 20] or [
        p.teacher or p.name
    ]
    return {
        "married": str(p.born + r.randint(22, 35)),
        "mid_year": str(mid),
        "mid_year2": str(min(p.died, mid + r.randint(5, 15))),
        "foreign": r.choice(
            ("the southern islands", "the eastern kingdoms", "the coast of Orvand", "the capital")
        ),
        "colleague": link(r.choice(colleagues)),
        "late_decade": f"{(p.died - 10) // 10 * 10}s",
        "anniversary": str(p.born + 100 if p.born + 100 < 2024 else p.died + 50),
    }


def river_ctx(w: World, r: River) -> dict[str, Slot]:
    towns = r.towns or list(w.towns)[:2]
    return {
        "river": link(r.title, f"River {r.name}"),
        "river_the": link(r.title, f"the {r.name}"),
        "river_name": r.name,
        "length": str(r.length_km),
        "source": r.source,
        "mouth": r.mouth,
        "region": link(r.region),
        "town": [link(t) for t in towns],
        "first_town": link(towns[0]),
        "last_town": link(towns[-1]),
        "n_towns": str(len(towns)),
        "flood_year": str(1700 + r.length_km % 300),
        "species": [link(s.common, f"the {s.common}") for s in w.species.values() if s.river == r.name]
        or ["the grey heron"],
        "tidal": str(3 + r.length_km % 30),
        "basin": thousands(r.length_km * (7 + r.length_km % 9)),
        "canal_year": str(1760 + r.length_km % 90),
        "bad_decade": f"{1950 + (r.length_km % 3) * 10}s",
    }


def _template(src: str) -> Slot:
    """A slot whose value is itself a template, expanded where it is used."""
    return lambda rng: expand(src, rng, {})


def species_ctx(w: World, s: Species) -> dict[str, Slot]:
    return {
        "species": link(s.common),
        "common": s.common,
        "latin": f"''{s.latin}''",
        "kind": s.kind,
        "habitat": s.habitat,
        "size": str(s.size_cm),
        "region": link(s.region),
        "river": river_link(w, s.river),
        "year": str(1780 + s.size_cm * 2),
        "person": [link(p.name) for p in w.people.values() if p.occupation in ("botanist", "explorer")]
        or ["a local naturalist"],
        "size_phrase": _template(
            f"(Plants|Flowering stems) grow to (about|up to) {s.size_cm} cm tall."
            if s.kind == "plant"
            else f"(Adults|Specimens) (reach|measure) (about|up to) {s.size_cm} cm (in length|long)."
        ),
        "season_phrase": _template(
            "It flowers (from May to July|in early summer|in late spring), and its seeds (are spread by the "
            "wind|ripen in autumn)."
            if s.kind == "plant"
            else f"(It|The {s.common}) (breeds|is most active) (from April to June|in early summer|in late "
            "spring) and (spends the winter|is rarely seen in winter) (further south|in sheltered places)."
        ),
        "survey_year": str(1990 + s.size_cm % 30),
        "count": str(20 + s.size_cm * 7),
    }


def org_ctx(w: World, o: Org) -> dict[str, Slot]:
    t = w.towns[o.town]
    return {
        "org": link(o.name),
        "org_kind": o.kind,
        "town": link(o.town),
        "region": link(t.region),
        "founded": str(o.founded),
        "founder": link(o.founder),
        "closed": str(o.closed or ""),
        "river": river_link(w, t.river),
        "industry": t.industry,
        "decade": f"{(o.founded // 10 + 3) * 10}s",
        "staff": str(40 + o.founded % 900),
        "move_year": str(min(2010, o.founded + 25 + o.founded % 40)),
        "bad_decade": f"{(o.founded + 60) // 10 * 10}s" if o.founded + 60 < 2010 else "1990s",
    }


# ------------------------------------------------------------------------------ encyclopedic register

TOWN_LEAD = [
    "'''{town_plain}''' is a (market town|{kind}) in {region}, (on|beside|on the banks of) {river}.",
    "'''{town_plain}''' is a {kind} (and civil parish|and former borough|) in the (north|south|east|west) of {region}, {country}.",
]
TOWN_POP = [
    "(It had a population of|Its population was|The population was) {population} at the {census_year} census.",
    "(At|According to) the {census_year} census the {kind} had {population} (inhabitants|residents).",
]
TOWN_HISTORY = [
    "(The settlement|A settlement at the site) is first recorded in {founded}, when (it was listed among the lands of|it paid rent to) the bishops of {capital}.",
    "(Archaeological finds|Coins and pottery found near the river) suggest that the site was occupied (well before|long before) the {century} century.",
    "{town} (received|was granted) a market charter in {charter}, and (a weekly market|its {market_day} market) has been held (there ever since|in the square since then).",
    "(During|In) the {charter_century} century the {kind} grew (rich|prosperous) on {industry}.",
    "(The|Its) {landmark} was (built|completed|rebuilt) (in the|during the) {charter_century} century and (is now|remains) (a listed building|the oldest building in the {kind}).",
    "A (great|severe) flood in {flood_year} (destroyed|damaged) (many houses|the lower town|the old bridge) along {river}.",
    "The railway (reached|arrived in) {town} in {rail_year}, (linking it to|connecting it with) {capital}.",
    "(Much of the old town|The medieval centre) (survived|was spared) the (fire|storms) of {fire_year}, and (its narrow streets|its timber houses) still (attract visitors|stand today).",
    "In the (19th|20th) century (the population grew quickly|new suburbs were built) as (the mills|the factories|the workshops) (expanded|drew workers from the countryside).",
    "The (name|place name) {town_plain} (is thought to come|probably comes) from (an old word for|the ancient name of) (a ford|a hill|a clearing|a spring) (on|near) {river}.",
    "(By|Around) {guild_year} the {guild} (of the {kind}|of {town_plain}) (controlled|regulated) (most of|much of) (its trade|the market).",
    "(A grammar school|The first school) was (founded|opened) in {school_year} (by the|with money from the) {guild}.",
    "(The stone bridge|A new bridge) (across|over) {river} was (built|finished) in {bridge_year}, (replacing|after the collapse of) (an older wooden one|the medieval ford).",
    "(In|During) {war_year} the {kind} was (occupied|besieged) (for several weeks|for a short time), and (the town walls|several churches|the mills) were (damaged|burned).",
    "(A fever|An outbreak of cholera) in {fever_year} (killed|took the lives of) (about|nearly) {dead} (people|inhabitants), (and|after which) (new drains were built|the wells were closed).",
    "(Gas lighting|Electric street lighting) (came to|was installed in) the (main streets|centre) in {light_year}.",
    "(After|Following) the (closure of|decline of) {industry} in the (1960s|1970s|1980s), (many workers left for {capital}|the population fell as families moved to {capital}).",
    "(Since the|In the) (1990s|2000s) the (old warehouses|former mills) (along the river|near the station) have been (turned into|converted into) (flats|offices|a museum).",
]
TOWN_GEO = [
    "{town} lies (at an elevation of|at a height of about) {elevation} metres (on|beside|above) {river}.",
    "The {kind} is (surrounded by|set among) (farmland|low hills|woods and meadows), and {river} (divides it into two parts|forms its eastern boundary).",
    "(It has a|The {kind} has a) (mild|temperate|cool) (oceanic|maritime) climate, with (wet winters|rain in every season) and (warm|mild) summers.",
    "{capital}, the (largest town|capital) of {region}, (lies|is) {distance} kilometres (to the north|to the south|upstream|downstream).",
    "(The old town|The historic centre) (stands|is built) on (a low ridge|a bend of the river|the north bank), (above|away from) the (flood plain|water meadows).",
    "(The soils|The fields) around the {kind} are (heavy clay|light and sandy|rich and well drained), (good for|suited to) (wheat|orchards|grazing).",
    "(Two|Several) (small streams|brooks) (join|flow into) {river} (within the parish|near the {kind}).",
    "(The nearest|Its nearest) (neighbour|neighbouring town) is {neighbour}, (about|some) {near_km} kilometres (away|along the valley).",
    "{wood} (covers|lies on) the (hills|higher ground) (to the west|to the east) of the {kind}.",
]
TOWN_ECON = [
    "The (local economy|economy of the {kind}) (was long based on|depended for centuries on) {industry}.",
    "(Today|Since the 1970s) (tourism|services and light industry|the university and the hospital) (employ|employs) (most|many) of the (residents|working population).",
    "{org} (is based in|was founded in|has its headquarters in) the {kind}.",
    "(A weekly market|A farmers' market) is (held|still held) in the (square|market place) (every|on) {market_day}.",
    "(At its height|In the {charter_century} century), {industry} (gave work to|employed) (about|nearly) {workers} (people|families).",
    "(The|A) (railway station|bus station) (links|connects) the {kind} (with|to) {capital} and {neighbour}.",
    "(Many|Some) residents (commute to|travel to work in) {capital}, (and the journey takes|a journey of) (under an hour|about forty minutes) by train.",
    "(Small firms|Workshops) (making|producing) (furniture|glass|boats|cloth) (still|continue to) (operate|work) (in the {kind}|near the river).",
]
TOWN_CULTURE = [
    "The (town|parish) is twinned with {twin}.",
    "The {landmark} (is|remains) (the best known|the most visited) (building|sight) in the {kind}.",
    "(An annual|A summer) (music festival|fair|regatta on {river}) (is held|takes place) (each|every) {fair_month}.",
    "(Notable people|People) (born in|from) the {kind} include {person}.",
    "(The|Its) (local|town) museum (holds|has) (a collection of old maps and tools|displays about the history of the {kind}|finds from the river).",
    "(The|A) (choir|brass band) (of the {kind}|from {town_plain}) (was founded in|has performed since) {choir_year}.",
    "(The|Its) (parish church|church of St. {saint}) (has|contains) (a fine|a famous) (organ|tower|painted ceiling) from the {charter_century} century.",
    "(Football|Rowing) (is|has long been) (popular|the most popular sport) in the {kind}, and (the local club|{town_plain} United) (plays|play) (by the river|on the old common).",
]
TOWN_RECENT = [
    "In {recent_year} the council (approved|rejected|postponed) plans for a new {facility} (near|beside|opposite) the {landmark}.",
    "(Heavy rain|A storm) in {recent_year} (caused|led to) flooding (along|near) {river}, and (several roads|the old bridge) (were|was) closed.",
    "The {festival} (is held|takes place) (each|every) {fair_month} with (music|stalls|a parade) (in the market square|along the river).",
    "{town_plain} United (play|have played) in the (regional|second) league since {club_year}.",
    "(A report|A survey) published in {recent_year} (found|showed) that (house prices|rents|visitor numbers) in the {kind} (rose|fell|grew) by {percent} per cent (over five years|in a decade).",
    "(The bus service|The train service) (between|linking) {town} and {neighbour} was (cut|extended|restored) in {recent_year}.",
    "(Volunteers|Pupils from the local school) (planted trees|cleared litter|planted a new garden) along {river} in {recent_year}.",
    "(Residents|Local people|Shop owners) (raised|have raised) concerns about (traffic|parking|noise|the loss of green space) in the (centre|old town).",
    "(A fire|A small fire) (broke out|was reported) at a (warehouse|shop) (near|beside) the station in {recent_year}, but no one was hurt.",
]
TOWN_TOURISM = [
    "(Visitors|Tourists) (come|arrive) (mostly|mainly) (by train|by road|in summer), and (the walk along {river}|the boat trip|the {market_day} market) (is|remains) (popular|the main attraction).",
    "The {landmark} is (the highlight of|a popular stop on) (many|most) (visits|tours) of the {kind}.",
    "(Hotels|Guesthouses) (in the centre|near the station) are (a short walk from|close to) the (river|market square).",
    "(Parking|Getting around) (is|can be) (difficult|easy) in the old town, so (most visitors|many people) (take the train|walk).",
    "(Local food|The local food) (includes|is known for) (apple cake|leek soup|fish pie|oat biscuits|cheese tart|honey bread), (served|eaten) (at the autumn fair|on feast days|in the cafés by the bridge).",
    "(Boat trips|A boat tour) on {river} (run|operates) from (April|May) to (September|October).",
    "(The view from|The walk up to) the (hill|ruined castle|clock tower) is (often|widely) (praised|recommended) in (travel guides|guidebooks).",
]
PERSON_LEAD = [
    "'''{person}''' \\({born}–{died}\\) was a {region_adj} {occupation} (known for|remembered for|best known for) {his} work on {subject}.",
]
PERSON_EARLY = [
    "{surname} was born in {birthplace} in {born}, the {child} of a (miller|schoolteacher|merchant|ship's carpenter|weaver).",
    "(As a child|In {his} youth) {surname} (showed a talent for|was drawn to) {field} and (was sent to study|went to study) in {study_town}.",
    "(At the age of|Aged) (fourteen|sixteen|eighteen) {surname} (became a pupil of|was taught by|studied under) {teacher}.",
    "(The family|{His} family) (lived|had a house) (near|beside) {river}, and {surname} later (wrote|said) that the river (shaped {him} more than any school|taught {him} to look closely).",
    "{His} (father|mother) (died|fell ill) when {surname} was (young|twelve|fifteen), and (the family moved to {study_town}|{he} went to live with an uncle in {study_town}).",
    "(After|On leaving) school {surname} (worked for a time|spent two years) (as a clerk|in a printing shop|as a tutor) (in|at) {study_town}.",
    "{surname} (married in {married}|did not marry until {married}), and (had|they had) (two|three|four) children.",
]
PERSON_CAREER = [
    "({His}|The) first (major|important) work, {first_work}, (appeared|was published|was completed) in {first_year}.",
    "(During the|In the) (following years|next decade) {surname} (travelled widely|worked in {capital}|returned to {birthplace}) and (produced|wrote|completed) {work}.",
    "(The|Critics praised the) (clarity|originality|careful detail) of {surname}'s work on {subject} (won wide praise|was admired even by rivals).",
    "{surname}'s (last|final) (work|book|project), {last_work}, (was completed|appeared) in {last_year}.",
    "In {first_year} {surname} (was elected to|joined) the (learned society|academy) of {region}.",
    'Not all (critics|contemporaries) were convinced; (one reviewer|a rival) called {work} ("too long"|"old-fashioned"|"careless in detail").',
    "(From|Between) {mid_year} (onwards|and {mid_year2}) {surname} (taught|lectured) (in|at) {capital}, (where|and there) {his} (pupils|students) included (several|many) (later|future) {occupation}s.",
    "(A visit to|A long journey to) {foreign} in {mid_year} (changed|broadened) {his} (ideas|work), and {work} (shows|reflects) (its|that) influence.",
    "(With|Together with) {colleague}, {surname} (founded|started) a (society|journal) (devoted to|for the study of) {subject}.",
    "(Money|Poor health) became a (constant|growing) (worry|problem) (in|during) the {late_decade}, and {surname} (sold|gave away) (many|most) of {his} (papers|books).",
    "{work} became {his} (best known|most widely read|most admired) work, (reprinted|translated) (several times|into three languages) (during|after) {his} lifetime.",
]
PERSON_LEGACY = [
    "{surname} died in {died} at the age of {age}.",
    "(A street|A school|A memorial) in {birthplace} (is named after|commemorates) ({him}|{surname}).",
    "(Modern historians|Later writers) (regard {surname} as one of the most important {occupation}s|describe {surname} as a leading {occupation}) of the {century} century.",
    "(The papers of|Many letters by) {surname} (are kept|survive) in the (library|archives) of {capital}.",
    "(An exhibition|A conference) (marking|for) the (centenary|anniversary) of {his} (birth|death) was held in {birthplace} in {anniversary}.",
    "(Several|Two) of {his} (pupils|followers) (continued|carried on) {his} work on {subject}.",
    "(A portrait|A bust) of {surname} (hangs|stands) in the town hall of {birthplace}.",
]
RIVER_LEAD = [
    "The '''{river_name}''' is a river in {region}. It (is|runs for) {length} (kilometres|km) long and (flows into|empties into) {mouth}.",
]
RIVER_COURSE = [
    "{river_the} (rises|has its source) in {source} and (flows|runs) (north|south|east|west) (through|past) {first_town}.",
    "(Below|After) {first_town} the (valley|river) (widens|becomes slow and winding), and (it|the river) (passes|flows through) {town}.",
    "{river_the} (reaches|enters) {mouth} (near|below) {last_town}.",
    "(Its|The) (main|largest) tributaries (join it|enter the river) (above|below) {town}.",
    "(The river passes|Along its course it passes) {n_towns} (towns and villages|settlements).",
    "(In its upper course|Near its source) the river (falls steeply|runs fast) (through|between) (narrow gorges|wooded hills), (with|and has) (several|many) small waterfalls.",
    "(The lower river|Its lower course) (is tidal|is slow and broad) (for|over) the last {tidal} kilometres.",
    "(The|Its) (catchment|drainage basin) (covers|is) (about|some) {basin} square kilometres (of|mostly) (farmland|hills and forest).",
    "(A|The) (weir|lock) at {town} (controls|was built to control) the (water level|flow) (for|of) the (mills|boats).",
]
RIVER_HISTORY = [
    "(The river was|Barges used the river as) (an important|the main) trade route (until|before) the (railways|roads) (were built|arrived).",
    "A (great|severe) flood in {flood_year} (caused|did) (heavy|great) damage (along the valley|in {town}).",
    "(Mills|Water mills) (once lined|were built along) (its banks|the lower river) (to grind corn|for paper and cloth).",
    "(The river is|The valley is) (home to|known for) {species}.",
    "(The|A) (canal|navigation) (linking|joining) {river_the} (and|with) (the coast|a neighbouring valley) was (opened|dug) in {canal_year}.",
    "(Pollution|Waste) from (the mills|the tanneries|the mines) (nearly killed|badly harmed) the (fish|river) (in|during) the {bad_decade}, but the water is (much cleaner|clean again) today.",
    "(Anglers|Rowing clubs) (use|have used) the river (since|for more than) (the 19th century|a hundred years).",
    "(Several|Many) (bridges|fords) (cross|crossed) the river (at|near) {town}, (the oldest|one of them) (dating from|built in) the (14th|15th|16th) century.",
]
SPECIES_LEAD = [
    "The '''{common}''' \\({latin}\\) is a (small|medium-sized|rare|common) {kind} (found in|native to) {region}.",
]
SPECIES_DESC = [
    "{size_phrase}",
    "(It|The species) was first described (by|from specimens collected by) {person} in {year}.",
    "(It|The {common}) (prefers|lives in|is found mainly in) {habitat}.",
    "(It|The species) (is|was once) (common|widespread|abundant) (along|near) {river}.",
    "(Its range has|Its numbers have) (declined|fallen) (since|during) the (20th|19th) century (because of|owing to) (drainage|farming|the loss of {habitat}).",
    "(It|The {common}) is (listed as|considered) (vulnerable|near threatened|of least concern) in {region}.",
    "{season_phrase}",
    "(Its|The) (colour|colouring) (is|ranges from) (grey-brown|olive green|pale yellow|reddish brown) (above|on top) (and|with) (paler|white|spotted) (below|underneath).",
    "(The|Its) (scientific|Latin) name (refers to|comes from) (its colour|the river where it was first found|the naturalist who described it).",
    "(Surveys|Counts) in {survey_year} (found|recorded) (about|fewer than) {count} (pairs|sites|colonies) in {region}.",
    "(It|The {common}) (is|can be) (easily|often) (confused|mistaken) (with|for) (the|a) (closely related|similar) {kind} (of|from) the (coast|mountains).",
]
ORG_LEAD = [
    "The '''{org}''' (was|is) a {org_kind} (based in|in) {town}, {region}.",
]
ORG_HISTORY = [
    "(It|The {org_kind}) was founded in {founded} by {founder}.",
    "(By the|In the) {decade} (it employed|it had) (about|some|nearly) {staff} (people|workers|members).",
    "(The {org_kind}|It) (played an important part in|helped to build) the (growth|prosperity) of {town}.",
    "(Its|The) (records|archives) (are now kept|survive) in the (town|regional) (museum|archive).",
    "(A|The) (new|larger) (building|site) (by|near) {river} was (opened|bought) in {move_year}, (when|after) the (old one|first premises) (became too small|burned down).",
    "(During|In) the {bad_decade} the {org_kind} (struggled|nearly closed) (because of|after) (falling demand|a long strike|debts).",
    "(Its|The) (first|early) (directors|members) (included|were mostly) (local merchants|families from {town}|friends of {founder}).",
    "(Today|Since {move_year}) (its|the) (old|former) (building|premises) (is|are) (a listed building|used as offices|part of the museum).",
]
REGION_LEAD = [
    "'''{region_plain}''' is a (province|region) of {country}. Its (largest town|capital) is {capital}.",
]
REGION_BODY = [
    "(The|Its) (landscape|countryside) (ranges from|includes) (low coastal plains|wide river valleys) (to|and) {mountains}.",
    "(The main rivers are|Its largest river is) {river}.",
    "(Farming|Agriculture), {industry} and tourism (are|remain) (the main|important) (industries|sources of work).",
    "(Towns|Other towns) in the (province|region) include {town}.",
    "(The|Its) (provincial|regional) (council|assembly) (meets|sits) in {capital}.",
    "(Most|Much) of the (population|people) (lives|live) in the (river valleys|lowlands) (and|while) the (hills|uplands) are (thinly populated|largely forest).",
]


def region_ctx(w: World, name: str) -> dict[str, Slot]:
    r = w.regions[name]
    rivers = [x for x in w.rivers.values() if x.region == name] or list(w.rivers.values())[:1]
    return {
        "region": link(name),
        "region_plain": name,
        "country": w.country,
        "capital": link(r.capital),
        "mountains": ("the Hallen Hills", "the Kester Range", "the Varn Mountains"),
        "river": [river_link(w, x.name) for x in rivers],
        "industry": [w.towns[t].industry for t in r.towns],
        "town": [link(t) for t in r.towns],
    }


# Plain fact sentences (no Wikipedia-only markup) a web page can use: the reference register.
FACT_POOLS: dict[str, list[list[str]]] = {
    "town": [TOWN_HISTORY, TOWN_GEO, TOWN_ECON, TOWN_CULTURE],
    "person": [PERSON_EARLY, PERSON_CAREER, PERSON_LEGACY],
    "river": [RIVER_COURSE, RIVER_HISTORY],
    "species": [SPECIES_DESC],
    "org": [ORG_HISTORY],
}


def entity_ctx(w: World, kind: str, name: str) -> dict[str, Slot]:
    if kind == "town":
        return town_ctx(w, w.towns[name])
    if kind == "person":
        return person_ctx(w, w.people[name])
    if kind == "river":
        return river_ctx(w, w.rivers[name])
    if kind == "species":
        return species_ctx(w, w.species[name])
    if kind == "org":
        return org_ctx(w, w.orgs[name])
    return region_ctx(w, name)


# ---------------------------------------------------------------------------------------- web registers

REFERENCE_FRAME = [
    "(This page|The following notes) (summarise|collect) what (is known|the records tell us) about {subject_plain}.",
    "(Sources|Records) for this (page|article) (include|are) the parish registers, (old maps|census returns) and (the local newspaper|estate papers).",
    "(Further|More) (information|material) (is available|can be consulted) at the (record office|county archive) in {capital_plain}.",
]

NEWS = [
    "{town} council has (approved|rejected|postponed) plans for a new {facility} (near|beside|opposite) the {landmark}.",
    '"We are (delighted|disappointed|still studying the details)", said {resident}, (a spokesperson for|the leader of|a member of) the council.',
    "(The|This) (scheme|project) (is expected to|will) cost (about|around|more than) {money} and (could|would) (open|be finished) (next year|in {next_year}|within two years).",
    "(Residents|Local people|Shop owners) (have raised|raised) concerns about (traffic|parking|noise|the loss of green space) (on|around) {street}.",
    "(Heavy rain|A storm) (overnight|on Tuesday|at the weekend) (caused|led to) flooding (along|near) {river}, and (several roads|the old bridge) (were|was) closed.",
    "(Police|The fire service) (were called|attended) (after|when) a (fire|small fire|fault) (broke out|was reported) at a (warehouse|house|shop) on {street}.",
    "The {festival} (returns|will return|opens) (this weekend|on Saturday|next month) with (music|stalls|a parade) (in the market square|along the river).",
    "{town} United (beat|lost to) {town2} {win} (on Saturday|in front of a home crowd|after extra time).",
    "{town} United (drew|were held to a draw) {draw} (with|by) {town2} (on Saturday|in a wet midweek game).",
    "(The|A) (report|survey) (published|released) (this week|on Monday) (found|showed) that (house prices|rents|visitor numbers) in {town} (rose|fell|grew) by {percent} per cent (last year|over five years).",
    "{resident}, who has (run|owned) (a bakery|a bookshop|the corner shop) on {street} for {years} years, (will retire|is retiring) (next month|at the end of the year).",
    "(The|A) (bus service|train service) (between|linking) {town} and {town2} (will be|is to be) (cut|extended|restored) from (March|June|September).",
    "(Volunteers|Pupils from the local school) (planted trees|cleared litter|planted a new garden) (along|beside) {river} (on Sunday|last weekend).",
]
BLOG = [
    "We (arrived in|drove into|finally made it to) {town} (late on a|early one) (Friday|Saturday|Sunday) (evening|morning), (tired but happy|after a long drive|in the pouring rain).",
    "(Honestly|To be honest|I have to say), the {landmark} was (the highlight of the trip|a bit of a letdown|even better than the photos).",
    "If you (go|visit|are in the area), (make sure to|don't forget to|you have to) (try|book|check out) {tip}.",
    "I (can't recommend {place} enough|would really recommend {place}|absolutely loved {place}).",
    "(The kids|My partner|We all) (loved|enjoyed|were not so sure about) the (boat trip|museum|long walk up the hill), (but|and) (the views were amazing|the weather held|we were exhausted by lunch).",
    "(Our|The) (hotel|guesthouse|apartment) was (right in the centre|a short walk from the station|a bit out of town), (which was perfect|which was fine|so we took taxis).",
    "(Parking|Getting around) (was easy|was a nightmare|took some planning), so (take the train|arrive early|walk if you can).",
    "(Next time|If we go back) I (think|reckon) we'll (stay longer|come in spring|skip the museum) (and|but) (explore the villages|see more of the coast|try the boat tour).",
    "(Has anyone else|Have you) been to {town}? Let me know (in the comments|what you thought)!",
    "(Prices|Food and drink) (were|are) (reasonable|a little expensive|cheaper than we expected), (about|around) {money_small} for (lunch for two|a coffee and cake).",
]
FORUM = [
    "Has anyone (tried|been to|stayed at) {tip} in {town}? (Thinking of going|We're planning a trip) (next month|in the summer|for a weekend).",
    "(Thanks in advance|Any advice welcome|Cheers)!",
    "(lol|haha|tbh) (we|I) had the same problem (last year|with ours), (ended up calling a local garage|just took the train|went somewhere else in the end).",
    "+1 for {tip}, (definitely|really) worth it.",
    "(Not sure|No idea) (about that|tbh), but the (trains|buses) from {town2} (are|were) (always late|fine|packed) when I (went|used them).",
    "(Edit|EDIT): (found it|sorted now|never mind), (thanks all|cheers guys)!",
    "(I have|We have|I) lived (near|in) {town} for (years|a while) and (honestly|really) {opinion}.",
    "(Does anyone know|Do you know) if the {landmark} (is open|opens) on (Sundays|bank holidays|Mondays)?",
]
SHOP = [
    "The {brand} {product} (is made|is crafted) (in our workshop in|by hand in|in) {town} from {material}.",
    "(Perfect|Ideal|Great) for (everyday use|gifts|the kitchen|walks along {river}), it (comes in|is available in) {colours}.",
    "(Dimensions|Size): {dims} cm. (Weight|Net weight): {grams} g.",
    "(Price|Now only|Sale price): €{price} (incl. VAT|including tax|).",
    "(Free shipping|Free delivery) on orders over €{threshold}. (Ships within|Dispatched in) {days} working days.",
    '★★★★☆ "(Great|Lovely|Good) (quality|product|value), (fast delivery|would buy again|exactly as described)." \\({reviewer}\\)',
    "(Only|Just) {stock} left in stock(, order soon| - order today|).",
]
RECIPE = [
    "Preheat the oven to {temp}°C (and grease a baking tin|and line a tray with paper).",
    "(Mix|Combine|Whisk) the {ingredient} and {ingredient2} in a (large|mixing) bowl (until smooth|until well combined|for two minutes).",
    "(Add|Stir in|Fold in) the {ingredient} (a little at a time|gently|and season with salt and pepper).",
    "(Bake|Cook|Simmer) for {minutes} minutes, (or until golden|stirring now and then|until the sauce thickens).",
    "(Serve|Enjoy) (warm|hot|cold) with {ingredient2} (and a green salad|and fresh bread|on the side).",
    "(This|The) (recipe|dish) (comes from|is a favourite in|is traditional in) {town}, where (it is served|people eat it) (at the autumn fair|on feast days|every Sunday).",
]

FACILITIES = (
    "car park",
    "swimming pool",
    "library",
    "cycle path",
    "housing estate",
    "supermarket",
    "footbridge",
    "sports hall",
)
TIPS = (
    "the boat tour",
    "the Thursday market",
    "the castle walk",
    "the cheese shop on the square",
    "the old pub by the bridge",
    "the river path",
    "the museum café",
)
OPINIONS = (
    "it's a lovely place to live",
    "it's gone downhill a bit",
    "the food is the best thing about it",
    "it's quiet but friendly",
)
PRODUCTS = {
    "tote bag": "100% organic cotton",
    "water bottle": "recycled steel",
    "wool blanket": "lambswool",
    "notebook": "recycled paper",
    "chopping board": "local oak",
    "scarf": "lambswool",
    "mug": "stoneware clay",
    "lamp": "brass and linen",
}
INGREDIENTS = (
    "flour",
    "butter",
    "apples",
    "onions",
    "cream",
    "potatoes",
    "leeks",
    "smoked fish",
    "honey",
    "oats",
    "eggs",
    "cheese",
)
STREET_TAILS = ("Street", "Road", "Lane", "Row", "Gate", "Hill")


def web_ctx(w: World, rng: random.Random, town: Town | None = None) -> dict[str, Slot]:
    """Context for the web registers: a town (and a second one), residents, money, streets, products."""
    t = town or w.towns[rng.choice(list(w.towns))]
    t2 = rng.choice([n for n in w.towns if n != t.name])
    ctx = {k: v for k, v in town_ctx(w, t).items()}
    street = f"{rng.choice(SURNAMES)} {rng.choice(STREET_TAILS)}"
    ctx.update(
        town=t.name,
        town2=t2,
        river=f"the {t.river}",
        region=t.region,
        twin=t.twin,
        person=[p for p in t.people] or [resident(rng)],
        org=[o.name for o in w.orgs.values() if o.town == t.name] or [f"the {t.name} town council"],
        capital=w.regions[t.region].capital,
        capital_plain=w.regions[t.region].capital,
        facility=FACILITIES,
        resident=lambda r: resident(r),
        money=lambda r: f"£{r.randint(2, 40)}.{r.randint(0, 9)} million",
        money_small=lambda r: f"£{r.randint(8, 45)}",
        next_year=lambda r: str(r.randint(2025, 2028)),
        street=street,
        festival=(f"{t.name} Festival", f"{t.name} Summer Fair", "Riverside Festival", "Apple Fair"),
        win=lambda r: f"{(a := r.randint(1, 5))}-{r.randint(0, a - 1)}",
        draw=lambda r: "{0}-{0}".format(r.randint(0, 3)),
        place=("the little café by the bridge", f"the walk along the {t.river}", "the Thursday market"),
        percent=lambda r: str(r.randint(2, 19)),
        years=lambda r: str(r.randint(12, 45)),
        tip=TIPS,
        opinion=OPINIONS,
        brand=(f"{t.name} Works", f"{t.river} & Co.", "Northfield", f"{t.twin} Goods"),
        product=(product := rng.choice(list(PRODUCTS))),
        material=PRODUCTS[product],
        colours=("three colours", "grey, blue and green", "natural and charcoal", "five sizes"),
        dims=lambda r: f"{r.randint(10, 60)} x {r.randint(10, 40)} x {r.randint(2, 20)}",
        grams=lambda r: str(r.randint(80, 1400)),
        price=lambda r: f"{r.randint(6, 120)}.{r.choice(('00', '50', '95', '99'))}",
        threshold=("30", "50", "75"),
        days=("1-2", "2-3", "3-5"),
        reviewer=lambda r: f"{r.choice(FIRST_NAMES)} {r.choice(SURNAMES)[0]}.",
        stock=lambda r: str(r.randint(1, 9)),
        temp=("160", "180", "200", "220"),
        ingredient=INGREDIENTS,
        ingredient2=("milk", "sugar", "fresh herbs", "salt", "black pepper", "garlic", "lemon", "mustard"),
        minutes=lambda r: str(r.randint(10, 70)),
    )
    return ctx


REGISTERS: dict[str, list[str]] = {
    "news": NEWS,
    "blog": BLOG,
    "forum": FORUM,
    "shop": SHOP,
    "recipe": RECIPE,
}


# Share of sentences a page of each register borrows from the encyclopedic pools about its town's recent
# events and sights (which Wikipedia's town articles also tell): what makes perplexity a gradient, not a
# wall. Not the history and geography pools: those are what the reference pages, the classifier's
# positives, are made of.
FACT_SHARE = {
    "news": (0.3, 0.8),
    "blog": (0.1, 0.5),
    "forum": (0.0, 0.15),
    "shop": (0.0, 0.1),
    "recipe": (0.0, 0.2),
}
_FACT_MIX = [*TOWN_RECENT, *TOWN_TOURISM]


def web_paragraphs(
    register: str, ctx: dict[str, Slot], rng: random.Random, n_paras: int, per_para: tuple[int, int]
) -> list[str]:
    """Paragraphs of a register; a page-level share of the sentences are town facts (`FACT_SHARE`)."""
    pool = REGISTERS[register]
    deck = Deck(rng)
    lo, hi = FACT_SHARE.get(register, (0.0, 0.0))
    share = rng.uniform(lo, hi)
    out = []
    for _ in range(n_paras):
        sents = []
        for _ in range(rng.randint(*per_para)):
            src = _FACT_MIX if rng.random() < share else pool
            sents.extend(sentences(src, rng, ctx, 1, deck))
        out.append(" ".join(sents))
    return out


def fact_paragraphs(
    w: World, kind: str, name: str, rng: random.Random, n_paras: int, per_para: tuple[int, int]
) -> list[str]:
    """Paragraphs of plain facts about one entity (the reference register, mentions as links)."""
    ctx = entity_ctx(w, kind, name)
    pools = FACT_POOLS[kind]
    deck = Deck(rng)
    return [paragraph(pools[i % len(pools)], rng, ctx, rng.randint(*per_para), deck) for i in range(n_paras)]


def spam_lines(town: str, rng: random.Random, n: int) -> list[str]:
    """Keyword stuffing, as SEO spam pages do (the perplexity tail)."""
    keys = [
        f"cheap {town} hotels",
        f"best {town} hotel deals",
        f"{town} hotels cheap",
        "book now",
        f"{town} cheap flights",
        "lowest price guaranteed",
        f"hotels in {town}",
        "last minute deals",
        f"{town} hotel booking",
        "best price",
    ]
    return [" ".join(rng.choice(keys) for _ in range(rng.randint(10, 18))) for _ in range(n)]


_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def keyboard_mash(rng: random.Random, words: int) -> str:
    """Letters from neighbouring keys, like a hand run over the keyboard (the far perplexity tail)."""
    out = []
    for _ in range(words):
        row = rng.choice(_ROWS)
        start = rng.randrange(len(row) - 3)
        n = rng.randint(4, 9)
        out.append("".join(row[min(len(row) - 1, start + rng.randint(-1, 3))] for _ in range(n)))
    return " ".join(out)
