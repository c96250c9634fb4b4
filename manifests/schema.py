"""The TOML job description (DESIGN "Manifest"), validated with pydantic before any work starts.

A manifest names the output folder, the seed, and one `[sources.NAME]` table per source with its reader,
input globs and mixture weight, plus optional stage settings (`ccnet`, `minhash`, `exact_dedup`). Errors
name the file and the dotted key (`sources.cc.weight`) so a user can fix the right line. Paths in a
manifest are relative to the manifest file; `gs://…` and other URL paths are left as they are.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

READER_NAMES = ("wet", "warc", "c4_json", "github", "wikipedia_xml", "gutenberg", "arxiv", "stackexchange")
Bucket = Literal["head", "middle", "tail"]


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        super().__init__(f"{file}: {key}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CCNetSettings(_Strict):
    """CCNet chain for web text (SPEC §3); off unless a source asks for it (CommonCrawl, C4)."""

    enabled: bool = False
    min_length: int = Field(300, ge=0)
    line_dedup: bool = True
    # cc_net deduplicates within groups of 50 shards; corral counts across the whole source.
    dedup_scope: Literal["source"] = "source"
    languages: list[str] = Field(default_factory=list)  # empty: every language is kept
    lang_threshold: float = Field(0.5, ge=0.0, le=1.0)
    langid_model: str | None = None  # None: the bundled lid.176 model
    perplexity: bool = True
    keep_buckets: list[Bucket] = Field(default_factory=lambda: ["head", "middle", "tail"])
    missing_lm: Literal["keep", "drop"] = "keep"  # a language without a trained LM
    wikiref: bool = False
    wikiref_threshold: float = Field(0.25, ge=0.0, le=1.0)  # RedPajama keeps wiki_prob >= 0.25
    batch_size: int = Field(256, ge=1)  # documents per batch through the chain (and per model call)
    dedup_shards: int = Field(256, ge=1)  # line-hash shards of the global count (raise for huge sources)


class MinHashSettings(_Strict):
    """Near-duplicate removal: MinHash LSH, clusters as connected components, the smallest id kept."""

    enabled: bool = False
    threshold: float = Field(0.8, gt=0.0, lt=1.0)
    num_perm: int = Field(128, ge=8)
    ngram: int = Field(13, ge=1)
    seed: int = 1


class SourceConfig(_Strict):
    """One `[sources.NAME]` table."""

    reader: str
    inputs: list[str] = Field(min_length=1)
    weight: float
    ccnet: CCNetSettings = Field(default_factory=CCNetSettings)
    minhash: MinHashSettings = Field(default_factory=MinHashSettings)
    exact_dedup: bool = False  # drop documents whose whole text repeats (the smallest id is kept)
    shard_bytes: int = Field(256 * 1024 * 1024, ge=1)  # target Parquet part size (text bytes)

    @field_validator("reader")
    @classmethod
    def _known_reader(cls, value: str) -> str:
        if value not in READER_NAMES:
            raise ValueError(f"unknown reader {value!r}; known readers: {', '.join(READER_NAMES)}")
        return value

    @field_validator("weight")
    @classmethod
    def _positive_weight(cls, value: float) -> float:
        if not value > 0:
            raise ValueError(f"weight must be > 0, got {value}")
        return value

    @field_validator("inputs")
    @classmethod
    def _non_empty_globs(cls, value: list[str]) -> list[str]:
        for i, item in enumerate(value):
            if not item.strip():
                raise ValueError(f"inputs[{i}] is an empty path")
        return value


class LMSettings(_Strict):
    """`corral lm`: per-language SentencePiece + KenLM and p30/p60 cut-offs from the Wikipedia source."""

    source: str = "wikipedia"
    output: str = "lm"  # relative to the manifest file, like every path
    languages: list[str] = Field(default_factory=list)  # empty: every language with enough text
    vocab_size: int = Field(65536, ge=16)
    min_docs: int = Field(20, ge=1)
    order: int = Field(5, ge=2)
    # Articles held out of LM training (by id hash) to compute the p30/p60 cut-offs on: scoring the
    # training text itself would put every unseen page above the cut-offs. 0 = score the training text.
    cutoff_holdout: float = Field(0.2, ge=0.0, lt=1.0)
    wikiref_source: str | None = "commoncrawl"  # negatives for the Wikipedia-reference classifier
    max_wikiref_examples: int = Field(20000, ge=1)  # per class


class TokenizerSettings(_Strict):
    """`corral tokenizer`: SentencePiece BPE with the original LLaMA trainer settings, on a mixture sample."""

    output: str | None = None  # default: `tokenizer/` beside the corpus folder
    vocab_size: int = Field(32000, ge=260)  # 256 byte pieces + <unk> <s> </s> + at least one merge
    sample_chars: int = Field(200_000_000, ge=1)  # characters of corpus text drawn by mixture weight
    threads: int = Field(0, ge=0)  # 0: every core
    seed: int | None = None  # default: the manifest's seed


class ShardsSettings(_Strict):
    """`corral shards`: tokenized Arrow shards of the mixture, by token weight × epochs (LLaMA Table 1)."""

    output: str | None = None  # default: `shards/` beside the corpus folder
    total_tokens: int | None = None  # training tokens of the mixture; required by `corral shards`
    validation_fraction: float = Field(0.005, ge=0.0, lt=1.0)  # of each source's documents, by id hash
    max_epochs: float = Field(16.0, gt=0.0)  # a source repeated more often is warned about
    shard_tokens: int = Field(1 << 27, ge=1)  # target tokens per shard file
    seed: int | None = None  # default: the manifest's seed


class Manifest(_Strict):
    """A whole job description; `path` is the file it was read from (paths resolve against its folder)."""

    output: str
    seed: int
    lm: LMSettings = Field(default_factory=LMSettings)
    tokenizer: TokenizerSettings = Field(default_factory=TokenizerSettings)
    shards: ShardsSettings = Field(default_factory=ShardsSettings)
    sources: dict[str, SourceConfig] = Field(min_length=1)
    path: str = ""

    def resolve(self, value: str) -> str:
        """A manifest path made absolute against the manifest's folder (URLs such as gs:// untouched)."""
        if "://" in value or Path(value).is_absolute():
            return value
        base = Path(self.path).parent if self.path else Path.cwd()
        return str((base / value).resolve())

    def output_dir(self, override: str | None = None) -> str:
        return override if override else self.resolve(self.output)

    def lm_dir(self) -> str:
        return self.resolve(self.lm.output)

    def _beside_output(self, value: str | None, name: str) -> str:
        if value:
            return self.resolve(value)
        out = self.output_dir()
        return (
            out.rstrip("/").rsplit("/", 1)[0] + "/" + name if "://" in out else str(Path(out).parent / name)
        )

    def tokenizer_dir(self) -> str:
        return self._beside_output(self.tokenizer.output, "tokenizer")

    def shards_dir(self) -> str:
        return self._beside_output(self.shards.output, "shards")

    def inputs(self, source: str) -> list[str]:
        return [self.resolve(p) for p in self.sources[source].inputs]


def _key(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def parse_manifest(data: dict[str, Any], file: str) -> Manifest:
    """Validate an already-parsed TOML table; the first error becomes a `ManifestError` naming its key."""
    try:
        return Manifest.model_validate({**data, "path": file})
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise ManifestError(file, _key(err["loc"]), msg + more) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest TOML file; errors name the file and the key (or line for bad TOML)."""
    file = str(Path(path).resolve())
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(file, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ManifestError(file, "<file>", f"not UTF-8 at byte {exc.start}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(file, "<toml>", str(exc)) from None
    if "path" in data:
        raise ManifestError(file, "path", "unknown key")
    return parse_manifest(data, file)
