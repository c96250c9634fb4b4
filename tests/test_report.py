"""`corral report --run DIR`: one static HTML page with PNG figures of a run folder.

The run folder is made by the real stages at a small scale (`corral sample` at 0.2, `corral lm`,
`corral build`, `corral tokenizer`, `corral shards`, a tiny `corral train`, `corral export-hf`) plus a
`generations.json` in the demo's format from real greedy generation with corral and with transformers.
Then: the HTML references only files that exist, every figure is a valid PNG with data drawn on it, the
figures carry the run's own numbers, partial and half-written run folders render with what is missing
listed, the report is replaced atomically and reproducibly, and headless Chromium loads the page with no
console error and every image decoded.
"""

from __future__ import annotations

import json
import shutil
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from headless_browser import check_page, find_chromium
from PIL import Image
from trainer_fixture import synthetic_shards, write_config

from corral.cli import main as corral_main
from corral.report import REPORT_DIR, write_report
from corral.reporting import figures as figs
from corral.reporting.run import load_run
from manifests.corpus import CorpusManifest

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Matplotlib draws axes, ticks, titles, labels and in-panel messages in black and grey; only data marks
# (bars, lines, shading) are coloured. A figure with no data therefore has no coloured pixel (measured
# on `blank_figure` below: 0.0), and the sparsest real figure here (a line plot with one message panel)
# has about 0.7 %. 0.2 % of the pixels, a one-pixel line across the figure about twice, sits between.
MIN_COLOURED_FRACTION = 0.002
SCALE = 0.2


def coloured_fraction(path: Path) -> float:
    """Share of pixels whose R, G, B differ (std over channels > 20): ink that is not black, grey or white."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    return float((rgb.std(axis=2) > 20).mean())


class Refs(HTMLParser):
    """Every src/href of a page, and each <img>'s attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v]
        if tag == "img":
            self.images.append(a)


def parse(index: Path) -> Refs:
    p = Refs()
    p.feed(index.read_text(encoding="utf-8"))
    return p


# ---------------------------------------------------------------------------------------- the run folder


