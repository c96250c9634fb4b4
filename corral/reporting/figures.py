"""The report's figures: matplotlib (Agg, no display) drawings of the numbers the stages wrote.

Each figure is a function `draw(run) -> Figure` that raises `NoData(reason)` when the run folder does
not hold what it needs; `FIGURES` lists them in page order. Figures are built with `matplotlib.figure.
Figure` directly (no pyplot state), and saved without the "Software" PNG text chunk, so the same run
folder gives the same bytes.

Where the numbers come from (and what the build does not record):
- funnel: `read`, `dropped{reason}` and `kept` of each `corpus/<source>/manifest.json` (documents). The
  build counts documents per drop reason, not characters; the character view shows what is recorded:
  the input files' bytes on disk, the characters line dedup removed (`stats.chars_removed`) and the kept
  text (`parts[].text_bytes`, UTF-8 bytes).
- languages: `stats.lang.X`, fastText's label of every document that reached language ID (cc_net
  `split_by_lang`), before the language filter.
- perplexity: `stats.perplexity.X.B`, log10 bins of 20 a decade (`filters.scoring.perplexity_bin`),
  every scored document including the dropped tail, with `lm/lm.json`'s p30/p60 (cc_net
  `PerplexityBucket(30, 60)`: head < p30 ≤ middle < p60 ≤ tail).
- MinHash: `near_duplicate_clusters` {cluster size: clusters}; line dedup: `stats.lines_removed / lines`.
- token mix: `shards/manifest.json` `sources{weight, achieved, epochs}` (LLaMA Table 1's sampling
  proportions and epochs).
- training: `train/metrics.jsonl` (loss, loss_by_source, val_loss_by_source, lr, grad_norm,
  tokens_per_s, mfu; MFU as PaLM appendix B defines it, null where the device's peak is unknown).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, PercentFormatter  # noqa: E402

from corral.reporting.run import Run  # noqa: E402

PERPLEXITY_BINS_PER_DECADE = 20  # filters.scoring.PERPLEXITY_BINS_PER_DECADE (the build's histogram bins)
TOP_LANGUAGES = 8
DPI = 100
PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
READ_COLOR, DROP_COLOR, KEPT_COLOR = "#9e9e9e", "#d9534f", "#2e8b57"
BUCKET_COLORS = {"head": "#a8dba8", "middle": "#ffd966", "tail": "#cfcfcf"}


OLD_BUILD = (
    ", or the corpus was built before corral recorded these stats: rebuild with `corral build --force`"
)


class NoData(Exception):
    """The run folder lacks what a figure draws; the message says what (shown on the page)."""


@dataclass(frozen=True)
class FigureSpec:
    file: str
    title: str
    section: str
    draw: Callable[[Run], Figure]
    caption: str = ""


def source_colors(names: Iterable[str]) -> dict[str, str]:
    """One colour per source, the same in every figure (sources in sorted order)."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(set(names)))}


def _colors(run: Run) -> dict[str, str]:
    names = set(run.corpus)
    if run.shards is not None:
        names |= set(run.shards.source_names)
    for r in run.metrics:
        names |= set(r.get("loss_by_source") or {})
    return source_colors(names)


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _si(value: float) -> str:
    """1234567 → '1.23M': compact axis and label numbers."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:.3g}"


def _message(ax: Any, text: str) -> None:
    """A panel that has nothing to plot says why, in the panel."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------------------------------- corpus


def drop_order(reason: str) -> int:
    """Where a drop reason happens in the build: the reader's and the recipe's rules first, then the
    build's passes in order (length, exact dedup, line dedup, LID, perplexity, wiki-ref, bad words,
    MinHash), as `pipeline/build.py` runs them."""
    fixed = {
        "too_short": 1,
        "duplicate_text": 2,
        "line_dedup_empty": 3,
        "lang": 4,
        "lang_score": 5,
        "no_lm": 6,
        "wikiref": 8,
        "c4_badwords": 9,
        "duplicate_id": 10,
        "near_duplicate": 11,
    }
    if reason.startswith("bucket_"):
        return 7
    return fixed.get(reason, 0)


