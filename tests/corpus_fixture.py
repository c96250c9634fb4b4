"""A built corpus written directly in the corpus format (no Beam), for tests of the later stages.

`write_corpus(root, {"web": [texts], "code": [texts]}, weights={...})` lays out `root/corpus/<source>/`
exactly as `corral build` does (Parquet parts + manifest.json) and writes `root/manifest.toml` naming the
sources, so `corral tokenizer` / `corral shards` can run on it. Ids are `"{source}:{i:06d}"`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from filters.document import Document
from manifests import storage
from manifests.corpus import CorpusManifest, parquet_bytes, part_name


def write_source(
    folder: Path, source: str, texts: Sequence[str], weight: float = 1.0, parts: int = 1
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    docs = [Document(f"{source}:{i:06d}", source, t, {"lang": "en"}) for i, t in enumerate(texts)]
    entries = []
    for k in range(parts):
        chunk = docs[k::parts]
        data = parquet_bytes(chunk)
        name = part_name(k)
        storage.write_atomic(str(folder / name), data)
        entries.append(
            {"file": name, "rows": len(chunk), "bytes": len(data), "sha256": storage.sha256_bytes(data)}
        )
    header = {
        "source": source,
        "reader": "c4_json",
        "weight": weight,
        "seed": 1,
        "inputs": [{"path": f"/fixtures/{source}.jsonl", "bytes": sum(len(t) for t in texts)}],
        "settings": {},
    }
    counts = {"read": len(docs), "kept": len(docs)}
    CorpusManifest.from_counts(header, counts, entries, 0).write(str(folder))


def write_corpus(
    root: Path,
    sources: Mapping[str, Sequence[str]],
    weights: Mapping[str, float] | None = None,
    extra_toml: str = "",
    parts: int = 1,
) -> Path:
    """Write `root/corpus/<source>/…` and `root/manifest.toml`; returns the manifest path."""
    weights = weights or {}
    lines = ['output = "corpus"', "seed = 7", ""]
    for name, texts in sources.items():
        w = weights.get(name, 1.0)
        write_source(root / "corpus" / name, name, texts, w, parts)
        lines += [
            f"[sources.{name}]",
            'reader = "c4_json"',
            f'inputs = ["inputs/{name}.jsonl"]',
            f"weight = {w}",
            "",
        ]
    path = root / "manifest.toml"
    path.write_text("\n".join(lines) + "\n" + extra_toml)
    return path
