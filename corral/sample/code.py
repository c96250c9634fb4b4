"""The sample's GitHub: JSONL records `{"text", "meta": {repo_name, path, license, language, size}}` (the
RedPajama/BigQuery layout), of small repositories written here, plus Python's own standard library.

The generated repositories are MIT, Apache-2.0 and BSD licensed (most files with a licence header
comment, which the recipe removes), with READMEs, configs, tests and build files. Planted for the
recipe: a GPL-3.0 repository and one without a licence (licence filter), a minified bundle and a
generated protobuf module (longest line > 1,000), a generated table with long lines (mean line length
> 100), an ASCII-art banner (alphanumeric fraction < 0.25), a numeric lookup table (alphabetic
characters per token < 1.5), JSON/CSV/SVG data files (extension allowlist), a file that is only a
licence header (empty after header removal), and vendored copies of one file, one of them under a
different header (exact dedup after header removal).

The standard library of the Python running the generator (`sysconfig` "stdlib") goes in as
`python/cpython` under its licence, PSF-2.0: not in LLaMA's Apache/BSD/MIT allowlist, so the licence
filter drops every one of those files. It is real code at scale for that filter; it is not training data.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sysconfig
from pathlib import Path
from string import Template
from typing import Any

from corral.sample.grammar import rng_for
from corral.sample.world import World

HEADERS = {
    "mit": "# Copyright (c) {year} {owner}\n#\n# Permission is hereby granted, free of charge, to any person obtaining a copy\n"
    "# of this software, to deal in the software without restriction (MIT License).\n\n",
    "apache-2.0": '# Copyright {year} {owner}\n#\n# Licensed under the Apache License, Version 2.0 (the "License");\n'
    "# you may not use this file except in compliance with the License.\n"
    "# SPDX-License-Identifier: Apache-2.0\n\n",
    "bsd-3-clause": "# Copyright (c) {year}, {owner}. All rights reserved.\n# SPDX-License-Identifier: BSD-3-Clause\n\n",
    "gpl-3.0": "# Copyright (C) {year} {owner}\n# This program is free software: you can redistribute it and/or modify it under\n"
    "# the terms of the GNU General Public License as published by the Free Software Foundation.\n\n",
}

PY_FUNCS = [
    '''def moving_average(values: list[float], window: int = $n) -> list[float]:
    """Mean of each run of `window` consecutive $things (shorter at the start)."""
    out = []
    total = 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out
''',
    '''def parse_row(line: str, sep: str = ",") -> dict[str, str]:
    """One line of a $thing export as a dict; quoted fields keep their separators."""
    fields, field, quoted = [], [], False
    for ch in line.rstrip("\\n"):
        if ch == '"':
            quoted = not quoted
        elif ch == sep and not quoted:
            fields.append("".join(field))
            field = []
        else:
            field.append(ch)
    fields.append("".join(field))
    return dict(zip(COLUMNS, fields))
''',
    '''def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two $things (haversine formula)."""
    r = 6371.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))
''',
    '''def retry(fn, attempts: int = $n, delay: float = 0.5):
    """Call `fn` until it succeeds, waiting twice as long after each failure."""
    for attempt in range(attempts):
        try:
            return fn()
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * 2**attempt)
''',
    '''def group_by(items, key):
    """Group $things by `key(item)`, keeping their order inside each group."""
    groups: dict = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups
''',
    '''def load_$things(path: str) -> list[dict]:
    """Read the $things file (one JSON object per line), skipping blank lines."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
''',
    '''def top_n(counts: dict[str, int], n: int = $n) -> list[tuple[str, int]]:
    """The `n` most common $things, ties broken by name."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
