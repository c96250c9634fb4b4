"""The per-document decisions of the CCNet chain after line dedup: language, perplexity bucket, wiki-ref,
bad words.

Order and thresholds as the references run them: fastText LID on the deduplicated text, score rounded to
2 dp, dropped below `lang_threshold` or outside `languages` (cc_net `split_by_lang`); the perplexity of
the language's KenLM model and its head/middle/tail bucket, kept when in `keep_buckets` (cc_net
`perplexity.py`, RedPajama keeps head + middle); a language with no trained model is kept or dropped by
`missing_lm`; then P(wiki-reference) from the fastText classifier, kept at ≥ `wikiref_threshold`
(RedPajama: 0.25); then the C4 bad-words filter for the page's language (tfds `get_badwords_filter_fn`).

`DocumentScorer.score(texts)` returns, per document, the meta it gained and its drop reason (None = kept).
The models are loaded once (`ScoringModels.load`) from local paths; finding and copying them is the
caller's business.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from filters.langid import LanguageIdentifier, lang_drop_reason
from filters.perplexity import BucketCutoffs, PerplexityScorer
from filters.quality import BadWordsFilter

if TYPE_CHECKING:
    from filters.wikiref import WikiRefClassifier


@dataclass(frozen=True)
class LanguageModelFiles:
    """One language's perplexity model: local file paths and the bucket cut-offs."""

    sp_model: str
    kenlm_model: str
    p30: float
    p60: float


@dataclass
class ScoringModels:
    """The models the chain needs, loaded once per worker."""

    lid: LanguageIdentifier | None = None
    lms: dict[str, tuple[PerplexityScorer, BucketCutoffs]] = field(default_factory=dict)
    wikiref: WikiRefClassifier | None = None
    badwords: BadWordsFilter | None = None

    @classmethod
    def load(
        cls,
        *,
        langid: bool,
        lid_model: str | None = None,
        lms: Mapping[str, LanguageModelFiles] | None = None,
        wikiref_model: str | None = None,
        badword_files: Mapping[str, str] | None = None,
    ) -> ScoringModels:
        loaded = {
            lang: (PerplexityScorer(f.sp_model, f.kenlm_model), BucketCutoffs(f.p30, f.p60))
            for lang, f in (lms or {}).items()
        }
        wikiref = None
        if wikiref_model:
            from filters.wikiref import WikiRefClassifier

            wikiref = WikiRefClassifier.load(wikiref_model)
        return cls(
            lid=LanguageIdentifier(lid_model) if langid else None,
            lms=loaded,
            wikiref=wikiref,
            badwords=BadWordsFilter.from_files(badword_files) if badword_files else None,
        )


PERPLEXITY_BINS_PER_DECADE = 20


def perplexity_bin(lang: str, pp: float) -> str:
    """The stats key of a perplexity histogram bin: log10 bins, `PERPLEXITY_BINS_PER_DECADE` a decade;
    bin B spans [10^(B/20), 10^((B+1)/20))."""
    b = math.floor(math.log10(max(pp, 1e-9)) * PERPLEXITY_BINS_PER_DECADE)
    return f"perplexity.{lang}.{b}"


class DocumentScorer:
    """Scores batches of documents with `ScoringModels` under a source's CCNet and C4 settings.

    `settings` has the attributes of `manifests.schema.CCNetSettings` (langid, languages, lang_threshold,
    perplexity, keep_buckets, missing_lm, wikiref, wikiref_threshold).
    """

    def __init__(self, settings: Any, models: ScoringModels) -> None:
        self.s = settings
        self.m = models
        self.keep_buckets = frozenset(settings.keep_buckets)
        # Counts that are not drops, taken by the caller: `no_lm` = documents of a language without a model
        # that `missing_lm = "keep"` let through; `lang.X` = documents identified as X (before the language
        # filter); `perplexity.X.B` = documents of language X whose perplexity is in bin B (see
        # `perplexity_bin`), every scored one, so the tail that is dropped shows too.
        self.stats: Counter[str] = Counter()

    def score(self, texts: Sequence[str]) -> list[tuple[dict[str, Any], str | None]]:
        s, m = self.s, self.m
        out: list[tuple[dict[str, Any], str | None]] = [({}, None) for _ in texts]
        alive = list(range(len(texts)))
        if m.lid is not None:
            for i, (lang, score) in zip(alive, m.lid.predict_batch(list(texts)), strict=True):
                out[i][0].update(lang=lang, lang_score=score)
                self.stats[f"lang.{lang}"] += 1
                reason = lang_drop_reason(lang, score, s.lang_threshold, s.languages)
                if reason:
                    out[i] = (out[i][0], reason)
            alive = [i for i in alive if out[i][1] is None]
        if s.perplexity:
            alive = self._perplexity(texts, alive, out)
        if m.wikiref is not None and alive:
            probs = m.wikiref.predict_proba_batch([texts[i] for i in alive])
            for i, prob in zip(alive, probs, strict=True):
                out[i][0]["wikiref_prob"] = round(float(prob), 4)
                if prob < s.wikiref_threshold:
                    out[i] = (out[i][0], "wikiref")
            alive = [i for i in alive if out[i][1] is None]
        if m.badwords is not None:
            for i in alive:
                reason = m.badwords.reason(texts[i], out[i][0].get("lang"))
                if reason:
                    out[i] = (out[i][0], reason)
        return out

    def _perplexity(self, texts: Sequence[str], alive: list[int], out: list) -> list[int]:
        by_lang: dict[str, list[int]] = {}
        for i in alive:
            by_lang.setdefault(out[i][0].get("lang", "unknown"), []).append(i)
        kept: list[int] = []
        for lang, idx in by_lang.items():
            model = self.m.lms.get(lang)
            if model is None:
                if self.s.missing_lm == "drop":
                    for i in idx:
                        out[i] = (out[i][0], "no_lm")
                else:
                    self.stats["no_lm"] += len(idx)
                    kept.extend(idx)
                continue
            scorer, cutoffs = model
            for i, pp in zip(idx, scorer.perplexity_batch([texts[i] for i in idx]), strict=True):
                bucket = cutoffs.bucket(pp)
                out[i][0].update(perplexity=round(float(pp), 1), bucket=bucket)
                self.stats[perplexity_bin(lang, pp)] += 1
                if bucket in self.keep_buckets:
                    kept.append(i)
                else:
                    out[i] = (out[i][0], f"bucket_{bucket}")
        return sorted(kept)
