"""The report's one HTML page: static, no script, no server; the figures are PNG files beside it.

Every value from the run folder is escaped (generated text and document titles are arbitrary text). The
page opens with what is missing, so a partial run folder says at once which stages to (re)run.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from corral.reporting import versions
from corral.reporting.run import Run

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1440px;
       padding: 0 24px 48px; color: #222; line-height: 1.45; }
h1 { margin-top: 24px; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 4px; margin-top: 40px; }
figure { margin: 16px 0 28px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
table { border-collapse: collapse; margin: 8px 0 20px; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.missing { background: #fff4e5; border: 1px solid #f0b35a; padding: 8px 16px; border-radius: 6px; }
.ok { background: #eef8ee; border: 1px solid #9bd09b; padding: 8px 16px; border-radius: 6px; }
.nodata { color: #8a5a00; font-style: italic; }
.gen { white-space: pre-wrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85em;
       max-width: 560px; }
nav a { margin-right: 14px; }
code { background: #f4f4f4; padding: 0 3px; }
"""


@dataclass
class FigureEntry:
    file: str
    title: str
    section: str
    caption: str = ""
    width: int = 0
    height: int = 0
    skipped: str = ""  # why it was not drawn (NoData), or the drawing error


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.{digits}g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = ["<table>", "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = []
        for v in row:
            cls = ' class="n"' if isinstance(v, int | float) and not isinstance(v, bool) else ""
            cells.append(f"<td{cls}>{esc(num(v))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    return table(["", "value"], [(k, v) for k, v in pairs])


def _figures(entries: list[FigureEntry], section: str) -> str:
    out = []
    for e in entries:
        if e.section != section:
            continue
        if e.skipped:
            out.append(f'<p class="nodata">{esc(e.title)}: not drawn — {esc(e.skipped)}</p>')
            continue
        out.append(
            f'<figure id="{esc(e.file.removesuffix(".png"))}"><img src="{esc(e.file)}" alt="{esc(e.title)}" '
            f'width="{e.width}" height="{e.height}"><figcaption><b>{esc(e.title)}</b> '
            f"(<code>{esc(e.file)}</code>). {esc(e.caption)}</figcaption></figure>"
        )
    return "\n".join(out)


def _missing(run: Run) -> str:
    missing = run.missing
    if not missing:
        return '<div class="ok"><p>Every stage of the run is present.</p></div>'
    rows = [(s.name, s.status, s.path, s.command, s.detail) for s in missing]
    present = [s.name for s in run.stages if s not in missing]
    return (
        '<div class="missing"><h2 id="missing" style="margin-top:8px">Missing or incomplete stages</h2>'
        "<p>The report shows what exists; these stages are absent or unfinished (run them, or "
        "<code>corral demo</code>, then <code>corral report</code> again).</p>"
        + table(["stage", "status", "expected", "written by", "detail"], rows)
        + f"<p>Present: {esc(', '.join(present) or 'nothing')}.</p></div>"
    )


def _sample_table(run: Run) -> str:
    """What `corral sample` planted for each filter (data/planted.json), when the run used the sample."""
    sources = (run.planted or {}).get("sources")
    if not isinstance(sources, dict):
        return ""
    rows = []
    for name, entry in sorted(sources.items()):
        if not isinstance(entry, dict):
            continue
        kinds = entry.get("kinds") or {}
        planted = ", ".join(f"{k} {len(v)}" for k, v in sorted(kinds.items()) if isinstance(v, list | dict))
        rows.append((name, entry.get("n_files"), entry.get("bytes"), planted or "–"))
    p = run.planted or {}
    return (
        f"<h3>The generated sample (data/planted.json: seed {esc(p.get('seed', '?'))}, "
        f"scale {esc(p.get('scale', '?'))})</h3>"
        + table(["source", "files", "bytes", "documents planted, by kind"], rows)
    )


def _corpus_tables(run: Run) -> str:
    if not run.corpus:
        return _sample_table(run)
    rows = []
    for source, m in sorted(run.corpus.items()):
        top = max(m.dropped.items(), key=lambda kv: kv[1]) if m.dropped else ("–", 0)
        rows.append(
            (
                source,
                m.reader,
                m.weight,
                len(m.inputs),
                sum(i.bytes for i in m.inputs),
                m.read,
                m.kept,
                f"{m.kept / m.read:.1%}" if m.read else "–",
                sum(m.dropped.values()),
                f"{top[0]} ({top[1]:,})",
                sum(p.text_bytes or 0 for p in m.parts),
                len(m.parts),
                m.dead_letters.count,
            )
        )
    out = [
        _sample_table(run),
        "<h3>Corpus manifests</h3>",
        table(
            [
                "source",
                "reader",
                "weight",
                "input files",
                "input bytes",
                "read",
                "kept",
                "kept %",
                "dropped",
                "largest drop reason",
                "kept text bytes",
                "parts",
                "dead letters",
            ],
            rows,
        ),
    ]
    if run.lm is not None:
        lm = run.lm
        out.append("<h3>Language models (lm/lm.json)</h3>")
        out.append(
            table(
                [
                    "language",
                    "p30",
                    "p60",
                    "Wikipedia docs",
                    "LM training docs",
                    "cut-off docs",
                    "cut-offs from",
                ],
                [
                    (lang, e.p30, e.p60, e.docs, e.train_docs, e.cutoff_docs, e.cutoffs_from)
                    for lang, e in sorted(lm.languages.items())
                ],
            )
        )
        pairs: list[tuple[str, Any]] = [
            ("LM source", lm.source),
            ("SentencePiece vocabulary (cap)", lm.vocab_size),
            ("KenLM order", lm.order),
            ("held out for the cut-offs", lm.cutoff_holdout),
        ]
        if lm.skipped_languages:
            pairs.append(
                (
                    "languages skipped (documents)",
                    ", ".join(f"{k} ({v})" for k, v in lm.skipped_languages.items()),
                )
            )
        if lm.wikiref is not None:
            w = lm.wikiref
            pairs += [
                ("wiki-ref positives", f"{w.n_positives:,} ({w.positives})"),
                ("wiki-ref negatives", w.n_negatives),
                ("cited URLs matched in the crawl", f"{w.cited_matches:,} of {w.cited_urls:,}"),
            ]
        out.append(key_values(pairs))
    return "\n".join(out)


def _tokenizer(run: Run) -> str:
    t = run.tokenizer
    if t is None:
        return '<p class="nodata">No tokenizer card (tokenizer/card.json).</p>'
    sample = t.sample or {}
    parity = sample.get("hf_parity") or {}
    pairs: list[tuple[str, Any]] = [
        ("vocabulary", t.vocab_size),
        ("model type", t.settings.get("model_type", "–")),
        ("sha256 of tokenizer.model", t.sha256[:16] + "…"),
        ("sample characters", sample.get("chars")),
        ("sample documents", sample.get("documents")),
        ("sample lines", sample.get("lines")),
    ]
    if parity:
        pairs.append(
            (
                "HF tokenizer.json vs SentencePiece",
                f"{parity.get('mismatches', '?')} mismatches in {parity.get('texts', '?')} texts",
            )
        )
    rows = [
        (s, v.get("target_share"), v.get("achieved_share"), v.get("chars"), v.get("documents"))
        for s, v in sorted((sample.get("sources") or {}).items())
        if isinstance(v, dict)
    ]
    out = key_values(pairs)
    if rows:
        out += table(["source", "target share", "achieved share", "characters", "documents"], rows)
    return out


def _shards(run: Run) -> str:
    s = run.shards
    if s is None:
        return ""
    pairs: list[tuple[str, Any]] = [
        ("total tokens asked for", s.total_tokens),
        ("training tokens", s.train_tokens),
        ("validation tokens", sum(f.tokens for f in s.validation)),
        ("train / validation shard files", f"{len(s.train)} / {len(s.validation)}"),
        ("token type", s.token_type),
        ("tokenizer sha256", s.tokenizer.sha256[:16] + "…"),
        ("validation fraction", s.validation_fraction),
        ("max epochs", s.max_epochs),
        ("seed", str(s.seed)),
    ]
    rows = [
        (n, m.weight, m.achieved, m.tokens, m.unique_tokens, m.epochs, m.documents, m.validation_tokens)
        for n, m in sorted(s.sources.items())
    ]
    out = key_values(pairs) + table(
        [
            "source",
            "weight",
            "achieved",
            "tokens",
            "unique tokens",
            "epochs",
            "documents",
            "validation tokens",
        ],
        rows,
    )
    if s.notes:
        out += "<p>Notes of the mix:</p><ul>" + "".join(f"<li>{esc(n)}</li>" for n in s.notes) + "</ul>"
    return out


def _training(run: Run) -> str:
    if not run.metrics and run.train_config is None:
        return ""
    cfg = run.train_config or {}
    model, data, train, optim = (cfg.get(k, {}) for k in ("model", "data", "train", "optim"))
    last = run.metrics[-1] if run.metrics else {}
    val = [r for r in run.metrics if "val_loss" in r]
    summary = run.summary or {}
    energy = summary.get("energy") or {}
    arch = ", ".join(f"{k} {model[k]}" for k in ("dim", "n_layers", "n_heads") if k in model)
    pairs: list[tuple[str, Any]] = [
        ("model", f"{model.get('preset', '?')}" + (f" ({arch})" if arch else "")),
        ("sequence length", data.get("seq_len")),
        ("batch (tokens)", train.get("batch_tokens")),
        ("steps (planned)", train.get("steps") or train.get("tokens")),
        ("peak learning rate / warmup steps", f"{optim.get('lr', '?')} / {optim.get('warmup_steps', '?')}"),
        ("dtype", train.get("dtype")),
        ("steps logged (last)", last.get("step")),
        ("tokens seen", last.get("tokens")),
        ("last training loss", last.get("loss")),
        (
            "last validation loss / perplexity",
            f"{val[-1]['val_loss']:.4g} / {val[-1].get('val_ppl', float('nan')):.4g}" if val else "–",
        ),
        ("device", summary.get("device", "–")),
        ("training seconds", last.get("elapsed_s")),
    ]
    if energy:
        pairs.append(
            (
                "energy (LLaMA §6)",
                f"{energy.get('device_hours', 0):.3g} device-hours × {energy.get('power_watts', 0):g} W × PUE "
                f"{energy.get('pue', 0):g} = {energy.get('mwh', 0):.3g} MWh ≈ {energy.get('tco2eq', 0):.3g} tCO2eq",
            )
        )
    if run.hf_config is not None:
        h = run.hf_config
        pairs.append(
            (
                "Hugging Face export (hf/)",
                f"{', '.join(h.get('architectures') or ['?'])}: hidden {h.get('hidden_size', '?')}, "
                f"layers {h.get('num_hidden_layers', '?')}, vocabulary {h.get('vocab_size', '?')}",
            )
        )
    return key_values(pairs)


def _generations(run: Run) -> str:
    out = []
    if run.generations is not None:
        g = run.generations
        rows = []
        for p in g.get("prompts", []):
            if not isinstance(p, dict):
                continue
            equal = p.get("equal")
            rows.append(
                "<tr>"
                f'<td class="gen">{esc(p.get("prompt", ""))}</td>'
                f'<td class="gen">{esc(p.get("corral_text", ""))}</td>'
                f'<td class="gen">{esc(p.get("hf_text", ""))}</td>'
                f"<td>{'yes' if equal else 'no' if equal is not None else '–'}</td>"
                "</tr>"
            )
        out.append(
            f"<h3>Greedy generations, corral vs Hugging Face transformers (generations.json, "
            f"{esc(num(g.get('max_new_tokens')))} new tokens)</h3>"
            "<table><tr><th>prompt</th><th>corral (<code>model.generate</code>)</th>"
            "<th>transformers (<code>LlamaForCausalLM.generate</code>)</th><th>same tokens</th></tr>"
            + "\n".join(rows)
            + "</table>"
        )
    if run.samples:
        steps = sorted({s.get("step") for s in run.samples if isinstance(s.get("step"), int)})
        shown = [steps[0], steps[-1]] if len(steps) > 1 else steps
        rows = []
        for s in run.samples:
            if s.get("step") in shown:
                prompt = s.get("prompt", s.get("prompt_ids", ""))
                output = s.get("output", s.get("output_ids", ""))
                rows.append(
                    f'<tr><td class="n">{esc(num(s.get("step")))}</td><td class="gen">{esc(prompt)}</td>'
                    f'<td class="gen">{esc(output)}</td></tr>'
                )
        out.append(
            "<h3>Samples during training (train/samples.jsonl: first and last evaluation; temperature "
            "sampling)</h3><table><tr><th>step</th><th>prompt (start of a validation document)</th>"
            "<th>generated</th></tr>" + "\n".join(rows) + "</table>"
        )
    if not out:
        return '<p class="nodata">No generations (train/samples.jsonl and generations.json are absent).</p>'
    return "\n".join(out)


def _versions(run: Run) -> str:
    rec = versions.recorded(run)
    rows = [
        (tool, version, where) for tool, by_version in rec.items() for version, where in by_version.items()
    ]
    out = ["<h3>Recorded by the stages when they ran</h3>"]
    out.append(
        table(["tool", "version", "recorded by"], rows)
        if rows
        else '<p class="nodata">No stage recorded versions.</p>'
    )
    out.append("<h3>Installed now (the environment that drew this report; the trainer records none)</h3>")
    out.append(table(["tool", "version"], sorted(versions.installed().items())))
    return "\n".join(out)


def _safe(section: Callable[[Run], str], run: Run) -> str:
    """A section's HTML; a file whose content the section did not expect costs that section only."""
    try:
        return section(run)
    except Exception as exc:
        return f'<p class="nodata">This table could not be drawn: {esc(type(exc).__name__)}: {esc(exc)}</p>'


def render(run: Run, figures: list[FigureEntry]) -> str:
    """The whole page."""
    sections = [
        ("corpus", "Corpus"),
        ("tokenizer", "Tokenizer"),
        ("shards", "Shards"),
        ("training", "Training"),
        ("generations", "Generations"),
        ("versions", "Tool versions"),
    ]
    notes = ""
    if run.notes:
        notes = "<p>Read with care:</p><ul>" + "".join(f"<li>{esc(n)}</li>" for n in run.notes) + "</ul>"
    body = {
        "corpus": _figures(figures, "corpus") + _safe(_corpus_tables, run),
        "tokenizer": _safe(_tokenizer, run),
        "shards": _figures(figures, "shards") + _safe(_shards, run),
        "training": _figures(figures, "training") + _safe(_training, run),
        "generations": _safe(_generations, run),
        "versions": _safe(_versions, run),
    }
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',  # no favicon request: a file:// page has none to fetch
        f"<title>corral run report: {esc(run.root.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>corral run report</h1>",
        f"<p>Run folder <code>{esc(run.root)}</code>: raw dumps → filtered corpus → tokenizer → mixture shards → "
        "LLaMA training → generations. Every number below is read from the stages' own files.</p>",
        _missing(run),
        notes,
        "<nav>" + "".join(f'<a href="#{k}">{esc(t)}</a>' for k, t in sections) + "</nav>",
    ]
    for key, title in sections:
        parts.append(f'<h2 id="{key}">{esc(title)}</h2>')
        parts.append(body[key] or '<p class="nodata">Nothing for this section in the run folder.</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