''',
    '''def normalise_name(name: str) -> str:
    """Lower-case a $thing name and drop accents, so 'Élde' and 'elde' match."""
    decomposed = unicodedata.normalize("NFD", name.strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
''',
    '''def daily_means(readings: list[tuple[str, float]]) -> dict[str, float]:
    """Mean $thing reading per day; timestamps are ISO strings."""
    sums: dict[str, list[float]] = {}
    for stamp, value in readings:
        sums.setdefault(stamp[:10], []).append(value)
    return {day: sum(v) / len(v) for day, v in sorted(sums.items())}
''',
    '''def above_threshold(levels: list[float], threshold: float = $x) -> list[int]:
    """Indices where the $thing level first rises above `threshold` (start of each event)."""
    events = []
    for i, level in enumerate(levels):
        if level > threshold and (i == 0 or levels[i - 1] <= threshold):
            events.append(i)
    return events
''',
    '''class $Thing:
    """A $thing as the survey records it."""

    def __init__(self, name: str, count: int = 0) -> None:
        self.name = name
        self.count = count

    def add(self, n: int = 1) -> None:
        if n < 0:
            raise ValueError(f"cannot add {n} $things")
        self.count += n

    def __repr__(self) -> str:
        return f"$Thing({self.name!r}, count={self.count})"
''',
    '''def chunked(items: list, size: int = $n):
    """Yield lists of `size` $things (the last one shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
''',
]
PY_MAIN = """

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="$desc")
    parser.add_argument("path", help="input file")
    parser.add_argument("--limit", type=int, default=$n)
    args = parser.parse_args(argv)
    rows = load_$things(args.path) if "load_$things" in globals() else []
    print(f"{len(rows[: args.limit])} $things")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
"""
JS_FUNCS = [
    """export function debounce(fn, wait = $n) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), wait);
  };
}
""",
    """export async function fetchJson(url, retries = 3) {
  for (let i = 0; i < retries; i++) {
    const res = await fetch(url);
    if (res.ok) return res.json();
    await new Promise((r) => setTimeout(r, 250 * 2 ** i));
  }
  throw new Error(`could not load ${url}`);
}
""",
    """export function renderTable($things, columns) {
  const rows = $things.map((t) => `<tr>${columns.map((c) => `<td>${t[c]}</td>`).join("")}</tr>`);
  return `<table><thead><tr>${columns.map((c) => `<th>${c}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}
""",
    """export function formatDate(date) {
  const d = new Date(date);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}
""",
]
C_FILE = """#include <stdint.h>
#include <string.h>

#define RING_SIZE $n

/* A ring buffer of $thing readings: the last RING_SIZE values, oldest overwritten first. */
typedef struct {
    double values[RING_SIZE];
    size_t head;
    size_t count;
} ring_t;

void ring_push(ring_t *r, double v) {
    r->values[r->head] = v;
    r->head = (r->head + 1) % RING_SIZE;
    if (r->count < RING_SIZE) r->count++;
}

double ring_mean(const ring_t *r) {
    double sum = 0.0;
    for (size_t i = 0; i < r->count; i++) sum += r->values[i];
    return r->count ? sum / (double)r->count : 0.0;
}

/* Adler-32 checksum of a record, to detect torn writes on the logger's flash card. */
uint32_t checksum(const uint8_t *data, size_t len) {
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < len; i++) {
        a = (a + data[i]) % 65521;
        b = (b + a) % 65521;
    }
    return (b << 16) | a;
}
"""
GO_FILE = """package main

import (
	"encoding/json"
	"log"
	"net/http"
)

// $Thing is one record served by the API.
type $Thing struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func list$Things(w http.ResponseWriter, r *http.Request) {
	items := []$Thing{{Name: "$example", Count: $n}}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(items); err != nil {
		log.Printf("encode: %v", err)
	}
}

func main() {
	http.HandleFunc("/$things", list$Things)
	log.Fatal(http.ListenAndServe(":8080", nil))
}
"""
README = """# $repo

$desc.

## Install

```sh
pip install -e .
```

## Usage

```sh
python -m $pkg data/$things.jsonl --limit $n
```

The data come from the $source. Pull requests are welcome; please run the tests first (`pytest`).
"""
SHELL = """#!/usr/bin/env bash
# Fetch the latest $thing export and check it before publishing.
set -euo pipefail
out="${1:-data}"
mkdir -p "$out"
curl -fsSL "https://data.valdoria.gov/$things/latest.jsonl" -o "$out/$things.jsonl"
python -m $pkg "$out/$things.jsonl" --limit 10
echo "ok: $(wc -l < "$out/$things.jsonl") $things"
"""
MAKEFILE = """.PHONY: test lint

test:
\tpython -m pytest -q

lint:
\truff check .
"""
CI = """name: ci
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install -e . pytest
      - run: pytest -q