def funnel_documents(run: Run) -> Figure:
    if not run.corpus:
        raise NoData("no built source (corpus/<source>/manifest.json)")
    sources = sorted(run.corpus)
    ncols = 1 if len(sources) == 1 else 2
    nrows = math.ceil(len(sources) / ncols)
    bars = {s: 2 + len(run.corpus[s].dropped) for s in sources}
    ratios = [max(bars[s] for s in sources[r * ncols : (r + 1) * ncols]) + 1.5 for r in range(nrows)]
    fig = _figure(14, 1.2 + 0.3 * sum(ratios))
    grid = fig.add_gridspec(nrows, ncols, height_ratios=ratios)
    for i, source in enumerate(sources):
        m = run.corpus[source]
        ax = fig.add_subplot(grid[i // ncols, i % ncols])
        reasons = sorted(m.dropped.items(), key=lambda kv: (drop_order(kv[0]), -kv[1], kv[0]))
        labels, lefts, widths, colors = ["read"], [0], [m.read], [READ_COLOR]
        remaining = m.read
        for reason, n in reasons:
            remaining -= n
            labels.append(f"− {reason}")
            lefts.append(remaining)
            widths.append(n)
            colors.append(DROP_COLOR)
        labels.append("kept")
        lefts.append(0)
        widths.append(m.kept)
        colors.append(KEPT_COLOR)
        y = list(range(len(labels)))
        ax.barh(y, widths, left=lefts, color=colors, height=0.7)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(1, m.read) * 1.22)
        for yi, left, width in zip(y, lefts, widths, strict=True):
            share = width / m.read if m.read else 0
            ax.text(left + width, yi, f" {width:,} ({share:.1%})", va="center", fontsize=7.5)
        ax.set_xlabel("documents")
        kept_share = m.kept / m.read if m.read else 0
        ax.set_title(
            f"{source} ({m.reader}): {m.read:,} read → {m.kept:,} kept ({kept_share:.0%})", fontsize=10
        )
        ax.grid(axis="x", alpha=0.3)
    fig.legend(
        handles=[
            Patch(color=READ_COLOR, label="documents read"),
            Patch(color=DROP_COLOR, label="dropped, by reason (in the build's order)"),
            Patch(color=KEPT_COLOR, label="kept in the corpus"),
        ],
        loc="outside lower center",
        ncols=3,
    )
    fig.suptitle("Per-source funnel in documents: read → each drop reason → kept (corpus manifests)")
    return fig


def funnel_characters(run: Run) -> Figure:
    if not run.corpus:
        raise NoData("no built source (corpus/<source>/manifest.json)")
    sources = sorted(run.corpus)
    series = [
        (
            "input files on disk (bytes, as stored: compressed)",
            "#bdbdbd",
            lambda s: sum(i.bytes for i in run.corpus[s].inputs),
        ),
        (
            "raw input, decompressed (bytes: markup, headers and all)",
            "#6f6f6f",
            lambda s: run.raw_input.get(s, 0),
        ),
        (
            "removed by line dedup (characters)",
            DROP_COLOR,
            lambda s: run.corpus[s].stats.get("chars_removed", 0),
        ),
        (
            "kept text (UTF-8 bytes)",
            KEPT_COLOR,
            lambda s: sum(p.text_bytes or 0 for p in run.corpus[s].parts),
        ),
    ]
    if not run.raw_input:
        series.pop(1)
    fig = _figure(12, 1.6 + 0.2 * len(series) * len(sources))
    ax = fig.add_subplot()
    height = 0.8 / len(series)
    for k, (label, color, value) in enumerate(series):
        ys = [i + (k - (len(series) - 1) / 2) * height for i in range(len(sources))]
        vals = [value(s) for s in sources]
        ax.barh(ys, [v if v > 0 else float("nan") for v in vals], height=height, color=color, label=label)
        for yv, v in zip(ys, vals, strict=True):
            if v > 0:
                ax.text(v, yv, f" {_si(v)}", va="center", fontsize=7.5)
    labels = []
    for s in sources:
        kept = sum(p.text_bytes or 0 for p in run.corpus[s].parts)
        raw = run.raw_input.get(s)
        labels.append(f"{s}\n(kept {kept / raw:.0%} of raw)" if raw else s)
    ax.set_yticks(range(len(sources)), labels)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi * 3)
    ax.set_xlabel("bytes or characters (log scale)")
    ax.grid(axis="x", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8)
    ax.set_title(
        "Per-source funnel in characters: raw input → removed by line dedup → kept text\n"
        "(the build counts documents per drop reason, not characters: these are the sizes it records)",
        fontsize=10,
    )
    return fig


