"""Tool versions: what each stage recorded when it ran, and what is installed now (the report's own view).

The corpus manifests and the tokenizer card record the versions the build and the tokenizer ran with;
the trainer records none, so torch, transformers and the rest come from `importlib.metadata` at report
time — the page says which is which.
"""

from __future__ import annotations

from corral.reporting.run import Run
from manifests.versions import package_versions

# What the later stages and the report use; the build's own list comes from its manifests.
INSTALLED = (
    "corral",
    "torch",
    "transformers",
    "safetensors",
    "tokenizers",
    "sentencepiece",
    "apache-beam",
    "pyarrow",
    "numpy",
    "kenlm",
    "fasttext-numpy2",
    "datasketch",
    "pydantic",
    "matplotlib",
)


def recorded(run: Run) -> dict[str, dict[str, str]]:
    """tool → {version → the stages that recorded it} (one version per tool in a consistent run)."""
    out: dict[str, dict[str, list[str]]] = {}

    def add(where: str, versions: dict[str, str]) -> None:
        for tool, version in versions.items():
            out.setdefault(tool, {}).setdefault(version, []).append(where)

    for source, m in sorted(run.corpus.items()):
        add(f"build ({source})", m.versions)
    if run.tokenizer is not None:
        add("tokenizer", run.tokenizer.versions)
    return {
        tool: {version: _stages(where) for version, where in sorted(by_version.items())}
        for tool, by_version in sorted(out.items())
    }


def _stages(where: list[str]) -> str:
    builds = [w for w in where if w.startswith("build (")]
    rest = [w for w in where if not w.startswith("build (")]
    parts = []
    if builds:
        parts.append(f"build ({len(builds)} sources)" if len(builds) > 1 else builds[0])
    return ", ".join(parts + rest)


def installed() -> dict[str, str]:
    """The installed version of each tool in `INSTALLED` ("not installed" when absent), and Python."""
    return package_versions(INSTALLED)