"""
REPOS = [
    (
        "valdoria-open-data/census-tools",
        "mit",
        "census_tools",
        "town",
        "Tools for the census returns of the towns of Valdoria",
        "Valdoria Statistics Office",
    ),
    (
        "river-gauges/gauge-reader",
        "apache-2.0",
        "gauge_reader",
        "gauge",
        "Read and clean river gauge logs",
        "river authority's gauge network",
    ),
    (
        "fenwick-lab/birdcount",
        "bsd-3-clause",
        "birdcount",
        "sighting",
        "Count birds from survey sheets",
        "regional bird survey",
    ),
    (
        "elde-railway/timetables",
        "mit",
        "timetables",
        "train",
        "Timetables of the valley railways",
        "railway companies' timetables",
    ),
    (
        "heritage-trust/archive-index",
        "apache-2.0",
        "archive_index",
        "record",
        "An index of the heritage trust's archive",
        "trust's archive catalogue",
    ),
    (
        "kestrel/weather-station",
        "bsd-2-clause",
        "weather_station",
        "reading",
        "Firmware and scripts for a small weather station",
        "station's own sensors",
    ),
    (
        "market-towns/stall-booking",
        "mit",
        "stall_booking",
        "stall",
        "Booking stalls at the weekly markets",
        "market offices",
    ),
    ("floodwatch/alerts", "apache-2.0", "alerts", "alert", "Flood alerts from river levels", "gauge network"),
]


def _recomment(header: str, mark: str) -> str:
    """A `#` licence header in another language's comment syntax."""
    lines = [mark + line[1:] if line.startswith("#") else line for line in header.split("\n")]
    return "\n".join(lines)


def _sub(template: str, **kw: Any) -> str:
    return Template(template).safe_substitute(**kw)


def _python_module(rng: random.Random, thing: str, desc: str, n_funcs: int) -> str:
    funcs = rng.sample(PY_FUNCS, n_funcs)
    body = "\n\n".join(
        _sub(
            f,
            thing=thing,
            things=thing + "s",
            Thing=thing.capitalize(),
            n=rng.randint(3, 30),
            x=f"{rng.uniform(0.5, 9.5):.1f}",
        )
        for f in funcs
    )
    head = f'"""{desc}."""\n\nfrom __future__ import annotations\n\nimport argparse\nimport json\nimport math\nimport time\nimport unicodedata\n\n'
    head += f'COLUMNS = ("name", "{thing}", "date", "value")\n\n\n'
    return head + body + _sub(PY_MAIN, desc=desc, things=thing + "s", n=rng.randint(5, 50))


def _test_module(pkg: str, thing: str) -> str:
    return (
        f"from {pkg}.core import chunked, group_by, top_n\n\n\n"
        "def test_chunked_keeps_every_item():\n"
        "    assert [len(c) for c in chunked(list(range(7)), 3)] == [3, 3, 1]\n\n\n"
        "def test_group_by_keeps_order():\n"
        f"    {thing}s = [('a', 1), ('b', 2), ('a', 3)]\n"
        f"    assert group_by({thing}s, key=lambda t: t[0])['a'] == [('a', 1), ('a', 3)]\n\n\n"
        "def test_top_n_breaks_ties_by_name():\n"
        "    assert top_n({'b': 2, 'a': 2, 'c': 1}, 2) == [('a', 2), ('b', 2)]\n"
    )


def repo_files(
    repo: str, licence: str | None, pkg: str, thing: str, desc: str, source: str, seed: int
) -> list[tuple[str, str, str]]:
    """(path, language, text) of one generated repository."""
    rng = rng_for(seed, "repo", repo)
    owner = repo.split("/")[0].replace("-", " ").title()
    header = HEADERS.get(licence or "", "").format(year=rng.randint(2015, 2024), owner=owner)
    files: list[tuple[str, str, str]] = []
    core = _python_module(rng, thing, desc, len(PY_FUNCS))  # every function: tests/test_core.py uses three
    files.append((f"{pkg}/core.py", "Python", (header if rng.random() < 0.8 else "") + core))
    files.append(
        (
            f"{pkg}/__init__.py",
            "Python",
            header + f'"""{desc}."""\n\n__version__ = "0.{rng.randint(1, 9)}.{rng.randint(0, 20)}"\n',
        )
    )
    for k in range(rng.randint(1, 3)):
        files.append(
            (
                f"{pkg}/{rng.choice(('io', 'stats', 'clean', 'report', 'cli'))}_{k}.py",
                "Python",
                (header if rng.random() < 0.6 else "") + _python_module(rng, thing, desc, rng.randint(2, 5)),
            )
        )
    files.append(("tests/test_core.py", "Python", _test_module(pkg, thing)))
    files.append(
        (
            "README.md",
            "Markdown",
            _sub(
                README,
                repo=repo.split("/")[1],
                desc=desc,
                pkg=pkg,
                things=thing + "s",
                n=rng.randint(5, 50),
                source=source,
            ),
        )
    )
    files.append(("Makefile", "Makefile", MAKEFILE))
    files.append((".github/workflows/ci.yml", "YAML", CI))
    files.append(
        (f"scripts/fetch_{thing}s.sh", "Shell", _sub(SHELL, thing=thing, things=thing + "s", pkg=pkg))
    )
    if rng.random() < 0.6:
        js = "\n".join(_sub(f, things=thing + "s", n=rng.randint(100, 500)) for f in rng.sample(JS_FUNCS, 3))
        files.append(("web/app.js", "JavaScript", _recomment(header, "//") + js))
    if rng.random() < 0.5:
        block = "/*\n" + _recomment(header, " *").rstrip("\n") + "\n */\n" if header else ""
        files.append(
            (
                f"firmware/{thing}_ring.c",
                "C",
                block + _sub(C_FILE, thing=thing, n=rng.choice((16, 32, 64, 128))),
            )
        )
    if rng.random() < 0.4:
        files.append(
            (
                "server/main.go",
                "Go",
                _recomment(header, "//")
                + _sub(
                    GO_FILE,
                    Thing=thing.capitalize(),
                    Things=thing.capitalize() + "s",
                    things=thing + "s",
                    example=owner,
                    n=rng.randint(1, 99),
                ),
            )
        )
    return files