def _stat_groups(run: Run, prefix: str) -> dict[str, dict[str, int]]:
    """source → {rest of the key: count} for the stats keys starting with `prefix`."""
    out: dict[str, dict[str, int]] = {}
    for source, m in sorted(run.corpus.items()):
        found = {k.removeprefix(prefix): v for k, v in m.stats.items() if k.startswith(prefix)}
        if found:
            out[source] = found
    return out


def languages(run: Run) -> Figure:
    by_source = _stat_groups(run, "lang.")
    if not by_source:
        raise NoData(f"no `lang.X` stats in the corpus manifests (no source ran language ID{OLD_BUILD})")
    totals: Counter[str] = Counter()
    for counts in by_source.values():
        totals.update(counts)
    top = [lang for lang, _ in totals.most_common(TOP_LANGUAGES)]
    shown = top + (["other"] if len(totals) > len(top) else [])
    colors = {lang: PALETTE[i % len(PALETTE)] for i, lang in enumerate(shown)}
    colors["other"] = "#cccccc"
    sources = list(by_source)
    fig = _figure(12, 1.8 + 0.55 * len(sources))
    ax = fig.add_subplot()
    left = [0.0] * len(sources)

    def count(counts: dict[str, int] | Counter[str], lang: str) -> int:
        return sum(v for k, v in counts.items() if k not in top) if lang == "other" else counts.get(lang, 0)

    for lang in shown:
        shares = [count(by_source[s], lang) / max(1, sum(by_source[s].values())) for s in sources]
        label = f"{lang} ({count(totals, lang):,})"
        ax.barh(range(len(sources)), shares, left=left, color=colors[lang], label=label)
        for i, (x0, w) in enumerate(zip(left, shares, strict=True)):
            if w >= 0.04:
                ax.text(x0 + w / 2, i, f"{w:.0%}", ha="center", va="center", fontsize=7.5, color="white")
        left = [a + b for a, b in zip(left, shares, strict=True)]
    labels = [f"{s}\n({sum(by_source[s].values()):,} docs)" for s in sources]
    ax.set_yticks(range(len(sources)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of the documents that reached language ID (%)")
    fig.legend(
        *ax.get_legend_handles_labels(), title="language (documents)", loc="outside right upper", fontsize=8
    )
    ax.set_title("Language distribution (fastText lid.176), before the language filter", fontsize=11)
    return fig


def perplexity(run: Run) -> Figure:
    by_source = _stat_groups(run, "perplexity.")
    hist: dict[str, dict[str, Counter[int]]] = {}  # lang → source → bin → documents
    for source, counts in by_source.items():
        for key, n in counts.items():
            lang, _, b = key.rpartition(".")
            try:
                hist.setdefault(lang, {}).setdefault(source, Counter())[int(b)] += n
            except ValueError:
                continue
    if not hist:
        raise NoData(
            f"no `perplexity.X.B` stats in the corpus manifests (no source scored perplexity{OLD_BUILD})"
        )
    langs = sorted(hist, key=lambda lang: -sum(sum(c.values()) for c in hist[lang].values()))
    colors = _colors(run)
    ncols = 1 if len(langs) == 1 else 2
    nrows = math.ceil(len(langs) / ncols)
    fig = _figure(12 if ncols == 1 else 14, 0.8 + 4.2 * nrows)
    for i, lang in enumerate(langs):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        bins = sorted({b for c in hist[lang].values() for b in c})
        lo, hi = bins[0], bins[-1] + 1
        edges = [10 ** (b / PERPLEXITY_BINS_PER_DECADE) for b in range(lo, hi + 1)]
        bottom = [0] * (hi - lo)
        for source in sorted(hist[lang]):
            counts = [hist[lang][source].get(b, 0) for b in range(lo, hi)]
            ax.bar(
                edges[:-1],
                counts,
                width=[b - a for a, b in zip(edges[:-1], edges[1:], strict=True)],
                bottom=bottom,
                align="edge",
                color=colors.get(source),
                edgecolor="white",
                linewidth=0.3,
                label=f"{source} ({sum(counts):,})",
            )
            bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
        ax.set_xscale("log")
        ax.set_xlim(edges[0] / 1.2, edges[-1] * 1.2)
        entry = run.lm.languages.get(lang) if run.lm is not None else None
        total = sum(bottom)
        handles, labels = ax.get_legend_handles_labels()
        if entry is not None:
            x0, x1 = ax.get_xlim()
            kept = sorted(
                {
                    b
                    for source in hist[lang]
                    for b in run.corpus[source].settings.get("ccnet", {}).get("keep_buckets", [])
                }
            )
            for a, b, name in (
                (x0, entry.p30, "head"),
                (entry.p30, entry.p60, "middle"),
                (entry.p60, x1, "tail"),
            ):
                verdict = "kept" if name in kept else "dropped"
                span = ax.axvspan(a, b, color=BUCKET_COLORS[name], alpha=0.5, zorder=0, linewidth=0)
                handles.append(span)
                labels.append(f"{name} bucket ({verdict})")
            for x, name, style in ((entry.p30, "p30", "--"), (entry.p60, "p60", ":")):
                handles.append(ax.axvline(x, color="black", linestyle=style, linewidth=1.4))
                labels.append(f"{name} = {x:.4g}")
            cut = f"head < p30 = {entry.p30:.3g} ≤ middle < p60 = {entry.p60:.3g} ≤ tail"
        else:
            cut = "no cut-offs: lm/lm.json has no model for this language"
        ax.set_title(f"{lang}: {total:,} documents scored; {cut}", fontsize=10)
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("perplexity per SentencePiece piece (KenLM 5-gram), log scale; bins of 1/20 decade")
        ax.set_ylabel("documents")
        ax.legend(handles, labels, title="source (documents) and buckets", fontsize=8, loc="upper right")
    fig.suptitle("Perplexity histogram per language, with the p30/p60 bucket cut-offs of lm/lm.json")
    return fig


def minhash_clusters(run: Run) -> Figure:
    groups = {
        s: m.near_duplicate_clusters for s, m in sorted(run.corpus.items()) if m.near_duplicate_clusters
    }
    if not groups:
        unrecorded = sorted(s for s, m in run.corpus.items() if m.dropped.get("near_duplicate"))
        if unrecorded:
            raise NoData(
                f"{', '.join(unrecorded)} dropped near-duplicates but record no cluster sizes (built before "
                "corral recorded them: rebuild with `corral build --force`)"
            )
        ran = [s for s, m in run.corpus.items() if m.settings.get("minhash", {}).get("enabled")]
        if ran:
            raise NoData(f"MinHash ran on {', '.join(sorted(ran))} and found no near-duplicate cluster")
        raise NoData("no source ran MinHash near-duplicate detection")
    sizes = sorted({int(k) for g in groups.values() for k in g})
    colors = _colors(run)
    fig = _figure(12, 5)
    ax = fig.add_subplot()
    width = 0.8 / len(groups)
    for k, (source, clusters) in enumerate(groups.items()):
        xs = [i + (k - (len(groups) - 1) / 2) * width for i in range(len(sizes))]
        ys = [clusters.get(str(s), 0) for s in sizes]
        removed = sum((int(s) - 1) * n for s, n in clusters.items())
        docs = sum(int(s) * n for s, n in clusters.items())
        ax.bar(
            xs,
            ys,
            width=width,
            color=colors.get(source),
            label=f"{source}: {sum(clusters.values()):,} clusters, {docs:,} documents, {removed:,} dropped",
        )
        for x, y in zip(xs, ys, strict=True):
            if y:
                ax.text(x, y, f"{y:,}", ha="center", va="bottom", fontsize=7.5)
    ax.set_xticks(range(len(sizes)), [str(s) for s in sizes])
    ax.set_xlabel("cluster size (documents in one near-duplicate cluster; all but one are dropped)")
    ax.set_ylabel("clusters")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    settings = {
        (m.settings.get("minhash", {}).get("threshold"), m.settings.get("minhash", {}).get("num_perm"))
        for s, m in run.corpus.items()
        if s in groups
    }
    how = ""
    if len(settings) == 1:
        threshold, perms = next(iter(settings))
        how = f" (Jaccard ≥ {threshold}, {perms} permutations)"
    ax.set_title(f"MinHash near-duplicate cluster sizes{how}", fontsize=11)
    return fig


def line_dedup(run: Run) -> Figure:
    rows = [
        (s, m.stats.get("lines", 0), m.stats.get("lines_removed", 0), m.stats.get("chars_removed", 0))
        for s, m in sorted(run.corpus.items())
        if m.stats.get("lines", 0) > 0
    ]
    if not rows:
        raise NoData(f"no `lines` stats in the corpus manifests (no source ran line dedup{OLD_BUILD})")
    colors = _colors(run)
    fig = _figure(10, 4.8)
    ax = fig.add_subplot()
    rates = [removed / lines for _, lines, removed, _ in rows]
    ax.bar(range(len(rows)), rates, color=[colors.get(s) for s, *_ in rows], width=0.6)
    for i, (_, lines, removed, chars) in enumerate(rows):
        ax.text(
            i,
            rates[i],
            f"{rates[i]:.1%}\n{removed:,} of {lines:,} lines\n{_si(chars)} chars",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.set_xticks(range(len(rows)), [s for s, *_ in rows])
    ax.set_ylim(0, min(1.0, max(rates) * 1.45 + 0.02))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("source")
    ax.set_ylabel("lines removed (% of the lines that reached line dedup)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        "Line dedup (CCNet): a normalised line seen twice in the source is removed everywhere", fontsize=11
    )
    return fig


# ------------------------------------------------------------------------------------------- shards


def token_mix(run: Run) -> Figure:
    if run.shards is None or not run.shards.sources:
        raise NoData("no shard manifest (shards/manifest.json)")
    mix = run.shards.sources
    sources = sorted(mix, key=lambda s: -mix[s].weight)
    fig = _figure(14, 1.6 + 0.55 * len(sources))
    ax, ax2 = fig.subplots(1, 2, width_ratios=[3, 2], sharey=True)
    ys = range(len(sources))
    target = [mix[s].weight for s in sources]
    achieved = [mix[s].achieved for s in sources]
    ax.barh([y - 0.2 for y in ys], target, height=0.38, color="#9e9e9e", label="target (manifest weight)")
    ax.barh([y + 0.2 for y in ys], achieved, height=0.38, color="#1f77b4", label="achieved (training stream)")
    for y, t, a in zip(ys, target, achieved, strict=True):
        ax.text(t, y - 0.2, f" {t:.2%}", va="center", fontsize=7.5)
        ax.text(a, y + 0.2, f" {a:.2%} ({(a - t) * 100:+.2f} pp)", va="center", fontsize=7.5)
    ax.set_yticks(list(ys), sources)
    ax.invert_yaxis()
    ax.set_xlim(0, max(target + achieved) * 1.35)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("share of training tokens (%)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Token mix: target vs achieved ({run.shards.train_tokens:,} training tokens)", fontsize=10)
    epochs = [mix[s].epochs for s in sources]
    ax2.barh(list(ys), epochs, height=0.6, color="#ff7f0e")
    for y, e, s in zip(ys, epochs, sources, strict=True):
        ax2.text(
            e, y, f" {e:.2f} ({mix[s].tokens:,} of {mix[s].unique_tokens:,} tok)", va="center", fontsize=7.5
        )
    ax2.axvline(1.0, color="black", linestyle="--", linewidth=1, label="one epoch")
    ax2.set_xlim(0, max(max(epochs), 1.0) * 1.6)
    ax2.set_xlabel("epochs (tokens in the stream / unique tokens of the source)")
    ax2.legend(loc="lower right", fontsize=8)
    ax2.grid(axis="x", alpha=0.3)
    ax2.set_title(f"Epochs per source (max_epochs {run.shards.max_epochs:g})", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------- training


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for r in records:
        v = r.get(key)
        if isinstance(v, int | float) and math.isfinite(v) and isinstance(r.get("tokens"), int | float):
            xs.append(r["tokens"])
            ys.append(v)
    return xs, ys


def _by_source(records: list[dict[str, Any]], key: str) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for r in records:
        for source, v in (r.get(key) or {}).items():
            if isinstance(v, int | float) and math.isfinite(v) and isinstance(r.get("tokens"), int | float):
                xs, ys = out.setdefault(source, ([], []))
                xs.append(r["tokens"])
                ys.append(v)
    return dict(sorted(out.items()))


def loss(run: Run) -> Figure:
    if not run.metrics:
        raise NoData("no training metrics (train/metrics.jsonl)")
    colors = _colors(run)
    fig = _figure(14, 5.2)
    ax, axv = fig.subplots(1, 2, sharey=True)
    for source, (xs, ys) in _by_source(run.metrics, "loss_by_source").items():
        ax.plot(xs, ys, color=colors.get(source), linewidth=1, alpha=0.8, label=source)
    xs, ys = _series(run.metrics, "loss")
    ax.plot(xs, ys, color="black", linewidth=2.2, label="all sources")
    ax.set_title("Training loss per source (each logged interval)", fontsize=10)
    val = [r for r in run.metrics if "val_loss" in r]
    if val:
        for source, (xs, ys) in _by_source(val, "val_loss_by_source").items():
            axv.plot(xs, ys, color=colors.get(source), marker="o", markersize=4, linewidth=1, label=source)
        xs, ys = _series(val, "val_loss")
        axv.plot(xs, ys, color="black", marker="s", linewidth=2.2, label="all sources")
        last = val[-1]
        axv.set_title(
            f"Validation loss per source (last: {last['val_loss']:.3f} nats, "
            f"perplexity {last.get('val_ppl', math.exp(last['val_loss'])):.1f})",
            fontsize=10,
        )
        axv.legend(fontsize=8, ncols=2)
    else:
        _message(
            axv, "no validation records in train/metrics.jsonl\n(eval.sequences = 0, or no validation shard)"
        )
        axv.set_title("Validation loss per source", fontsize=10)
    for a in (ax, axv):
        a.set_xlabel("training tokens seen")
        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
        a.grid(alpha=0.3)
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.legend(fontsize=8, ncols=2)
    fig.suptitle("Loss against tokens (train/metrics.jsonl)")
    return fig


def training(run: Run) -> Figure:
    if not run.metrics:
        raise NoData("no training metrics (train/metrics.jsonl)")
    fig = _figure(14, 7.5)
    (a_lr, a_gn), (a_tps, a_mfu) = fig.subplots(2, 2)
    for ax, key, label, title, color in (
        (a_lr, "lr", "learning rate", "Learning rate (linear warmup, cosine decay)", "#1f77b4"),
        (a_gn, "grad_norm", "gradient L2 norm (before clipping)", "Gradient norm", "#9467bd"),
        (a_tps, "tokens_per_s", "tokens / s (all devices)", "Throughput", "#2ca02c"),
    ):
        xs, ys = _series(run.metrics, key)
        if xs:
            ax.plot(xs, ys, color=color, linewidth=1.5, marker="." if len(xs) < 60 else None)
        else:
            _message(ax, f"no `{key}` in train/metrics.jsonl")
        ax.set_ylabel(label)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    xs, ys = _series(run.metrics, "mfu")
    device = (run.summary or {}).get("device", "this device")
    if xs:
        a_mfu.plot(
            xs, [y * 100 for y in ys], color="#d62728", linewidth=1.5, marker="." if len(xs) < 60 else None
        )
        a_mfu.set_ylabel("MFU (% of peak bf16 FLOP/s)")
        a_mfu.set_title(f"Model FLOPs utilisation on {device}", fontsize=10)
    else:
        a_mfu.set_title("Model FLOPs utilisation", fontsize=10)
        _message(
            a_mfu,
            f"MFU not measured: no peak FLOP/s is known for\n{device}\n"
            "(metrics.jsonl has mfu = null; set log.peak_tflops in the trainer config)",
        )
    a_mfu.grid(alpha=0.3)
    for ax in (a_lr, a_gn, a_tps, a_mfu):
        ax.set_xlabel("training tokens seen")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _si(v)))
    fig.suptitle("Optimiser and throughput against tokens (train/metrics.jsonl)")
    return fig


FIGURES: list[FigureSpec] = [
    FigureSpec(
        "funnel_documents.png",
        "Per-source funnel (documents)",
        "corpus",
        funnel_documents,
        "For each source: the documents read, each drop reason with the documents it removed (the reader's "
        "and the recipe's rules first, then the build's passes in order: length, exact dedup, line dedup, "
        "language ID, perplexity bucket, wiki-ref, bad words, MinHash), and the documents kept; "
        "read = kept + Σ dropped exactly.",
    ),
    FigureSpec(
        "funnel_characters.png",
        "Per-source funnel (characters)",
        "corpus",
        funnel_characters,
        "The build counts documents per drop reason, not characters. Shown: the input files' size on disk, "
        "their decompressed size (measured by the report for local inputs), the characters line dedup "
        "removed (stats.chars_removed) and the kept text (UTF-8 bytes of the Parquet parts).",
    ),
    FigureSpec(
        "languages.png",
        "Language distribution",
        "corpus",
        languages,
        "fastText lid.176 labels of every document that reached language ID (stats lang.X), before the "
        "language and score filters drop those outside the source's languages.",
    ),
    FigureSpec(
        "perplexity.png",
        "Perplexity per language with the p30/p60 cut-offs",
        "corpus",
        perplexity,
        "KenLM perplexity of every scored document, the dropped tail included (stats perplexity.X.B, bins "
        "of 1/20 decade), stacked by source; the lines are the p30/p60 cut-offs computed on held-out "
        "Wikipedia text (lm/lm.json), the shading the buckets and whether the sources keep them.",
    ),
    FigureSpec(
        "minhash_clusters.png",
        "MinHash cluster sizes",
        "corpus",
        minhash_clusters,
        "Near-duplicate clusters found by MinHash LSH (near_duplicate_clusters): clusters of each size; "
        "one document of each cluster is kept.",
    ),
    FigureSpec(
        "line_dedup.png",
        "Line-dedup removal rate per source",
        "corpus",
        line_dedup,
        "Lines removed by line dedup, whose normalised hash occurs at least twice in the source "
        "(stats lines_removed / lines).",
    ),
    FigureSpec(
        "token_mix.png",
        "Token mix: target vs achieved, epochs",
        "shards",
        token_mix,
        "Left: each source's share of the training stream asked for (the manifest weight) and reached "
        "(whole documents limit it). Right: epochs = tokens in the stream / unique tokens of the source "
        "(LLaMA Table 1).",
    ),
    FigureSpec(
        "loss.png",
        "Training and validation loss per source",
        "training",
        loss,
        "Training loss per source over each logging interval (noisy for a small source: few of its tokens "
        "per interval) and validation loss per source at each evaluation, against training tokens.",
    ),
    FigureSpec(
        "training.png",
        "Learning rate, gradient norm, tokens/s and MFU",
        "training",
        training,
        "Learning rate, gradient norm before clipping, throughput and model FLOPs utilisation (MFU = tokens/s "
        "× FLOPs per token / peak FLOP/s, PaLM appendix B) at each logged step.",
    ),
]


def save(fig: Figure, path: str) -> None:
    """PNG without the Software text chunk (matplotlib writes no date into PNGs), so bytes are stable."""
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
