"""Hugging Face files for a SentencePiece BPE model: `tokenizer.json` + `tokenizer_config.json`.

Built with the `tokenizers` library from the model's pieces and scores alone (no protobuf), so that
`transformers.AutoTokenizer.from_pretrained(folder)` gives exactly SentencePiece's ids:

- normalizer `Prepend("▁")` + `Replace(" ", "▁")`: SentencePiece's `identity` rule with
  `add_dummy_prefix` and without `remove_extra_whitespaces` (`normalizer.cc` `Normalize`); no
  pre-tokenizer, because SentencePiece encodes the whole normalised string at once;
- `BPE(byte_fallback=True, fuse_unk=True)`. SentencePiece's BPE encoder (`bpe_model.cc`) repeatedly
  merges the adjacent pair whose concatenation is a piece with the highest score. Each normal piece
  therefore gives one merge rule per split into two normal pieces, ranked by the piece's score (ties
  by the ids of the halves, as transformers' `generate_merges` orders them). Byte, control and unknown
  pieces are never produced by merging in SentencePiece (they are not in its piece trie), so they are
  neither merge results nor merge halves here: `<s>` in text stays three characters;
- decoder `Replace("▁", " ")`, `ByteFallback`, `Fuse`, `Strip(left=1)` (the dummy prefix);
- loaded as `PreTrainedTokenizerFast` with `split_special_tokens=True`: SentencePiece never parses
  `<s>` inside text. transformers' `LlamaTokenizer(Fast)` classes are not used on purpose: in
  transformers 5 they rebuild their own Metaspace pipeline, which disagrees with SentencePiece on text
  with leading or repeated spaces.

No BOS or EOS is added on encode, so `tokenizer(text).input_ids == sp.encode(text)`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

from manifests.tokenizer import HF_CONFIG_FILE, HF_TOKENIZER_FILE

SPACE = "\u2581"


def _pieces(model_path: str) -> tuple[dict[str, int], dict[str, int], list[float]]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=model_path)
    ids = list(range(sp.get_piece_size()))
    pieces, scores = sp.id_to_piece(ids), sp.get_score(ids)
    special = zip(sp.is_byte(ids), sp.is_control(ids), sp.is_unknown(ids), sp.is_unused(ids), strict=True)
    vocab = {piece: i for i, piece in enumerate(pieces)}
    normal = {
        piece: i for i, (piece, flags) in enumerate(zip(pieces, special, strict=True)) if not any(flags)
    }
    return vocab, normal, scores


def merges_from_pieces(normal: dict[str, int], scores: list[float]) -> list[tuple[str, str]]:
    """Merge rules for `tokenizers`' BPE that reproduce SentencePiece's score-ordered merging."""
    ranked = []
    for piece, i in normal.items():
        if len(piece) < 2:
            continue
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece))]
        splits = [(a, b) for a, b in splits if a in normal and b in normal]
        splits.sort(key=lambda ab: (normal[ab[0]], normal[ab[1]]))
        ranked.extend((-scores[i], i, j, ab) for j, ab in enumerate(splits))
    ranked.sort(key=lambda r: r[:3])
    return [r[3] for r in ranked]


def build_tokenizer(model_path: str) -> Any:
    """A `tokenizers.Tokenizer` equivalent to the SentencePiece model at `model_path`."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers
    from tokenizers.models import BPE

    vocab, normal, scores = _pieces(model_path)
    model = BPE(
        vocab=vocab,
        merges=merges_from_pieces(normal, scores),
        unk_token="<unk>",
        byte_fallback=True,
        fuse_unk=True,
    )
    tok = Tokenizer(model)
    tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPACE), normalizers.Replace(" ", SPACE)])
    tok.pre_tokenizer = None
    tok.decoder = decoders.Sequence(
        [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")])
    tok.encode_special_tokens = True
    return tok


def tokenizer_config() -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "split_special_tokens": True,
        "clean_up_tokenization_spaces": False,
    }


def write_hf_files(model_path: str, folder: str) -> None:
    """`folder/tokenizer.json` and `folder/tokenizer_config.json` (a local folder: the build folder)."""
    build_tokenizer(model_path).save(os.path.join(folder, HF_TOKENIZER_FILE))
    with open(os.path.join(folder, HF_CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(), f, indent=2, sort_keys=True)
        f.write("\n")


def parity_mismatches(model_path: str, tokenizer_json: str, texts: Iterable[str]) -> tuple[int, int]:
    """(texts checked, texts where the HF tokenizer's ids or decoding differ from SentencePiece's)."""
    import sentencepiece as spm
    from tokenizers import Tokenizer

    sp = spm.SentencePieceProcessor(model_file=model_path)
    tok = Tokenizer.from_file(tokenizer_json)
    tok.encode_special_tokens = True
    batch = list(texts)
    ours = [e.ids for e in tok.encode_batch(batch, add_special_tokens=False)]
    theirs = sp.encode(batch)
    decoded = tok.decode_batch(theirs, skip_special_tokens=False)
    bad = sum(a != b or d != t for a, b, d, t in zip(ours, theirs, decoded, sp.decode(theirs), strict=True))
    return len(batch), bad
