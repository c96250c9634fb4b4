"""manifests.storage on URL paths without Beam: the tokenizer and the trainer read gs:// through pyarrow's
filesystems. Exercised here with file:// URLs, which go through the same pyarrow.fs calls as gs://."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifests import storage


@pytest.fixture
def no_beam(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a process that never imported `pipeline` (whose import registers Beam's filesystems)."""
    monkeypatch.setattr(storage, "_BACKENDS", {})


def test_url_paths_go_through_pyarrow_filesystems(tmp_path: Path, no_beam: None) -> None:
    base = f"file://{tmp_path}"
    target = storage.join(base, "corpus", "manifest.json")
    storage.write_text_atomic(target, '{"read": 3}\n')
    assert (tmp_path / "corpus" / "manifest.json").read_text() == '{"read": 3}\n'
    assert not [p for p in (tmp_path / "corpus").iterdir() if ".tmp-" in p.name]  # the temp file was renamed
    assert storage.exists(target) and not storage.exists(storage.join(base, "corpus", "nope.json"))
    assert storage.read_text(target) == '{"read": 3}\n'
    assert storage.listdir(storage.join(base, "corpus")) == ["manifest.json"]
    assert storage.listdir(storage.join(base, "missing")) == []
    assert storage.sha256_of(target) == storage.sha256_of(str(tmp_path / "corpus" / "manifest.json"))
    local = storage.local_copy(target, str(tmp_path / "cache"))
    assert Path(local).read_text() == '{"read": 3}\n'
    storage.delete(storage.join(base, "corpus"))
    assert not (tmp_path / "corpus").exists()


def test_a_url_no_filesystem_serves_is_refused_with_the_path(no_beam: None) -> None:
    with pytest.raises(OSError, match=r"nosuch://bucket/x: no filesystem for this URL"):
        storage.read_bytes("nosuch://bucket/x")
