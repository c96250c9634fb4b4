"""The TOML job description, validated with pydantic before any work starts.

A manifest names the output folder, the seed, and one `[sources.NAME]` table per source with its reader,
input globs and mixture weight, plus optional stage settings (`ccnet`, `minhash`, `exact_dedup`). Errors
name the file and the dotted key (`sources.cc.weight`) so a user can fix the right line. Paths in a
manifest are relative to the manifest file; `gs://…` and other URL paths are left as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from manifests.toml_file import read_toml

READER_NAMES = ("wet", "warc", "c4_json", "github", "wikipedia_xml", "gutenberg", "arxiv", "stackexchange")
Bucket = Literal["head", "middle", "tail"]


# `dedup_shards = "auto"`: one hash shard per 256 MiB of (compressed) input, at least 256, so that one
# shard's count holds about the distinct lines of 256 MiB of input whatever the size of the source.
AUTO_SHARD_INPUT_BYTES = 256 << 20
MIN_AUTO_SHARDS = 256


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the key."""

    def __init__(self, file: str, key: str, message: str) -> None:
        self.file = file
        self.key = key
        self.message = message
        super().__init__(f"{file}: {key}: {message}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


LineDedup = Literal["ccnet", "tfds", "off"]


class CCNetSettings(_Strict):
    """The CCNet chain (cc_net `mine.py`): length → line dedup → language ID → perplexity buckets → wiki-ref.

    The defaults here are "off"; each reader's recipe (`RECIPES`) turns on what the LLaMA paper applied
    to that source, and a manifest's own keys win over the recipe.
    """

    enabled: bool = False
    min_length: int = Field(300, ge=0)  # cc_net drops documents shorter than this on read
    # "ccnet": a line in ≥ 2 documents is removed everywhere (cc_net dedup.py); "tfds": one copy is kept
    # and the page re-checked for 3 sentences (tfds c4_utils.remove_duplicate_text); "off".
    line_dedup: LineDedup = "ccnet"
    # The documents whose lines are counted together: "source" (all of it) or a number of input files per
    # group (cc_net counts within groups of 50 shards of ~1.6k WET files each).
    dedup_scope: Literal["source"] | int = "source"
    langid: bool = True
    languages: list[str] = Field(default_factory=list)  # empty: every language is kept
    lang_threshold: float = Field(0.5, ge=0.0, le=1.0)  # cc_net: 0.5 (datatrove 0.65, NeMo 0.3)
    langid_model: str | None = None  # None: the bundled lid.176 model
    perplexity: bool = False
    keep_buckets: list[Bucket] = Field(default_factory=lambda: ["head", "middle", "tail"])
    missing_lm: Literal["keep", "drop"] = "keep"  # a language without a trained LM
    wikiref: bool = False
    wikiref_threshold: float = Field(0.25, ge=0.0, le=1.0)  # RedPajama keeps wiki_prob >= 0.25
    batch_size: int = Field(256, ge=1)  # documents per batch through the chain (and per model call)
    # Line-hash shards of the global count: "auto" = one per AUTO_SHARD_INPUT_BYTES of input (256 at least),
    # so that one shard's count (17 bytes per distinct hash of a file) stays bounded as the source grows.
    dedup_shards: int | Literal["auto"] = "auto"
    # Line dedup broadcasts the duplicated hashes to every worker while they number at most this many
    # (16 bytes each: the hash and its keeping document); above it, verdicts come back per input file
    # from the hash shards.
    broadcast_max_hashes: int = Field(20_000_000, ge=0)

    def hash_shards(self, input_bytes: int) -> int:
        """The number of line-hash shards for a source of `input_bytes` (see `dedup_shards`)."""
        if self.dedup_shards != "auto":
            return self.dedup_shards
        return max(MIN_AUTO_SHARDS, -(-input_bytes // AUTO_SHARD_INPUT_BYTES))

    @field_validator("line_dedup", mode="before")
    @classmethod
    def _bool_line_dedup(cls, value: Any) -> Any:
        return ("ccnet" if value else "off") if isinstance(value, bool) else value

    @field_validator("dedup_scope", "dedup_shards")
    @classmethod
    def _word_or_positive(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, int) and value < 1:
            word = {"dedup_scope": "source", "dedup_shards": "auto"}[info.field_name]
            raise ValueError(f'{info.field_name} must be "{word}" or a number >= 1, got {value}')
        return value


class C4Settings(_Strict):
    """The C4 page rules (tfds `c4_utils.clean_page`, `is_valid_length`) and the bad-words filter."""

    rules: bool = False
    # language → word-list file (one word per line; the LDNOOBW lists C4 used). Empty: no bad-words filter.
    badwords: dict[str, str] = Field(default_factory=dict)


class MinHashSettings(_Strict):
    """Near-duplicate removal: MinHash LSH, clusters as connected components, the smallest id kept."""

    enabled: bool = False
    threshold: float = Field(0.8, gt=0.0, lt=1.0)
    num_perm: int = Field(128, ge=8)
    ngram: int = Field(13, ge=1)
    seed: int = 1
    # "vectorized": each distinct word hashed once, n-gram windows combined in numpy (fast); "datasketch":
    # SHA1 of every shingle, bit-identical to datasketch.MinHash.update (the reference).
    shingle_hash: Literal["vectorized", "datasketch"] = "vectorized"


class ClusterSettings(_Strict):
    """How duplicate groups are found (exact copies, second copies of an id, MinHash clusters): "sharded"
    gathers each key shard on one worker and joins near-duplicate edges in one union-find (fast; memory: a
    shard and the edges); "distributed" never holds a bucket or a component whole (large-star/small-star
    rounds; for Dataflow at internet scale); "auto" is sharded on a local runner or a small input."""

    algorithm: Literal["auto", "sharded", "distributed"] = "auto"
    sharded_max_input_bytes: int = Field(64 << 30, ge=0)  # "auto" above this input on a distributed runner
    key_shards: int = Field(256, ge=1)
    max_rounds: int = Field(32, ge=1)  # components rounds; a chain of n documents needs ~log2(n) + 2


# The LLaMA paper's recipe per reader (arXiv:2302.13971 §2.1); a manifest's own keys win over these.
RECIPES: dict[str, dict[str, Any]] = {
    "wet": {
        "ccnet": {
            "enabled": True,
            "languages": ["en"],
            "perplexity": True,
            "keep_buckets": ["head", "middle"],
            "missing_lm": "drop",
            "wikiref": True,
        },
        "minhash": {"enabled": True, "threshold": 0.8},
    },
    "c4_json": {
        "ccnet": {"enabled": True, "min_length": 0, "languages": ["en"]},
        "c4": {"rules": True},
    },
    "github": {"exact_dedup": True},
    "gutenberg": {"minhash": {"enabled": True, "threshold": 0.9}},
}
RECIPES["warc"] = RECIPES["wet"]


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


class SourceConfig(_Strict):
    """One `[sources.NAME]` table, with its reader's recipe filled in (`RECIPES`)."""

    reader: str
    inputs: list[str] = Field(min_length=1)
    weight: float
    ccnet: CCNetSettings = Field(default_factory=CCNetSettings)
    c4: C4Settings = Field(default_factory=C4Settings)
    minhash: MinHashSettings = Field(default_factory=MinHashSettings)
    clusters: ClusterSettings = Field(default_factory=ClusterSettings)
    exact_dedup: bool = False  # drop documents whose whole text repeats (the smallest id is kept)
    shard_bytes: int = Field(256 * 1024 * 1024, ge=1)  # input bytes per output part (parts follow inputs)
    explicit: dict[str, Any] = Field(default_factory=dict, exclude=True)  # the keys the manifest itself set

    @model_validator(mode="before")
    @classmethod
    def _recipe_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "explicit" in data:
            return data
        recipe = RECIPES.get(data.get("reader", ""), {})
        return {**_merge(recipe, data), "explicit": data}

    @model_validator(mode="after")
    def _stages_agree(self) -> SourceConfig:
        """Refuse explicit settings that switch off a stage another stage needs."""
        cc, set_cc = self.ccnet, self.explicit.get("ccnet", {})
        if not cc.enabled:
            for key in ("perplexity", "wikiref", "languages", "keep_buckets"):
                if set_cc.get(key):
                    raise _StageError(f"ccnet.{key}", "needs the CCNet chain, which is off (ccnet.enabled)")
            return self
        for key in ("perplexity", "wikiref"):
            if getattr(cc, key) and not cc.langid:
                raise _StageError(
                    f"ccnet.{key}", "needs language ID (the models are per language); ccnet.langid is off"
                )
        if (
            "keep_buckets" in set_cc
            and not cc.perplexity
            and set(cc.keep_buckets) != {"head", "middle", "tail"}
        ):
            raise _StageError("ccnet.keep_buckets", "selects perplexity buckets, but ccnet.perplexity is off")
        if self.c4.badwords and not cc.langid:
            raise _StageError("c4.badwords", "the lists are per language; ccnet.langid is off")
        return self

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

    def effective(self) -> dict[str, Any]:
        """Every stage setting in effect (recipe defaults + the manifest's own keys), as `manifest.json`
        records them."""
        return self.model_dump(mode="json", exclude={"inputs", "weight"})


class _StageError(ValueError):
    """Raised inside validation; `key` is relative to the table being validated unless `absolute`."""

    def __init__(self, key: str, message: str, absolute: bool = False) -> None:
        self.key = key
        self.absolute = absolute
        super().__init__(message)


class LMSettings(_Strict):
    """`corral lm`: per-language SentencePiece + KenLM and p30/p60 cut-offs from the Wikipedia source."""

    source: str = "wikipedia"
    output: str = "lm"  # relative to the manifest file, like every path
    languages: list[str] = Field(default_factory=list)  # empty: every language with enough text
    vocab_size: int = Field(65536, ge=16)  # SentencePiece unigram (cc_net); a soft cap for small inputs
    min_docs: int = Field(20, ge=1)
    order: int = Field(5, ge=2)  # KenLM n-gram order (cc_net: 5)
    sort_memory: str = "20%"  # lmplz -S
    sentence_sample: int = Field(1_000_000, ge=1)  # lines SentencePiece samples to train on
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
    # Row groups of a source are read in a seeded random order until their text is this many times the
    # source's share of sample_chars; the sample is drawn from those (larger: more spread out, more reading).
    read_factor: float = Field(2.0, ge=1.0)


# Epochs above which `corral shards` refuses a source outright. Muennighoff et al. 2023 ("Scaling
# Data-Constrained Language Models", arXiv:2305.16264) find repeated tokens worth little beyond ~16 epochs
# (hence the `max_epochs` warning) and nothing measurable far beyond; a hundred repeats is a mistake in
# `total_tokens` or a weight more often than a plan.
HARD_MAX_EPOCHS = 100.0


class ShardsSettings(_Strict):
    """`corral shards`: tokenized Arrow shards of the mixture, by token weight × epochs (LLaMA Table 1)."""

    output: str | None = None  # default: `shards/` beside the corpus folder
    tokenizer: str | None = None  # folder with card.json + tokenizer.model; default: `[tokenizer] output`
    total_tokens: int | None = Field(None, gt=0)  # tokens of the training stream; required by `corral shards`
    validation_fraction: float = Field(0.005, ge=0.0, lt=1.0)  # of each source's documents, by id hash
    max_epochs: float = Field(16.0, gt=0.0, le=HARD_MAX_EPOCHS)  # more repeats of a source: a warning
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

    @model_validator(mode="after")
    def _models_have_a_source(self) -> Manifest:
        """Perplexity and wiki-ref need the models `corral lm` trains from the manifest's own sources."""
        for name, cfg in self.sources.items():
            cc = cfg.ccnet
            if not cc.enabled:
                continue
            for stage in ("perplexity", "wikiref"):
                if getattr(cc, stage) and self.lm.source not in self.sources:
                    raise _StageError(
                        f"sources.{name}.ccnet.{stage}",
                        f"needs the LM models `corral lm` trains from the Wikipedia source `lm.source = "
                        f"{self.lm.source!r}`, which this manifest does not have: add that source, or set "
                        f"`{stage} = false`",
                        absolute=True,
                    )
            if cc.wikiref and (not self.lm.wikiref_source or self.lm.wikiref_source not in self.sources):
                raise _StageError(
                    "lm.wikiref_source",
                    f"sources.{name}.ccnet.wikiref needs negatives from a Common Crawl source; "
                    f"{self.lm.wikiref_source!r} is not one of the manifest's sources",
                    absolute=True,
                )
        return self

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
        key = _key(err["loc"])
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        stage = (err.get("ctx") or {}).get("error")
        if isinstance(stage, _StageError):
            key = stage.key if stage.absolute or key == "<top level>" else f"{key}.{stage.key}"
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise ManifestError(file, key, msg + more) from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest TOML file; errors name the file and the key (or line for bad TOML)."""
    file, data = read_toml(path, ManifestError)
    if "path" in data:
        raise ManifestError(file, "path", "unknown key")
    return parse_manifest(data, file)
