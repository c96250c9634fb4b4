"""The `corral` command: dispatch, and `corral read` on real files of the formats it reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from corral.cli import COMMANDS, main
from corral.read import main as read_main

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name}" in out


def test_unknown_command_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_console_script_runs() -> None:
    bin_dir = Path(sys.executable).parent
    result = subprocess.run([str(bin_dir / "corral"), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: corral COMMAND" in result.stdout


def _read(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict], dict, str]:
    rc = read_main(list(argv))
    captured = capsys.readouterr()
    docs = [json.loads(line) for line in captured.out.splitlines()]
    err_lines = captured.err.strip().splitlines()
    return rc, docs, json.loads(err_lines[0]), "\n".join(err_lines[1:])


def test_read_wet_prints_documents_and_counts(capsys: pytest.CaptureFixture[str]) -> None:
    rc, docs, summary, _ = _read(capsys, "--reader", "wet", str(FIXTURES / "build_cc.warc.wet"))
    assert rc == 0 and len(docs) == summary["printed"] == 13 == summary["read"]
    first = docs[0]
    assert first["source"] == "commoncrawl" and first["id"].startswith("build_cc.warc.wet:")
    assert first["meta"]["title"] == "Page0 | Example" and not first["text"].startswith("Page0")


def test_read_limit_and_no_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    rc, docs, summary, _ = _read(
        capsys, "--reader", "github", str(FIXTURES / "build_github.jsonl"), "--limit", "1"
    )
    assert rc == 0 and len(docs) == 1 == summary["printed"]
    rc, docs, summary, _ = _read(
        capsys, "--reader", "github", str(FIXTURES / "build_github.jsonl"), "--no-recipe"
    )
    assert rc == 0 and len(docs) == 3 and summary["dropped"] == {}  # the licence filter is the recipe
    rc, docs, summary, _ = _read(capsys, "--reader", "github", str(FIXTURES / "build_github.jsonl"))
    assert len(docs) == 2 and summary["dropped"] == {"licence_not_allowed": 1}


def test_read_c4_applies_the_c4_rules_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    rc, docs, summary, _ = _read(capsys, "--reader", "c4_json", str(FIXTURES / "build_c4.jsonl"))
    assert rc == 0 and summary["read"] == len(docs) + sum(summary["dropped"].values())
    assert any(k.startswith("c4_") for k in summary["dropped"])


def test_read_truncated_file_prints_what_came_before_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, docs, summary, err = _read(
        capsys, "--reader", "wet", str(FIXTURES / "build_cc_truncated.warc.wet.gz")
    )
    assert rc == 1 and len(docs) >= 1
    assert summary["dropped"]["reader_error"] == 1 and summary["dead_letters"][0]["reason"] == "reader_error"
    assert "build_cc_truncated.warc.wet.gz at byte" in err


def test_read_bad_paths(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert read_main(["--reader", "wet", str(tmp_path / "absent.wet")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        read_main(["--reader", "wet", str(tmp_path)])
    assert exc.value.code == 2 and "reads files, not directories" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        read_main(["--reader", "pdf", str(tmp_path)])


def test_read_arxiv_directory(capsys: pytest.CaptureFixture[str]) -> None:
    rc, docs, summary, _ = _read(capsys, "--reader", "arxiv", str(FIXTURES / "arxiv_paper"))
    assert rc == 0 and len(docs) == 1 and docs[0]["text"].lstrip().startswith("\\section")
