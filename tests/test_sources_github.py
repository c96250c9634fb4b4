"""GitHub reader (JSONL and checkout directory), licence detection and the code recipe."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import pytest

from filters.document import Document
from filters.sources.base import ReaderError, ReadStats
from filters.sources.github import (
    clean_github,
    detect_licence,
    extension_allowed,
    normalize_licence,
    quality_reason,
    read_github,
    read_github_dir,
    strip_licence_header,
)
from filters.sources.registry import get_reader

MIT_TEXT = """MIT License

Copyright (c) 2024 Some Person

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.
"""
BSD3_TEXT = """Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:
3. Neither the name of the copyright holder nor the names of its contributors may be used to endorse
"""
CODE = '''def add(first_number, second_number):
    """Return the sum of two numbers."""
    return first_number + second_number


def greet(name):
    return "hello " + name
'''


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("Apache-2.0", "apache-2.0"),
        ("Apache License 2.0", "apache-2.0"),
        ("apache license, version 2.0", "apache-2.0"),
        ("MIT", "mit"),
        ("MIT License", "mit"),
        ("mit", "mit"),
        ("BSD-3-Clause", "bsd-3-clause"),
        ('BSD 3-Clause "New" or "Revised" License', "bsd-3-clause"),
        ("bsd-2-clause", "bsd-2-clause"),
        ('BSD 2-Clause "Simplified" License', "bsd-2-clause"),
        ("GPL-3.0", "gpl-3.0"),
        ("NOASSERTION", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_licence(spelling, expected):
    assert normalize_licence(spelling) == expected


def test_detect_licence_from_text():
    assert detect_licence(MIT_TEXT) == "mit"
    assert (
        detect_licence("Apache License\n  Version 2.0, January 2004\n http://www.apache.org/licenses/")
        == "apache-2.0"
    )
    assert detect_licence(BSD3_TEXT) == "bsd-3-clause"
    assert detect_licence(BSD3_TEXT.split("3.")[0]) == "bsd-2-clause"
    assert detect_licence("GNU GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007") == "gpl-3.0"
    assert detect_licence("Just a readme.") is None


def test_strip_licence_header_styles():
    py = "#!/usr/bin/env python\n# Copyright 2020 Foo\n# Licensed under the Apache License, Version 2.0\n\nimport os\n"
    assert strip_licence_header(py) == "#!/usr/bin/env python\nimport os\n"
    c = "/*\n * Copyright (c) 2019 Bar. All rights reserved.\n * SPDX-License-Identifier: MIT\n */\n#include <stdio.h>\n"
    assert strip_licence_header(c) == "#include <stdio.h>\n"
    go = "// Copyright 2021 The Authors.\n// Use of this source code is governed by a BSD license.\n\npackage main\n"
    assert strip_licence_header(go) == "package main\n"
    plain_comment = "# Compute the answer.\nx = 42\n"
    assert strip_licence_header(plain_comment) == plain_comment  # ordinary comments stay


def test_quality_heuristics_each_reason():
    assert quality_reason(CODE) is None
    assert quality_reason("x = '" + "a" * 1001 + "'\n") == "max_line_length"
    assert quality_reason(("value = " + "b" * 120 + "\n") * 5) == "mean_line_length"
    assert quality_reason("{ } ( ) ; ; ; = = + - * / [ ] 1\n" * 5) == "alnum_fraction"
    assert quality_reason("0x1 0x2 0x3 0x4 0x5 0x6 0x7 0x8\n" * 5) == "alpha_per_token"
    assert quality_reason("\n\n") == "empty"


def test_extension_allowlist():
    assert (
        extension_allowed("src/main.py") and extension_allowed("lib/x.RS") and extension_allowed("Makefile")
    )
    assert not extension_allowed("data/table.csv") and not extension_allowed("package-lock.json")
    assert not extension_allowed("README") and not extension_allowed(None)


def _doc(path: str, text: str = CODE, licence: str = "MIT", i: int = 0) -> Document:
    return Document(f"f:{i}", "github", text, {"repo_name": "o/r", "path": path, "license": licence})


def test_clean_github_drops_with_reasons():
    stats = ReadStats()
    header = "# Copyright 2020 Foo\n# SPDX-License-Identifier: MIT\n"
    docs = [
        _doc("a.py", header + CODE, i=1),
        _doc("b.py", CODE, i=2),  # same content once the header is removed
        _doc("c.py", licence="GPL-3.0", i=3),
        _doc("d.py", licence="", i=4),
        _doc("e.csv", i=5),
        _doc("f.py", "z" * 2000, i=6),
    ]
    kept = [out for d in docs if (out := clean_github(d, stats))]
    assert [k.id for k in kept] == ["f:1", "f:2"]
    assert kept[0].text == CODE and kept[0].meta["licence"] == "mit" and kept[0].meta["header_removed"]
    # the same content once the header is gone: the build's whole-source exact dedup keeps one of them
    assert kept[0].meta["content_sha256"] == kept[1].meta["content_sha256"]
    assert stats.dropped == {
        "licence_not_allowed": 1,
        "licence_unknown": 1,
        "extension_not_allowed": 1,
        "max_line_length": 1,
    }


def test_read_github_jsonl_with_bad_lines():
    lines = [
        json.dumps({"text": CODE, "meta": {"repo_name": "o/r", "path": "a.py", "license": "Apache-2.0"}}),
        "not json at all",
        json.dumps({"meta": {"path": "no_text.py"}}),
        json.dumps({"content": CODE, "repo_name": "o/s", "path": "b.py", "license": "mit"}),
    ]
    data = gzip.compress(("\n".join(lines) + "\n").encode())
    stats = ReadStats()
    docs = list(read_github(io.BytesIO(data), "code.jsonl.gz", stats))
    assert [d.id for d in docs] == ["code.jsonl.gz:1", "code.jsonl.gz:4"]
    assert docs[0].meta["licence"] == "apache-2.0" and docs[1].meta["licence"] == "mit"
    assert docs[1].meta["repo_name"] == "o/s"
    assert stats.dropped == {"invalid_json": 1, "missing_text": 1}
    assert [dl.position for dl in stats.dead_letters] == ["line 2", "line 3"]
    with pytest.raises(ReaderError):
        list(read_github(io.BytesIO(data[: len(data) // 2]), "code.jsonl.gz", ReadStats()))
    assert list(read_github(io.BytesIO(b""), "empty.jsonl", ReadStats())) == []


def test_read_github_dir(tmp_path: Path):
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "config").write_text('[remote "origin"]\n\turl = https://github.com/acme/widgets.git\n')
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / "LICENSE").write_text(MIT_TEXT)
    (repo / "src").mkdir()
    (repo / "src" / "util.py").write_text(CODE)
    (repo / "src" / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (repo / "src" / "latin.py").write_bytes(b"# caf\xe9\nx = 1\n")
    outside = tmp_path / "outside.py"
    outside.write_text("secret = 1\n")
    os.symlink(outside, repo / "src" / "link.py")
    stats = ReadStats()
    docs = list(read_github_dir(str(repo), stats))
    assert [d.id for d in docs] == [
        "acme/widgets:LICENSE",
        "acme/widgets:src/latin.py",
        "acme/widgets:src/util.py",
    ]
    assert all(d.meta["licence"] == "mit" and d.meta["licence_file"] == "LICENSE" for d in docs)
    assert stats.dropped == {"binary_file": 1, "symlink": 1}
    assert stats.repaired["invalid_utf8"] == 1
    assert not any("secret" in d.text for d in docs)
    kept = [k for d in docs if (k := clean_github(d, stats))]
    assert [k.meta["path"] for k in kept] == [
        "src/util.py"
    ]  # LICENSE has no allowed extension; latin.py is tiny


def test_registry():
    spec = get_reader("github")
    assert spec.load_reader() is read_github and spec.load_recipe() is clean_github
    assert spec.load_dir_reader() is read_github_dir


@pytest.mark.realdata
def test_real_github_sample(shared_data: Path):
    path = shared_data / "github_code" / "github_4repos.jsonl.gz"
    runs = []
    for _ in range(2):
        stats = ReadStats()
        with path.open("rb") as f:
            docs = list(read_github(f, path.name, stats))
        kept = [k for d in docs if (k := clean_github(d, stats))]
        runs.append((docs, kept, stats))
    docs, kept, stats = runs[0]
    assert len(docs) == 743 == stats.emitted
    assert [k.id for k in runs[1][1]] == [k.id for k in kept]
    assert {d.meta["licence"] for d in docs} == {"apache-2.0", "mit"}
    assert len(kept) + sum(stats.dropped.values()) == 743
    assert 600 < len(kept) < 743
    assert len({k.meta["content_sha256"] for k in kept}) < len(
        kept
    )  # copies left for the build's exact dedup
    assert not any(k.text.lstrip().lower().startswith(("# copyright", "// copyright")) for k in kept)
