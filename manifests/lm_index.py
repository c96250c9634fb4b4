"""`lm/lm.json`: the index `corral lm` writes last, and the only thing the build reads to find its models.

Per language: the SentencePiece and KenLM files (relative to the LM folder), the p30/p60 perplexity
cut-offs of cc_net's `PerplexityBucket(30, 60)` and what they were computed on; the Wikipedia-reference
classifier and which positives it was trained on; the sha256 of every file.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from manifests import storage

LM_INDEX = "lm.json"


class LanguageLM(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sp_model: str
    kenlm_model: str
    p30: float
    p60: float
    docs: int
    train_docs: int
    cutoff_docs: int
    cutoffs_from: str  # "heldout" articles, or "training_text" when too few were held out


class WikiRefEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    positives: str  # "cited_cc_pages" or "wikipedia_text"
    n_positives: int
    n_negatives: int
    cited_urls: int
    cited_matches: int
    pages_read: int


class LMIndex(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: int = 1
    source: str
    vocab_size: int
    order: int
    cutoff_holdout: float
    languages: dict[str, LanguageLM] = Field(default_factory=dict)
    skipped_languages: dict[str, int] = Field(default_factory=dict)
    wikiref: WikiRefEntry | None = None
    checksums: dict[str, str] = Field(default_factory=dict)

    def write(self, folder: str) -> None:
        text = json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
        storage.write_text_atomic(storage.join(folder, LM_INDEX), text)

    @classmethod
    def read_from(cls, folder: str) -> LMIndex:
        path = storage.join(folder, LM_INDEX)
        try:
            return cls.model_validate_json(storage.read_bytes(path))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no LM index; run `corral lm --manifest …` first") from None
        except ValueError as exc:
            raise ValueError(f"{path}: not an LM index: {exc}") from None


def index_path(folder: str) -> str:
    return storage.join(folder, LM_INDEX)
