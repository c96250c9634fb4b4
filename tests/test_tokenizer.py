"""`corral tokenizer`: the mixture sample, LLaMA's BPE settings, byte fallback, HF parity, reruns, bad input."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import sentencepiece as spm
from conftest import SHARED_DATA
from corpus_fixture import write_corpus

from corral.cli import main as corral_main
from filters.sources.base import ReadStats
from filters.sources.registry import get_reader
from manifests.corpus import manifest_sha256
from manifests.schema import load_manifest
from manifests.tokenizer import TokenizerCard
from tokenizer_training.bpe import LLAMA_TRAINER_SETTINGS
from tokenizer_training.hf import merges_from_pieces
from tokenizer_training.sample import MAX_SENTENCE_BYTES, RESERVED_CHAR, draw_sample
from tokenizer_training.train import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPACE = "\u2581"

# Texts where naive SentencePiece ports go wrong: spaces at the start, in runs and at the end, tabs,
# newlines, special-token text, digits, emoji, characters no sample holds.
EDGE_TEXTS = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    "\t",
    " leading",
    "    four leading spaces",
    "trailing   ",
    "a  b   c    d     e      f",
    "tab\tin\t\tthe\t\t\tmiddle",
    "first line\nsecond line\n\n  indented third\n",
    "<s>",
    "<s> not a BOS </s> not an EOS <unk> not unknown",
    "x<s>y</s>z",
    "<0x41> is text too",
    "numbers: 0 1 22 333 4444 55555 3.14159 -273.15 1,000,000",
    "emoji 😀 🙈🙉🙊 👩‍👩‍👧 🏳️‍🌈 flags 🇫🇷🇯🇵",
    "rare script 𓀀𓀁 and 𐌰𐌱𐌲 and ꦲꦤꦕꦫꦏ",
    "mixed Латиница and Cyrillic, Ελληνικά, हिन्दी, 中文, 日本語, 한국어, العربية",
    "\r\nwindows line\r\n",
    "\u00a0non-breaking\u2003em space\u3000ideographic space",
    "combining: e\u0301 a\u0308 n\u0303 vs é ä ñ",
]


def _chunks(text: str, size: int = 1500) -> list[str]:
    """Split a file into documents at blank lines, about `size` characters each."""
    docs, cur = [], ""
    for para in text.split("\n\n"):
        cur = f"{cur}\n\n{para}" if cur else para
        if len(cur) >= size:
            docs.append(cur)
            cur = ""
    return docs + ([cur] if cur else [])


def fixture_sources() -> dict[str, list[str]]:
    """Documents of four sources from the repository's own fixtures (original text)."""
    own = (FIXTURES / "tokenizer_multilingual.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in own.split("\n\n") if p.strip()]
    # Variants with other numbers so every paragraph is seen often enough to be merged.
    mixed = [re.sub(r"\d+", lambda m, k=k: str(int(m.group()) + k), p) for k in range(12) for p in paragraphs]
    github = [json.loads(line)["text"] for line in (FIXTURES / "build_github.jsonl").open(encoding="utf-8")]
    c4 = [json.loads(line)["text"] for line in (FIXTURES / "build_c4.jsonl").open(encoding="utf-8")]
    tex = [p.read_text(encoding="utf-8") for p in sorted((FIXTURES / "arxiv_paper").rglob("*.tex"))]
    own_code = [p.read_text(encoding="utf-8") for p in sorted((FIXTURES.parents[1] / "filters").glob("*.py"))]
    return {
        "web": _chunks((FIXTURES / "build_cc.warc.wet").read_text(encoding="utf-8", errors="replace")) + c4,
        "wiki": _chunks((FIXTURES / "build_enwiki.xml").read_text(encoding="utf-8")),
        # The project's own Python: real code with indentation runs (and the tab-indented fixture block).
        "code": github + tex + [p for p in paragraphs if "\t" in p or "    " in p] * 5 + own_code,
        "mixed": mixed,
    }


TOKENIZER_TOML = "[tokenizer]\nvocab_size = 1000\nsample_chars = 150000\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tokenizer trained by `corral tokenizer` on the fixture corpus; (manifest, output, kept sample)."""
    root = tmp_path_factory.mktemp("tokenizer")
    m = write_corpus(
        root,
        fixture_sources(),
        weights={"web": 0.4, "wiki": 0.3, "code": 0.1, "mixed": 0.2},
        extra_toml=TOKENIZER_TOML,
    )
    kept = root / "sample.txt"
    assert main(["--manifest", str(m), "--no-progress", "--keep-sample", str(kept)]) == 0
    return m, root / "tokenizer", kept


@pytest.fixture(scope="module")
def sp(built: tuple[Path, Path, Path]) -> spm.SentencePieceProcessor:
    return spm.SentencePieceProcessor(model_file=str(built[1] / "tokenizer.model"))


def all_fixture_docs() -> list[str]:
    return [d for docs in fixture_sources().values() for d in docs]


# --- what the model is ---------------------------------------------------------------------------


def test_outputs_and_card(built: tuple[Path, Path, Path], sp: spm.SentencePieceProcessor) -> None:
    m, out, kept = built
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "card.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer.vocab",
        "tokenizer_config.json",
    ]
    card = TokenizerCard.read_from(str(out))
    assert card.sha256 == hashlib.sha256((out / "tokenizer.model").read_bytes()).hexdigest()
    assert card.vocab_size == sp.get_piece_size() == 1000
    assert {k: card.settings[k] for k in LLAMA_TRAINER_SETTINGS} == LLAMA_TRAINER_SETTINGS
    manifest = load_manifest(m)
    for name in manifest.sources:
        assert card.corpus_manifests[name] == manifest_sha256(str(root_corpus(m) / name))
    # The card's accounting is that of the sample file itself.
    lines = kept.read_text(encoding="utf-8").split("\n")[:-1]
    assert card.sample["lines"] == len(lines)
    assert card.sample["chars"] == sum(len(x) for x in lines)
    assert card.sample["sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    assert sum(s["chars"] for s in card.sample["sources"].values()) == card.sample["chars"]
    assert card.sample["hf_parity"]["mismatches"] == 0 and card.sample["hf_parity"]["texts"] > 20
    # tokenizer.vocab is SentencePiece's own: one "piece<TAB>score" line per id.
    vocab_lines = (out / "tokenizer.vocab").read_text(encoding="utf-8").split("\n")
    assert vocab_lines[:3] == ["<unk>\t0", "<s>\t0", "</s>\t0"]


def root_corpus(manifest_path: Path) -> Path:
    return manifest_path.parent / "corpus"


def test_special_and_byte_ids(sp: spm.SentencePieceProcessor) -> None:
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert sp.is_unknown(0) and sp.is_control(1) and sp.is_control(2)
    for b in range(256):
        assert sp.id_to_piece(3 + b) == f"<0x{b:02X}>" and sp.is_byte(3 + b)
    # No user-defined or other control symbols: every other piece is an ordinary one.
    assert not any(
        sp.is_control(i) or sp.is_byte(i) or sp.is_unused(i) for i in range(259, sp.get_piece_size())
    )


def test_pieces_follow_llama_settings(sp: spm.SentencePieceProcessor) -> None:
    pieces = [sp.id_to_piece(i) for i in range(259, sp.get_piece_size())]
    assert all(len(p) <= 16 for p in pieces)  # max_sentencepiece_length
    assert any(len(p) > 1 and set(p) == {SPACE} for p in pieces)  # allow_whitespace_only_pieces
    assert all(SPACE not in p[1:] or set(p) == {SPACE} for p in pieces)  # whitespace only as a prefix
    # split_by_unicode_script: no piece mixes Latin and Cyrillic (or Greek) letters.
    for p in pieces:
        scripts = {unicodedata.name(c, "?").split()[0] for c in p if c.isalpha()}
        assert len(scripts & {"LATIN", "CYRILLIC", "GREEK"}) <= 1, p
    assert "\n" not in pieces  # sentences are lines: a newline is always the byte <0x0A>
    assert sp.encode("a\nb", out_type=str) == [f"{SPACE}a", "<0x0A>", "b"]


def _is_split_digit(c: str) -> bool:
    """The digits `split_digits` splits: SentencePiece's `is_unicode_decimal_number` is ASCII 0-9 and
    fullwidth ０-９ only (trainer_interface.cc), so e.g. Thai or Arabic-Indic digits may still merge."""
    return "0" <= c <= "9" or "\uff10" <= c <= "\uff19"


def _digit_pieces_ok(sp: spm.SentencePieceProcessor, ids: list[int]) -> bool:
    """split_digits: a piece holding a digit is that one digit (byte pieces aside)."""
    for i in ids:
        piece = sp.id_to_piece(i)
        if not sp.is_byte(i) and any(map(_is_split_digit, piece)) and len(piece) != 1:
            return False
    return True


def test_every_digit_is_a_single_token(sp: spm.SentencePieceProcessor) -> None:
    assert _digit_pieces_ok(sp, list(range(sp.get_piece_size())))
    assert {sp.id_to_piece(i) for i in range(sp.get_piece_size())} >= set("0123456789")
    text = "In 2019, 3412 bicycles; pi = 3.14159; fullwidth \uff12\uff10\uff11\uff19; x2 a1b2 v10.3"
    assert _digit_pieces_ok(sp, sp.encode(text))
    assert [p for p in sp.encode("1234567890", out_type=str) if p != SPACE] == list("1234567890")


def test_unknown_characters_fall_back_to_bytes(sp: spm.SentencePieceProcessor) -> None:
    for ch in ("𓀀", "𐌰", "ꦲ", "\x07"):
        assert sp.piece_to_id(ch) == sp.unk_id()  # not in the vocabulary
        ids = [i for i in sp.encode(ch) if sp.id_to_piece(i) != SPACE]
        assert ids == [3 + b for b in ch.encode("utf-8")]
        assert sp.decode(sp.encode(ch)) == ch
    assert sp.unk_id() not in sp.encode(" ".join(EDGE_TEXTS))


def test_round_trip_on_fixtures(sp: spm.SentencePieceProcessor) -> None:
    texts = all_fixture_docs() + EDGE_TEXTS
    assert [sp.decode(ids) for ids in sp.encode(texts)] == texts


# --- Hugging Face --------------------------------------------------------------------------------


def test_hugging_face_files_give_sentencepiece_ids(
    built: tuple[Path, Path, Path], sp: spm.SentencePieceProcessor
) -> None:
    from transformers import AutoTokenizer, LlamaTokenizerFast

    tok = AutoTokenizer.from_pretrained(str(built[1]))
    assert not isinstance(tok, LlamaTokenizerFast)
    texts = all_fixture_docs() + EDGE_TEXTS + [t.strip() + "  " + t for t in all_fixture_docs()[:40]]
    for text in texts:
        ids = sp.encode(text)
        assert tok(text)["input_ids"] == ids, repr(text[:80])
        assert tok.encode(text) == ids
        assert tok.decode(ids) == sp.decode(ids)
    assert tok.tokenize("<s>") == sp.encode("<s>", out_type=str)
    assert 1 not in tok("<s> hello </s>")["input_ids"] and 2 not in tok("<s> hello </s>")["input_ids"]
    assert tok.bos_token_id == 1 and tok.eos_token_id == 2 and tok.unk_token_id == 0
    assert len(tok) == sp.get_piece_size()


def test_merges_are_ranked_by_piece_score() -> None:
    normal = {"a": 3, "b": 4, "ab": 5, "aab": 6, "aa": 7}
    scores = [0.0] * 3 + [-10.0, -11.0, -0.0, -1.0, -2.0]
    assert merges_from_pieces(normal, scores) == [("a", "b"), ("a", "ab"), ("aa", "b"), ("a", "a")]


# --- the sample ----------------------------------------------------------------------------------


def _big_sources(n: int = 400) -> dict[str, list[str]]:
    def doc(tag: str, i: int) -> str:
        lines = [
            f"{tag} document {i} line {j}: " + "word " * ((i * 7 + j * 3) % 40 + 1) for j in range(i % 9 + 1)
        ]
        return "\n".join(lines)

    return {name: [doc(name, i) for i in range(n)] for name in ("alpha", "beta", "gamma")}


def test_sample_is_deterministic_and_layout_independent(tmp_path: Path) -> None:
    sources = _big_sources()
    extra = "[tokenizer]\nsample_chars = 60000\nread_factor = 100.0\n"  # every row group is read
    m1 = load_manifest(write_corpus(tmp_path / "one", sources, extra_toml=extra, parts=1))
    m3 = load_manifest(write_corpus(tmp_path / "three", sources, extra_toml=extra, parts=3))
    a = draw_sample(m1, str(tmp_path / "a.txt"), progress=False)
    b = draw_sample(m1, str(tmp_path / "b.txt"), progress=False)
    assert (tmp_path / "a.txt").read_bytes() == (tmp_path / "b.txt").read_bytes() and a.sha256 == b.sha256
    c = draw_sample(m3, str(tmp_path / "c.txt"), progress=False)  # same documents in 3 Parquet parts
    lines = sorted((tmp_path / "a.txt").read_text().splitlines())
    assert lines == sorted((tmp_path / "c.txt").read_text().splitlines())
    assert c.chars == a.chars
    other = m1.model_copy(update={"tokenizer": m1.tokenizer.model_copy(update={"seed": 99})})
    d = draw_sample(other, str(tmp_path / "d.txt"), progress=False)
    assert d.sha256 != a.sha256
    # A sample is a strict subset of the corpus: never the whole of it here.
    assert a.documents < sum(len(v) for v in sources.values())


def test_sample_shares_meet_targets(tmp_path: Path) -> None:
    weights = {"alpha": 5.0, "beta": 3.0, "gamma": 2.0}  # not summing to 1: normalised
    m = load_manifest(
        write_corpus(
            tmp_path, _big_sources(), weights=weights, extra_toml="[tokenizer]\nsample_chars = 50000\n"
        )
    )
    sample = draw_sample(m, str(tmp_path / "s.txt"), progress=False)
    for name, w in weights.items():
        s = sample.sources[name]
        assert s.target_share == pytest.approx(w / 10)
        assert abs(s.achieved_share - s.target_share) < 0.005, (name, s.achieved_share)
        assert s.budget_chars <= s.chars < s.budget_chars + 400  # at most one line past the budget
        assert not s.short and s.partial_documents <= 1
    text = (tmp_path / "s.txt").read_text()
    per_source = Counter(line.split()[0] for line in text.splitlines())
    assert set(per_source) == set(weights)


def test_big_source_is_read_only_as_far_as_read_factor(tmp_path: Path) -> None:
    """Row groups are read in seeded order until `read_factor` × the budget: not the whole source."""
    extra = "[tokenizer]\nsample_chars = 6000\nread_factor = 2.0\n"
    m = load_manifest(write_corpus(tmp_path, {"alpha": _big_sources()["alpha"]}, extra_toml=extra, parts=10))
    a = draw_sample(m, str(tmp_path / "a.txt"), progress=False)
    s = a.sources["alpha"]
    assert not s.read_all and s.read_documents < s.corpus_documents == 400
    assert s.read_chars >= 2 * 6000 and s.chars >= 6000 and not s.short
    assert draw_sample(m, str(tmp_path / "b.txt"), progress=False).sha256 == a.sha256
    other = m.model_copy(update={"tokenizer": m.tokenizer.model_copy(update={"seed": 5})})
    assert draw_sample(other, str(tmp_path / "c.txt"), progress=False).sources["alpha"].read_documents > 0


def test_short_source_is_taken_whole_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sources = {"big": _big_sources()["alpha"], "small": ["a small source\nwith two lines"]}
    m = load_manifest(
        write_corpus(
            tmp_path,
            sources,
            weights={"big": 0.5, "small": 0.5},
            extra_toml="[tokenizer]\nsample_chars = 20000\n",
        )
    )
    with caplog.at_level("WARNING"):
        sample = draw_sample(m, str(tmp_path / "s.txt"), progress=False)
    small = sample.sources["small"]
    assert (
        small.short and small.documents == 1 and small.chars == len("a small source") + len("with two lines")
    )
    assert small.achieved_share < 0.01 and "'small'" in caplog.text
    assert sample.sources["big"].chars >= 10000


def test_lines_sentencepiece_would_skip_are_counted(tmp_path: Path) -> None:
    long_ascii = "x" * (MAX_SENTENCE_BYTES + 1)
    exactly = "y" * MAX_SENTENCE_BYTES
    long_bytes = "я" * 2100  # 2100 characters but 4200 bytes: SentencePiece counts bytes
    short_bytes = "é" * 2000  # 4000 bytes: kept
    doc = "\n".join(
        ["keep me", long_ascii, exactly, long_bytes, short_bytes, "", f"a {RESERVED_CHAR} mark", "end"]
    )
    m = load_manifest(
        write_corpus(tmp_path, {"src": [doc]}, extra_toml="[tokenizer]\nsample_chars = 100000\n")
    )
    sample = draw_sample(m, str(tmp_path / "s.txt"), progress=False)
    written = (tmp_path / "s.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert written == ["keep me", exactly, short_bytes, "end"]
    s = sample.sources["src"]
    assert (s.skipped_long_lines, s.skipped_reserved_lines, s.read_long_lines) == (2, 1, 2)
    assert s.chars == sum(map(len, written)) == s.read_chars


# --- reruns, atomicity, command line -------------------------------------------------------------

SMALL_TOML = "[tokenizer]\nvocab_size = 300\nsample_chars = 20000\n"


def _small_corpus(root: Path, weights: dict[str, float] | None = None) -> Path:
    docs = {"a": _big_sources(60)["alpha"], "b": _big_sources(60)["beta"]}
    return write_corpus(root, docs, weights=weights, extra_toml=SMALL_TOML)


def test_rerun_is_a_noop_and_force_retrains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _small_corpus(tmp_path)
    assert main(["--manifest", str(m), "--no-progress"]) == 0
    model = tmp_path / "tokenizer" / "tokenizer.model"
    first = (model.stat().st_ino, model.stat().st_mtime_ns, model.read_bytes())
    capsys.readouterr()
    assert corral_main(["tokenizer", "--manifest", str(m), "--no-progress"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert (model.stat().st_ino, model.stat().st_mtime_ns) == first[:2]
    assert main(["--manifest", str(m), "--no-progress", "--force"]) == 0
    assert model.stat().st_ino != first[0] and model.read_bytes() == first[2]  # same sample → same bytes
    assert "--force" in capsys.readouterr().out
    # A weight change changes the sample: retrained without --force.
    text = m.read_text().replace("weight = 1.0", "weight = 2.0", 1)
    m.write_text(text)
    assert main(["--manifest", str(m), "--no-progress"]) == 0
    assert "sample settings changed" in capsys.readouterr().out
    # A rebuilt corpus source changes its manifest: retrained.
    (tmp_path / "corpus" / "b" / "manifest.json").write_text(
        (tmp_path / "corpus" / "b" / "manifest.json").read_text().replace('"seed": 1', '"seed": 2')
    )
    assert main(["--manifest", str(m), "--no-progress"]) == 0
    assert "corpus changed (b)" in capsys.readouterr().out
    assert not list(tmp_path.glob(".tokenizer.tmp-*"))  # no build folder left behind


def test_same_corpus_gives_the_same_model_bytes_elsewhere(tmp_path: Path) -> None:
    """No build path ends up in the model: SentencePiece trains on relative names in the build folder."""
    shas = []
    for where in ("first", "second/deeper"):
        m = _small_corpus(tmp_path / where)
        assert main(["--manifest", str(m), "--no-progress"]) == 0
        shas.append(TokenizerCard.read_from(str(tmp_path / where / "tokenizer")).sha256)
    assert shas[0] == shas[1]


def test_runs_as_a_module_without_beam(tmp_path: Path) -> None:
    m = _small_corpus(tmp_path)
    code = (
        "import sys, runpy; sys.argv = ['x', '--manifest', sys.argv[1], '--no-progress'];"
        "rc = 0\ntry: runpy.run_module('tokenizer_training.train', run_name='__main__')\n"
        "except SystemExit as e: rc = e.code\n"
        "assert 'apache_beam' not in sys.modules, 'Beam was imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(m)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "tokenizer: 300 pieces" in proc.stdout


def test_missing_corpus_source_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = _small_corpus(tmp_path)
    m.write_text(
        m.read_text() + '\n[sources.extra]\nreader = "c4_json"\ninputs = ["x.jsonl"]\nweight = 1.0\n'
    )
    assert main(["--manifest", str(m), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "source 'extra'" in err and str(tmp_path / "corpus" / "extra" / "manifest.json") in err
    (tmp_path / "corpus" / "extra").mkdir()  # a half-written source: folder without manifest.json
    assert main(["--manifest", str(m), "--no-progress"]) == 2
    assert "source 'extra'" in capsys.readouterr().err
    assert not (tmp_path / "tokenizer").exists()


def test_vocab_too_small_for_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    own = (FIXTURES / "tokenizer_multilingual.txt").read_text(encoding="utf-8")
    m = write_corpus(
        tmp_path, {"mixed": [own]}, extra_toml="[tokenizer]\nvocab_size = 300\nsample_chars = 20000\n"
    )
    assert main(["--manifest", str(m), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "vocab_size = 300 is too small" in err and str(m) in err
    need = int(re.search(r"set vocab_size above (\d+)", err).group(1))
    assert need > 300 + 100  # hundreds of distinct characters across nine scripts
    assert not (tmp_path / "tokenizer").exists()


def test_vocab_too_large_for_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = write_corpus(
        tmp_path, {"tiny": ["one two three\nfour five six"]}, extra_toml="[tokenizer]\nvocab_size = 5000\n"
    )
    assert main(["--manifest", str(m), "--no-progress"]) == 2
    assert "vocab_size = 5000 is too large" in capsys.readouterr().err


# --- real data -----------------------------------------------------------------------------------

REAL = {  # source: (reader or None for tab-separated sentences, globs under ../shared/data)
    "commoncrawl": ("wet", ["commoncrawl/*.wet*"]),
    "commoncrawl_warc": ("warc", ["commoncrawl/*.warc.gz"]),
    "c4": ("c4_json", ["c4_web/*.json*.gz", "wikipedia/*.jsonl.gz"]),
    "github": ("github", ["github_code/*.jsonl.gz"]),
    "wikipedia": ("wikipedia_xml", ["wikipedia/*.xml.bz2"]),
    "books": ("gutenberg", ["gutenberg/*.txt.gz"]),
    "arxiv": ("arxiv", ["arxiv/*.tar.gz"]),
    "stackexchange": ("stackexchange", ["stackexchange/*Posts.xml.gz"]),
    "langid": (None, ["langid/*.tsv.gz"]),
}


def _cut(text: str, max_chars: int | None) -> str:
    if max_chars is None or len(text) <= max_chars:
        return text
    end = text.rfind("\n", 0, max_chars)
    return text[: end if end > 0 else max_chars]


def read_real(
    shared: Path, per_file: int | None = None, max_chars: int | None = None
) -> dict[str, list[str]]:
    """Every source in ../shared/data, read with the project's readers (langid sentences plainly);
    at most `per_file` documents of each file, each cut to about `max_chars` characters at a line end."""
    out: dict[str, list[str]] = {}
    for name, (reader, globs) in REAL.items():
        paths = sorted({p for g in globs for p in glob.glob(str(shared / g))})
        docs: list[str] = []
        for path in paths:
            if reader is None:
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    sentences = [line.rstrip("\n").rsplit("\t", 1)[-1] for line in f]
                chunks = ["\n".join(sentences[i : i + 50]) for i in range(0, len(sentences), 50)]
                docs += chunks[:per_file]
                continue
            spec, stats = get_reader(reader), ReadStats()
            with open(path, "rb") as f:
                for n, d in enumerate(spec.load_reader()(f, path, stats)):
                    if per_file is not None and n >= per_file:
                        break
                    if d.text:
                        docs.append(_cut(d.text, max_chars))
        assert docs, name
        out[name] = docs
    return out


def _shared_or_skip() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def real_docs() -> dict[str, list[str]]:
    """Up to 40 documents of every real file, each at most ~20k characters (read once per module)."""
    return read_real(_shared_or_skip(), per_file=40, max_chars=20_000)


@pytest.fixture(scope="module")
def all_real_docs() -> dict[str, list[str]]:
    return read_real(_shared_or_skip())


@pytest.mark.realdata
def test_round_trip_and_hf_parity_on_every_real_source(
    shared_data: Path,
    real_docs: dict[str, list[str]],
    built: tuple[Path, Path, Path],
    sp: spm.SentencePieceProcessor,
) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(built[1]))
    scripts = Counter()
    for name, docs in real_docs.items():
        ids = sp.encode(docs)
        for text, ours, back, theirs in zip(docs, ids, sp.decode(ids), tok(docs)["input_ids"], strict=True):
            assert back == text or SPACE in text, (name, text[:80])
            assert theirs == ours, (name, text[:80])
            scripts.update(unicodedata.name(c, "?").split()[0] for c in set(text) if c.isalpha())
    assert {"CJK", "CYRILLIC", "GREEK", "DEVANAGARI", "HIRAGANA"} <= set(scripts)
    code = "\n".join(real_docs["github"])
    assert "\t" in code and "        " in code
    assert "\\begin{" in "\n".join(real_docs["arxiv"])


@pytest.mark.realdata
@pytest.mark.slow
def test_llama_size_tokenizer_on_real_data(
    shared_data: Path, all_real_docs: dict[str, list[str]], tmp_path: Path
) -> None:
    """32,000 pieces on the real samples with LLaMA's mixture weights: the settings end to end."""
    from transformers import AutoTokenizer

    weights = {"commoncrawl": 0.67, "commoncrawl_warc": 0.05, "c4": 0.15, "github": 0.045, "wikipedia": 0.045,
               "books": 0.045, "arxiv": 0.025, "stackexchange": 0.02, "langid": 0.05}  # fmt: skip
    m = write_corpus(
        tmp_path, all_real_docs, weights=weights, extra_toml="[tokenizer]\nsample_chars = 30000000\n"
    )
    assert main(["--manifest", str(m), "--no-progress"]) == 0
    out = tmp_path / "tokenizer"
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    assert sp.get_piece_size() == 32000
    tok = AutoTokenizer.from_pretrained(str(out))
    mismatches = []
    for name, docs in all_real_docs.items():
        ids = sp.encode(docs)
        for text, ours, back, theirs in zip(docs, ids, sp.decode(ids), tok(docs)["input_ids"], strict=True):
            assert back == text or SPACE in text, (name, text[:80])
            if theirs != ours:
                mismatches.append((name, text[:80]))
    assert mismatches == []
    assert _digit_pieces_ok(sp, list(range(sp.get_piece_size())))
    card = TokenizerCard.read_from(str(out))
    assert card.sample["hf_parity"]["mismatches"] == 0