def _generations(root: Path, prompts: list[str], max_new: int) -> None:
    """generations.json as `corral demo` writes it: greedy tokens from corral and from transformers."""
    import sentencepiece as spm
    import torch
    from transformers import AutoModelForCausalLM

    from model.generate import generate, load_any

    sp = spm.SentencePieceProcessor(model_file=str(root / "tokenizer" / "tokenizer.model"))
    ours = load_any(root / "train" / "final", "cpu", None).eval()
    hf = AutoModelForCausalLM.from_pretrained(root / "hf").eval()
    out = []
    for prompt in prompts:
        ids = [sp.bos_id(), *sp.encode(prompt)]
        c = generate(ours, [ids], max_new, eos_id=sp.eos_id())[0]
        with torch.no_grad():
            h = hf.generate(
                torch.tensor([ids]),
                max_new_tokens=max_new,
                do_sample=False,
                eos_token_id=sp.eos_id(),
                pad_token_id=0,
            )[0, len(ids) :].tolist()
        out.append(
            {
                "prompt": prompt,
                "corral_ids": c,
                "corral_text": sp.decode(c),
                "hf_ids": h,
                "hf_text": sp.decode(h),
                "equal": c == h,
            }
        )
    (root / "generations.json").write_text(json.dumps({"prompts": out, "max_new_tokens": max_new}, indent=1))


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole run folder made by the real stages, small."""
    from corral.sample import write_sample
    from filters.perplexity import LMTrainingError, kenlm_tool
    from model.hf import main as export_main
    from pipeline.build import main as build_main
    from pipeline.lm import main as lm_main
    from pipeline.shards import main as shards_main
    from tokenizer_training.train import main as tokenizer_main
    from trainer.train import main as train_main

    try:
        kenlm_tool("lmplz")
    except LMTrainingError as exc:
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("run")
    write_sample(root / "data", seed=7, scale=SCALE, stdlib=12)
    text = (REPO / "manifests" / "demo.toml").read_text().replace("../build/demo/data", str(root / "data"))
    text = text.replace('"../build/demo/corpus"', '"corpus"').replace('"../build/demo/lm"', '"lm"')
    text = text.replace("vocab_size = 4096", "vocab_size = 1024").replace(
        "total_tokens = 300_000", "total_tokens = 20_000"
    )
    manifest = root / "demo.toml"
    manifest.write_text(text)
    assert lm_main(["--manifest", str(manifest)]) == 0
    assert build_main(["--manifest", str(manifest)]) == 0
    assert tokenizer_main(["--manifest", str(manifest), "--no-progress"]) == 0
    assert shards_main(["--manifest", str(manifest)]) == 0
    config = write_config(
        root / "train.toml",
        root / "shards",
        root / "train",
        train={"steps": 12},
        log={"every": 2},
        eval={"every": 6, "sequences": 8, "samples": 2, "sample_tokens": 12},
        checkpoint={"every": 0},
    )
    assert train_main(["--config", str(config)]) == 0
    assert export_main(["--checkpoint", str(root / "train" / "final"), "--out", str(root / "hf"),
                        "--tokenizer-dir", str(root / "tokenizer")]) == 0  # fmt: skip
    _generations(root, ["The river", "def main():"], 8)
    return root


@pytest.fixture(scope="module")
def report(run_root: Path):
    return write_report(run_root)


def copy_stages(src: Path, dst: Path, names: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name)
        else:
            shutil.copy2(src / name, dst / name)
    return dst


def assert_references_exist(index: Path) -> Refs:
    refs = parse(index)
    for ref in refs.refs:
        if ref.startswith(("#", "data:")):
            continue
        assert "://" not in ref and not ref.startswith("/"), f"non-relative reference {ref!r}"
        assert (index.parent / ref).is_file(), f"{index} references {ref}, which does not exist"
    return refs


# ---------------------------------------------------------------------------------------- a whole run


@pytest.mark.slow
def test_complete_run_draws_every_figure_and_references_only_existing_files(run_root: Path, report) -> None:
    assert report.missing == [] and report.failed == {} and report.skipped == {}
    assert sorted(report.figures) == sorted(f.file for f in figs.FIGURES)
    index = run_root / REPORT_DIR / "index.html"
    assert report.index == index
    refs = assert_references_exist(index)
    written = {p.name for p in index.parent.iterdir()}
    assert written == {"index.html", *report.figures}  # nothing stray, nothing unreferenced
    assert sorted(i["src"] for i in refs.images) == sorted(report.figures)
    html = index.read_text(encoding="utf-8")
    assert "Every stage of the run is present" in html and "Missing or incomplete stages" not in html
    # the manifests' key numbers and the versions are on the page
    for source in ("commoncrawl", "wikipedia", "github"):
        m = CorpusManifest.read_from(str(run_root / "corpus" / source))
        assert f"<td>{source}</td>" in html and f">{m.read:,}<" in html and f">{m.kept:,}<" in html
    assert "torch" in html and "matplotlib" in html and "apache-beam" in html
    gens = json.loads((run_root / "generations.json").read_text())["prompts"]
    assert all(g["equal"] for g in gens)  # the exported model generates what corral's does
    for g in gens:
        assert html_escape(g["prompt"]) in html and html_escape(g["corral_text"]) in html
    samples = [json.loads(line) for line in (run_root / "train" / "samples.jsonl").read_text().splitlines()]
    assert html_escape(samples[-1]["output"]) in html


@pytest.mark.slow
def test_every_figure_is_a_valid_png_with_data_drawn(run_root: Path, report) -> None:
    folder = run_root / REPORT_DIR
    sizes = {i["src"]: (int(i["width"]), int(i["height"])) for i in parse(folder / "index.html").images}
    for name in report.figures:
        path = folder / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, name
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert im.size == sizes[name], name  # the page's width/height are the image's
            assert im.width >= 600 and im.height >= 250, name
        assert coloured_fraction(path) > MIN_COLOURED_FRACTION, name
    # the threshold tells an empty figure apart: axes, title and a message only
    blank = figs._figure(12, 5)
    ax = blank.add_subplot()
    ax.set_title("a figure with no data")
    figs._message(ax, "nothing to draw here")
    figs.save(blank, str(folder.parent / "blank.png"))
    assert coloured_fraction(folder.parent / "blank.png") < MIN_COLOURED_FRACTION


@pytest.mark.slow
def test_figures_draw_the_runs_own_numbers(run_root: Path) -> None:
    run = load_run(run_root)
    # funnel: each source's bars are read, every drop reason, kept
    fig = figs.funnel_documents(run)
    for ax in fig.axes[: len(run.corpus)]:
        source = ax.get_title().split(" ")[0]
        m = run.corpus[source]
        widths = [round(p.get_width()) for p in ax.patches]
        assert widths[0] == m.read and widths[-1] == m.kept
        assert sorted(widths[1:-1]) == sorted(m.dropped.values())
    # perplexity: the bars hold every scored document, the lines sit at lm.json's p30/p60
    fig = figs.perplexity(run)
    ax = fig.axes[0]
    lang = ax.get_title().split(":")[0]
    scored = sum(
        v for m in run.corpus.values() for k, v in m.stats.items() if k.startswith(f"perplexity.{lang}.")
    )
    assert scored > 0 and sum(bar.get_height() for bars in ax.containers for bar in bars) == scored
    cut = run.lm.languages[lang]
    xs = sorted(line.get_xdata()[0] for line in ax.lines)
    assert xs == pytest.approx(sorted([cut.p30, cut.p60]))
    # token mix: achieved shares are the shard manifest's
    fig = figs.token_mix(run)
    achieved = sorted(p.get_width() for p in fig.axes[0].containers[1])
    assert achieved == pytest.approx(sorted(m.achieved for m in run.shards.sources.values()))
    # loss: the overall training curve is metrics.jsonl's
    fig = figs.loss(run)
    overall = next(line for line in fig.axes[0].lines if line.get_label() == "all sources")
    assert list(overall.get_ydata()) == pytest.approx([r["loss"] for r in run.metrics])
    # MFU is null on a CPU: the panel says so instead of plotting nothing
    if all(r.get("mfu") is None for r in run.metrics):
        texts = " ".join(t.get_text() for t in figs.training(run).axes[3].texts)
        assert "MFU not measured" in texts


@pytest.mark.slow
def test_rerun_replaces_the_report_atomically_with_the_same_bytes(run_root: Path, report) -> None:
    folder = run_root / REPORT_DIR
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    siblings = sorted(p.name for p in run_root.iterdir())
    assert corral_main(["report", "--run", str(run_root)]) == 0
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after == before  # deterministic: no dates in the PNGs or the page
    assert sorted(p.name for p in run_root.iterdir()) == siblings  # no temporary folder left behind


# ---------------------------------------------------------------------------------------- partial runs


@pytest.fixture(scope="module")
def partial_report(run_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The report of a run that stopped after the corpus build."""
    return write_report(copy_stages(run_root, tmp_path_factory.mktemp("partial"), ["data", "lm", "corpus"]))


