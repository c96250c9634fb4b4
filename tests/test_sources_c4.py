"""C4 JSON reader and the C4 recipe, on generated JSONL (plain and gzip) and the real samples."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from filters.sources.base import ReaderError, ReadStats
from filters.sources.c4 import clean_c4, read_c4_json
from filters.sources.registry import get_reader

GOOD = (
    "The committee met on Tuesday to discuss the new library budget.\n"
    "Members agreed that the reading room needs better lighting this year.\n"
    "A final vote on the proposal will take place next month in the town hall."
)
RECORDS = [
    {"text": GOOD, "url": "http://example.org/1", "timestamp": "2019-04-25T12:57:54Z"},
    {"text": "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 3, "url": "http://example.org/2",
     "timestamp": "2019-04-25T12:57:55Z"},
    {"text": "Plain JSONL with only a text field is accepted too."},
]  # fmt: skip


def _jsonl(records=RECORDS, extra_lines: list[bytes] | None = None) -> bytes:
    lines = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in records]
    return b"\n".join(lines + (extra_lines or [])) + b"\n"


def _read(data: bytes, name: str = "c4-train.00000-of-01024.json.gz"):
    stats = ReadStats()
    return list(read_c4_json(io.BytesIO(data), name, stats)), stats


def test_reads_c4_records_plain_and_gzip_with_stable_ids():
    plain, stats = _read(_jsonl(), "part.jsonl")
    gz, _ = _read(gzip.compress(_jsonl()), "part.jsonl")
    assert [d.text for d in plain] == [r["text"] for r in RECORDS] == [d.text for d in gz]
    assert [d.id for d in plain] == ["part.jsonl:1", "part.jsonl:2", "part.jsonl:3"] == [d.id for d in gz]
    assert plain[0].meta["url"] == "http://example.org/1"
    assert plain[0].meta["timestamp"] == "2019-04-25T12:57:54Z"
    assert plain[2].meta["url"] is None
    assert all(d.source == "c4" for d in plain)
    assert stats.emitted == 3 and not stats.dropped


def test_garbage_lines_become_dead_letters_with_line_numbers():
    data = _jsonl(
        extra_lines=[b"", b"{not json", b"[1, 2]", b'{"url": "no text here"}', b'{"text": "last one"}']
    )
    docs, stats = _read(data, "bad.jsonl")
    assert [d.text for d in docs][-1] == "last one"
    assert stats.emitted == 4
    assert stats.dropped == {"invalid_json": 1, "json_not_object": 1, "missing_text": 1}
    positions = {dl.reason: dl.position for dl in stats.dead_letters}
    assert positions == {"invalid_json": "line 5", "json_not_object": "line 6", "missing_text": "line 7"}
    assert all(dl.file == "bad.jsonl" for dl in stats.dead_letters)


def test_invalid_utf8_and_lone_surrogates_are_replaced_and_counted():
    data = b'{"text": "caf\xe9 ok"}\n{"text": "lone \\ud800 surrogate"}\n'
    docs, stats = _read(data, "u.jsonl")
    assert docs[0].text == "caf\ufffd ok"
    assert docs[1].text == "lone \ufffd surrogate"
    docs[1].text.encode("utf-8")  # writable as UTF-8
    assert stats.repaired["invalid_utf8"] == 2


def test_truncated_gzip_keeps_complete_lines_and_names_offset():
    records = [{"text": f"document number {i} " + "x" * 200, "url": f"http://e.org/{i}"} for i in range(400)]
    data = gzip.compress(_jsonl(records))
    cut = data[: len(data) * 3 // 4]
    stats = ReadStats()
    docs = []
    with pytest.raises(ReaderError) as err:
        for doc in read_c4_json(io.BytesIO(cut), "cut.json.gz", stats):
            docs.append(doc)
    assert 0 < len(docs) < 400 and stats.emitted == len(docs)
    assert [d.text for d in docs] == [r["text"] for r in records[: len(docs)]]
    assert err.value.name == "cut.json.gz" and str(err.value.position).startswith("byte ")


def test_empty_file():
    assert _read(b"", "empty.json") == ([], ReadStats())
    docs, stats = _read(gzip.compress(b""), "empty.json.gz")
    assert docs == [] and stats.emitted == 0


def test_clean_c4_keeps_good_and_counts_dropped():
    docs, stats = _read(_jsonl())
    kept = [out for d in docs if (out := clean_c4(d, stats)) is not None]
    assert [k.id for k in kept] == [docs[0].id]
    assert kept[0].text.startswith("The committee met on Tuesday")
    assert sum(stats.dropped.values()) == 2
    assert any("lorem" in reason for reason in stats.dropped)


def test_registry_and_the_c4_rules_as_a_setting(tmp_path: Path):
    """The C4 rules are a read step of any source whose settings ask (on by default for c4_json)."""
    from filters.sources.source_file import SourceFile
    from manifests.schema import SourceConfig

    spec = get_reader("c4_json")
    assert spec.load_reader() is read_c4_json and spec.load_recipe() is None
    assert SourceConfig(reader="c4_json", inputs=["x"], weight=1).c4.rules
    assert not SourceConfig(reader="wet", inputs=["x"], weight=1).c4.rules
    good = "The committee met on Tuesday to discuss the plan. It agreed on three points. Everyone left early."
    path = tmp_path / "c4.jsonl"
    path.write_text(
        json.dumps({"text": good}) + "\n" + json.dumps({"text": "lorem ipsum dolor sit amet."}) + "\n"
    )
    on = SourceFile("c4_json", str(path), c4_rules=True)
    assert [d.text for d in on] == [good] and on.read == 2 and sum(on.dropped.values()) == 1
    off = SourceFile("c4_json", str(path), c4_rules=False)
    assert len(list(off)) == 2 and off.read == 2


@pytest.mark.realdata
def test_real_c4_samples(shared_data: Path):
    for path in sorted((shared_data / "c4_web").glob("*.gz")):
        runs = []
        for _ in range(2):
            stats = ReadStats()
            with path.open("rb") as f:
                runs.append(list(read_c4_json(f, path.name, stats)))
        docs = runs[0]
        assert len(docs) == 10 == stats.emitted and not stats.dropped, path.name
        assert [d.id for d in runs[1]] == [d.id for d in docs]
        assert all(d.meta["url"].startswith("http") and d.text for d in docs)
        kept = [k for d in docs if (k := clean_c4(d, stats))]
        assert len(kept) + sum(stats.dropped.values()) == 10
        assert len(kept) >= 5
