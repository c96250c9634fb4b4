"""TOML job descriptions (`llama.toml`, `demo.toml`) and their pydantic schema."""

from manifests.schema import Manifest, ManifestError, SourceConfig, load_manifest

__all__ = ["Manifest", "ManifestError", "SourceConfig", "load_manifest"]