@pytest.mark.slow
def test_missing_stages_render_what_exists_and_list_the_rest(partial_report) -> None:
    report = partial_report
    assert report.failed == {}
    assert set(report.missing) == {
        "tokenizer",
        "shards",
        "training",
        "training samples",
        "Hugging Face export",
        "generations",
    }
    assert {"funnel_documents.png", "perplexity.png", "line_dedup.png"} <= set(report.figures)
    assert set(report.skipped) == {"token_mix.png", "loss.png", "training.png"}
    html = assert_references_exist(report.index) and report.index.read_text(encoding="utf-8")
    assert "Missing or incomplete stages" in html
    for stage in ("tokenizer/card.json", "shards/manifest.json", "train/metrics.jsonl", "generations.json"):
        assert stage in html
    assert "not drawn — no shard manifest" in html


@pytest.mark.slow
def test_half_written_stages_do_not_stop_the_report(run_root: Path, tmp_path: Path) -> None:
    root = copy_stages(run_root, tmp_path / "killed", ["lm", "corpus", "tokenizer", "shards", "train"])
    # a training run killed mid-write: the last metrics line is cut in half, no summary yet
    metrics = root / "train" / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    (root / "train" / "summary.json").unlink()
    # a source the build had not finished (parts, no manifest) and a shard manifest cut short
    (root / "corpus" / "arxiv" / "manifest.json").unlink()
    text = (root / "shards" / "manifest.json").read_text()
    (root / "shards" / "manifest.json").write_text(text[: len(text) // 2])
    report = write_report(root)
    assert report.failed == {}
    status = {s.name: s for s in load_run(root).stages}
    assert status["training"].status == "incomplete" and "last logged step" in status["training"].detail
    assert status["corpus"].status == "incomplete" and "arxiv" in status["corpus"].detail
    assert status["shards"].status == "unreadable" and "shards/manifest.json" in status["shards"].detail
    assert {"loss.png", "training.png", "funnel_documents.png"} <= set(report.figures)
    assert "token_mix.png" in report.skipped
    html = assert_references_exist(report.index) and report.index.read_text(encoding="utf-8")
    assert f"metrics.jsonl: line {len(lines)} is not JSON" in html
    drawn = load_run(root)
    assert "arxiv" not in drawn.corpus and len(drawn.metrics) == len(lines) - 1


def test_a_training_run_alone_renders_and_survives_a_killed_run(tmp_path: Path) -> None:
    """Fast: shards in the shard format (manifests.shards) and a real, tiny `corral train` on them."""
    from trainer.train import main as train_main

    root = tmp_path / "run"
    synthetic_shards(root / "shards", n_docs=120, validation_docs=16)
    config = write_config(
        tmp_path / "c.toml",
        root / "shards",
        root / "train",
        train={"steps": 6},
        eval={"every": 3, "sequences": 8},
    )
    assert train_main(["--config", str(config)]) == 0
    report = write_report(root)
    assert report.failed == {} and set(report.figures) == {"token_mix.png", "loss.png", "training.png"}
    assert {"inputs", "language models", "corpus", "tokenizer", "generations"} <= set(report.missing)
    assert "training" not in report.missing
    assert_references_exist(report.index)
    # killed mid-write: the last metrics line cut short, no summary; a corpus manifest cut short too
    metrics = root / "train" / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    metrics.write_text("".join(lines[:-1]) + lines[-1][:40])
    (root / "train" / "summary.json").unlink()
    (root / "corpus" / "web").mkdir(parents=True)
    (root / "corpus" / "web" / "manifest.json").write_text('{"source": "web", "read": 3')
    (root / "train" / "config.toml").write_text("model = 3\n")  # valid TOML, not a trainer config
    report = write_report(root)
    assert report.failed == {} and {"loss.png", "training.png"} <= set(report.figures)
    run = load_run(root)
    assert [r["step"] for r in run.metrics] == [json.loads(line)["step"] for line in lines[:-1]]
    assert run.stage("training").status == "incomplete" and run.stage("corpus").status == "incomplete"
    html = report.index.read_text(encoding="utf-8")
    assert f"metrics.jsonl: line {len(lines)} is not JSON" in html and "web (" in html
    assert "no train/summary.json: the run stopped or is still going" in html
    assert "This table could not be drawn" in html  # the training table; the figures above it still are


def test_empty_and_absent_run_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = write_report(tmp_path)
    assert report.figures == [] and report.failed == {} and len(report.missing) == 9
    assert_references_exist(report.index)
    assert corral_main(["report", "--run", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- in a browser

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium: `bash scripts/system_deps.sh` installs Debian's chromium when run as root",
)


@needs_chromium
def test_browser_check_sees_console_errors_and_broken_images(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        '<!DOCTYPE html><html><head><title>broken</title></head><body><img src="missing.png">'
        '<script>console.error("boom"); notDefined();</script></body></html>'
    )
    page = check_page((tmp_path / "index.html").as_uri(), CHROMIUM)
    assert page.title == "broken"
    assert any("boom" in e for e in page.errors) and any("notDefined" in e for e in page.errors)
    assert any("ERR_FILE_NOT_FOUND" in e for e in page.errors)
    assert page.images == [{"src": "missing.png", "complete": True, "width": 0, "height": 0}]


@pytest.mark.slow
@needs_chromium
def test_chromium_loads_the_report_without_errors(report, partial_report) -> None:
    for rep in (report, partial_report):
        page = check_page(rep.index.as_uri(), CHROMIUM)
        assert page.errors == [], rep.index
        assert page.title.startswith("corral run report")
        assert sorted(i["src"] for i in page.images) == sorted(rep.figures)
        for image in page.images:
            assert image["complete"] and image["width"] > 0 and image["height"] > 0, image