def _planted_files(seed: int) -> list[tuple[str, str, str, str | None, str]]:
    """(repo, path, language, licence, kind) + text for the files each recipe check must drop."""
    rng = rng_for(seed, "repo-planted")
    js = "".join(_sub(f, things="items", n=300) for f in JS_FUNCS)
    minified = " ".join(js.split()).replace("; ", ";").replace(" = ", "=") * 4
    numbers = ",".join(str(rng.randint(0, 999)) for _ in range(3000))
    table_rows = "\n".join(
        "    " + ", ".join(f"{rng.randint(0, 255):3d}" for _ in range(16)) + "," for _ in range(120)
    )
    long_rows = "\n".join(
        f'    ("{rng.getrandbits(64):016x}", "{"-".join(f"{rng.getrandbits(32):08x}" for _ in range(12))}"),'
        for _ in range(60)
    )
    banner = (
        "\n".join("# " + "".join(rng.choice("=#*-+|/\\_ ") for _ in range(70)) for _ in range(40))
        + "\nBANNER = 1\n"
    )
    mit = HEADERS["mit"].format(year=2021, owner="Valdoria Open Data")
    apache = HEADERS["apache-2.0"].format(year=2022, owner="Floodwatch")
    vendored = _sub(PY_FUNCS[1], thing="row") + "\n\n" + _sub(PY_FUNCS[4], things="rows")
    return [
        ("floodwatch/alerts", "web/bundle.min.js", "JavaScript", "apache-2.0", "minified", minified),
        (
            "river-gauges/gauge-reader",
            "gauge_reader/schema_pb2.py",
            "Python",
            "apache-2.0",
            "generated",
            f"# Generated by the protocol buffer compiler.  DO NOT EDIT!\nDESCRIPTOR = b'{numbers}'\n",
        ),
        (
            "valdoria-open-data/census-tools",
            "census_tools/_ids.py",
            "Python",
            "mit",
            "long_lines",
            "IDS = [\n" + long_rows + "\n]\n",
        ),
        (
            "kestrel/weather-station",
            "firmware/lookup.c",
            "C",
            "bsd-2-clause",
            "numeric_table",
            "static const int TABLE[] = {\n" + table_rows + "\n};\n",
        ),
        ("market-towns/stall-booking", "stall_booking/banner.py", "Python", "mit", "ascii_art", banner),
        (
            "valdoria-open-data/census-tools",
            "data/towns.json",
            "JSON",
            "mit",
            "data_file",
            json.dumps(
                [{"name": f"town{i}", "population": rng.randint(300, 90000)} for i in range(40)], indent=1
            ),
        ),
        (
            "river-gauges/gauge-reader",
            "data/gauges.csv",
            "CSV",
            "apache-2.0",
            "data_file",
            "id,name,lat,lon\n"
            + "\n".join(f"{i},gauge{i},{rng.uniform(50, 54):.4f},{rng.uniform(3, 9):.4f}" for i in range(50)),
        ),
        (
            "heritage-trust/archive-index",
            "docs/logo.svg",
            "SVG",
            "apache-2.0",
            "data_file",
            '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="30"/></svg>\n',
        ),
        (
            "fenwick-lab/birdcount",
            "birdcount/compat/__init__.py",
            "Python",
            "bsd-3-clause",
            "header_only",
            HEADERS["bsd-3-clause"].format(year=2020, owner="Fenwick Lab"),
        ),
        (
            "valdoria-open-data/census-tools",
            "census_tools/vendor/csvrow.py",
            "Python",
            "mit",
            "vendored",
            mit + vendored,
        ),
        (
            "floodwatch/alerts",
            "alerts/vendor/csvrow.py",
            "Python",
            "apache-2.0",
            "vendored",
            apache + vendored,
        ),
        ("elde-railway/timetables", "timetables/vendor/csvrow.py", "Python", "mit", "vendored", vendored),
        (
            "oldtimer/river-sim",
            "river_sim/model.py",
            "Python",
            "gpl-3.0",
            "gpl",
            HEADERS["gpl-3.0"].format(year=2019, owner="Old Timer")
            + _python_module(rng, "river", "Simulate a river", 4),
        ),
        (
            "oldtimer/river-sim",
            "river_sim/plot.py",
            "Python",
            "gpl-3.0",
            "gpl",
            _python_module(rng, "level", "Plot levels", 3),
        ),
        (
            "oldtimer/river-sim",
            "README.md",
            "Markdown",
            "gpl-3.0",
            "gpl",
            "# river-sim\n\nA river simulator (GPL-3.0).\n",
        ),
        (
            "someone/untitled",
            "main.py",
            "Python",
            None,
            "no_licence",
            _python_module(rng, "thing", "Scratch code", 3),
        ),
        (
            "someone/untitled",
            "utils.py",
            "Python",
            None,
            "no_licence",
            _python_module(rng, "item", "Helpers", 2),
        ),
    ]


