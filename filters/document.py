"""The unit every stage passes around: one document with a stable id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Document:
    """A document: `id` is stable (derived from the input), `meta` is free-form."""

    id: str
    source: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "text": self.text, "meta": self.meta}
