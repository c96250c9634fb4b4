"""Documents → token ids with the corpus tokenizer (SentencePiece), batched, EOS appended, no BOS.

Policy: every document ends with `</s>` (EOS) and none starts with `<s>` (BOS). Meta's reference
tokenizer leaves both to the caller (meta-llama/llama `llama/tokenizer.py`, `encode(s, bos, eos)`); for
a packed pre-training stream one separator per document boundary is enough, and EOS is the one the
model must learn to emit at the end of a document. The shard manifest records the policy
(`eos_appended`, `bos_prepended`) so the trainer can tell.

A document that encodes to no token at all (the empty string: SentencePiece gives `[]`) is skipped and
counted rather than kept as a lone EOS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Encoded:
    """A batch of documents as one flat token array: document i is `values[offsets[i]:offsets[i+1]]`."""

    values: np.ndarray  # token ids, EOS included, of the kept documents
    offsets: np.ndarray  # int64, len(kept documents) + 1
    kept: np.ndarray  # bool per input text: False for documents that encoded to zero tokens

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)


class BatchEncoder:
    """SentencePiece encoding of many texts per call (the C++ batch path), one thread per encoder:
    parallelism comes from workers, so N workers use N cores."""

    def __init__(self, model_path: str, dtype: np.dtype | type = np.uint32, batch_size: int = 256) -> None:
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=model_path)
        self.eos_id = int(self.sp.eos_id())
        if self.eos_id < 0:
            raise ValueError(f"{model_path}: the tokenizer has no EOS piece (eos_id=-1)")
        self.vocab_size = int(self.sp.get_piece_size())
        self.dtype = np.dtype(dtype)
        if self.vocab_size - 1 > np.iinfo(self.dtype).max:
            raise ValueError(f"{model_path}: {self.vocab_size} pieces do not fit {self.dtype}")
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Encoded:
        arrays: list[np.ndarray] = []
        kept = np.ones(len(texts), dtype=bool)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            ids = self.sp.encode(batch, return_type="numpy", add_eos=True, num_threads=1)
            for i, a in enumerate(ids):
                if len(a) <= 1:  # only the EOS we asked for: the text has no token
                    kept[start + i] = False
                else:
                    arrays.append(a)
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate(arrays).astype(self.dtype) if arrays else np.zeros(0, dtype=self.dtype)
        return Encoded(values, offsets, kept)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids])