def stdlib_files(max_files: int, max_bytes: int = 24_000) -> list[tuple[str, str]]:
    """(path, text) of the running Python's top-level stdlib modules, in name order (small ones first cut)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for name in sorted(os.listdir(root)):
        path = root / name
        if (
            name.endswith(".py")
            and path.is_file()
            and not path.is_symlink()
            and path.stat().st_size <= max_bytes
        ):
            out.append((f"Lib/{name}", path.read_text(encoding="utf-8", errors="replace")))
        if len(out) >= max_files:
            break
    return out


def _record(text: str, repo: str, path: str, language: str, licence: str | None) -> dict[str, Any]:
    return {
        "text": text,
        "meta": {
            "repo_name": repo,
            "path": path,
            "license": licence,
            "language": language,
            "size": len(text.encode("utf-8")),
        },
    }


def write_github(w: World, out: Path, seed: int, scale: float, stdlib: int) -> dict[str, Any]:
    """`github-demo.jsonl.gz` (generated repositories + planted files) and `github-cpython-lib.jsonl.gz`."""
    out.mkdir(parents=True, exist_ok=True)
    planted: dict[str, Any] = {"files": [], "kinds": {}}
    records: list[tuple[str, dict[str, Any]]] = []
    n_repos = max(4, round(len(REPOS) * scale))
    for repo, licence, pkg, thing, desc, source in REPOS[:n_repos]:
        for path, lang, text in repo_files(repo, licence, pkg, thing, desc, source, seed):
            records.append(("code", _record(text, repo, path, lang, licence)))
    for repo, path, lang, licence, kind, text in _planted_files(seed):
        records.append((kind, _record(text, repo, path, lang, licence)))
    order = list(range(len(records)))
    rng_for(seed, "github-order").shuffle(order)
    name = "github-demo.jsonl.gz"
    lines = []
    for line_no, i in enumerate(order, start=1):
        kind, rec = records[i]
        lines.append(json.dumps(rec, ensure_ascii=False, sort_keys=True))
        planted["kinds"].setdefault(kind, []).append(f"{name}:{line_no}")
    (out / name).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
    planted["files"].append(name)
    if stdlib:
        name = "github-cpython-lib.jsonl.gz"
        files = stdlib_files(stdlib)
        lines = [
            json.dumps(
                _record(text, "python/cpython", path, "Python", "PSF-2.0"), ensure_ascii=False, sort_keys=True
            )
            for path, text in files
        ]
        (out / name).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), mtime=0))
        planted["files"].append(name)
        planted["kinds"]["stdlib_psf"] = [f"{name}:{i}" for i in range(1, len(files) + 1)]
    return planted
