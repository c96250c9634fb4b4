"""The tokenizer folder `corral tokenizer` writes: `tokenizer.model` (SentencePiece), `tokenizer.vocab`,
Hugging Face's `tokenizer.json` + `tokenizer_config.json`, and `card.json` (written last).

The card is what later stages trust: the shards job stamps the model's sha256 into every tokenized
file and into the shard manifest, and the trainer refuses shards made with another tokenizer.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from manifests import storage

MODEL_FILE = "tokenizer.model"
VOCAB_FILE = "tokenizer.vocab"
HF_TOKENIZER_FILE = "tokenizer.json"
HF_CONFIG_FILE = "tokenizer_config.json"
CARD = "card.json"


class TokenizerCard(BaseModel):
    """`card.json`: the model's checksum and size, the trainer settings, and the sample it was trained on."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    model_file: str = MODEL_FILE
    sha256: str
    vocab_size: int
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    settings: dict[str, Any]  # SentencePiece trainer settings, as passed
    sample: dict[str, Any] = Field(default_factory=dict)  # chars, documents, per-source share, skips
    corpus_manifests: dict[str, str] = Field(default_factory=dict)  # source → sha256 of its manifest
    versions: dict[str, str] = Field(default_factory=dict)

    def write(self, folder: str) -> None:
        text = json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        storage.write_text_atomic(storage.join(folder, CARD), text)

    @classmethod
    def read_from(cls, folder: str) -> TokenizerCard:
        path = storage.join(folder, CARD)
        try:
            return cls.model_validate_json(storage.read_bytes(path))
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no tokenizer card; run `corral tokenizer --manifest …` first"
            ) from None
        except ValueError as exc:
            raise ValueError(f"{path}: not a tokenizer card: {exc}") from None


def model_path(folder: str) -> str:
    return storage.join(folder, MODEL_FILE)
