"""StackExchange Posts.xml reader: join, numeric score order, HTML, archives, bad rows, real sites."""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import py7zr
import pytest

from filters.sources.base import ReaderError, ReadStats
from filters.sources.stackexchange import (
    DEFAULT_SITES,
    html_to_text,
    read_stackexchange,
    select_site_files,
    site_from_filename,
)

NAME = "se_tiny.stackexchange.Posts.xml"


def _read(data: bytes, name: str = NAME, **kwargs) -> tuple[list, ReadStats]:
    stats = ReadStats()
    return list(read_stackexchange(io.BytesIO(data), name, stats, **kwargs)), stats


@pytest.fixture
def posts(fixtures_dir: Path) -> bytes:
    return (fixtures_dir / NAME).read_bytes()


def test_answers_sorted_by_numeric_score(posts: bytes) -> None:
    docs, stats = _read(posts)
    assert [d.id for d in docs] == ["se_tiny.stackexchange.com:1", "se_tiny.stackexchange.com:9"]
    first = docs[0]
    assert first.meta["answer_scores"] == [10, 9, 2]  # string sorting would give 9, 2, 10
    assert first.meta["site"] == "se_tiny.stackexchange.com"
    assert first.meta["tags"] == ["fencing", "livestock"]
    assert first.text == (
        "Q: How do I fence a corral?\nI need a round pen. Options:\n- wood\n- steel\n"
        "A: Answer scoring ten.\ndef post(n):\n    return n * 2\n"
        "A: Answer scoring nine.\nA: Answer scoring two."
    )
    assert docs[1].text == "Q: Is a kraal the same thing?\nUnanswered question."
    assert stats.emitted == 2


def test_bad_rows_and_orphans_are_counted(posts: bytes) -> None:
    _docs, stats = _read(posts)
    assert stats.dropped == {
        "stackexchange_bad_row": 2,
        "stackexchange_other_post_type": 1,
        "stackexchange_orphan_answer": 1,
    }
    positions = sorted(d.position for d in stats.dead_letters)
    assert positions == ["line 11", "line 8"]
    assert any("Title" in d.detail for d in stats.dead_letters)
    assert any("ParentId" in d.detail for d in stats.dead_letters)


def test_gzip_and_7z_give_the_same_documents(posts: bytes, tmp_path: Path) -> None:
    expected, _ = _read(posts)
    docs, _ = _read(gzip.compress(posts), NAME + ".gz")
    assert [(d.id, d.text) for d in docs] == [(d.id, d.text) for d in expected]
    archive = tmp_path / "se_tiny.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w") as out:
        out.writestr(posts, "Posts.xml")
        out.writestr(b"<users/>", "Users.xml")
    docs, _ = _read(archive.read_bytes(), str(archive))
    assert [(d.id, d.text) for d in docs] == [(d.id, d.text) for d in expected]


def test_ids_stable(posts: bytes) -> None:
    assert [(d.id, d.text) for d in _read(posts)[0]] == [(d.id, d.text) for d in _read(posts)[0]]


def test_site_names_and_selection() -> None:
    assert site_from_filename("/d/beer.stackexchange.Posts.xml.gz") == "beer.stackexchange.com"
    assert site_from_filename("beer.stackexchange.com.7z") == "beer.stackexchange.com"
    assert site_from_filename("stackoverflow.com-Posts.7z") == "stackoverflow.com"
    assert site_from_filename("/dumps/mathoverflow.net/Posts.xml") == "mathoverflow.net"
    assert len(DEFAULT_SITES) == 28 and len(set(DEFAULT_SITES)) == 28
    paths = ["a/beer.stackexchange.com.7z", "a/superuser.com.7z", "a/math.stackexchange.com.7z"]
    assert select_site_files(paths) == ["a/superuser.com.7z", "a/math.stackexchange.com.7z"]
    assert select_site_files(paths, None) == paths


def test_site_filter_inside_reader_counts_drops(posts: bytes) -> None:
    docs, stats = _read(posts, sites=DEFAULT_SITES)
    assert docs == [] and stats.dropped["stackexchange_site_not_selected"] == 2
    docs, _ = _read(posts, sites=["se_tiny.stackexchange.com"])
    assert len(docs) == 2


def test_html_to_text() -> None:
    html = "<p>Use <code>x</code>:</p><ol><li>one</li><li>two <em>b</em></li></ol><pre><code>a\n\n  b\n</code></pre>"
    assert html_to_text(html) == "Use x:\n- one\n- two b\na\n\n  b"
    assert html_to_text("") == ""


def test_truncated_gzip(posts: bytes) -> None:
    rows = "".join(
        f'<row Id="{i}" PostTypeId="1" Score="1" Title="T{i}" Body="&lt;p&gt;body {i}&lt;/p&gt;" />\n'
        for i in range(1, 4000)
    )
    data = gzip.compress(f"<posts>\n{rows}</posts>\n".encode())
    with pytest.raises(ReaderError, match=r"cut\.Posts\.xml\.gz at byte \d+"):
        _read(data[: len(data) // 2], "cut.Posts.xml.gz")


def test_malformed_xml_and_entity_bomb_and_empty(posts: bytes) -> None:
    broken = posts.replace(b'<row Id="9"', b'<row Id="9" Id="9"')
    with pytest.raises(ReaderError, match=r"line 10, column \d+"):
        _read(broken)
    bomb = b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><posts/>'
    with pytest.raises(ReaderError, match="DTD"):
        _read(bomb)
    with pytest.raises(ReaderError, match="empty"):
        _read(b"")


def test_invalid_utf8_in_body(posts: bytes) -> None:
    docs, stats = _read(posts.replace(b"Unanswered question.", b"Unanswered \xc3 question."))
    assert "Unanswered \ufffd question." in docs[1].text
    assert stats.repaired["invalid_utf8"] == 1


@pytest.mark.realdata
@pytest.mark.parametrize("site", ["beer", "coffee"])
def test_real_sites(shared_data: Path, site: str) -> None:
    path = shared_data / "stackexchange" / f"{site}.stackexchange.Posts.xml.gz"
    raw = gzip.decompress(path.read_bytes()).decode("utf-8-sig")
    n_questions = len(re.findall(r'<row [^>]*PostTypeId="1"', raw))
    answers = re.findall(r'<row [^>]*PostTypeId="2"', raw)
    stats = ReadStats()
    with path.open("rb") as handle:
        docs = list(read_stackexchange(handle, path.name, stats))
    assert len(docs) == n_questions and stats.emitted == n_questions
    assert not stats.dead_letters
    assert sum(len(d.meta["answer_ids"]) for d in docs) + stats.dropped["stackexchange_orphan_answer"] == len(
        answers
    )
    for doc in docs:
        scores = doc.meta["answer_scores"]
        assert scores == sorted(scores, reverse=True)
        assert doc.text.startswith("Q: ") and doc.text.count("\nA: ") >= len(scores)
        assert "<p>" not in doc.text
        assert doc.meta["site"] == f"{site}.stackexchange.com"
    with path.open("rb") as handle:
        again = [d.id for d in read_stackexchange(handle, path.name, ReadStats())]
    assert again == [d.id for d in docs]
