"""The sample's arXiv: LaTeX sources as arXiv serves them (`.tar.gz` of a submission, or one gzipped `.tex`).

Each paper has a preamble (packages, `titlesec`'s `\\titleformat{\\section}`, `\\newcommand` macros with and
without arguments, an optional-argument macro, `\\def`), `%` comments next to escaped `\\%`, an abstract,
sections split over files pulled in with `\\input`/`\\include`, equations, a table, a figure and a
bibliography (`\\bibliography{refs}` + `refs.bib`, or `thebibliography`). Planted: a paper that `\\input`s
a file the tarball lacks, a tarball with a `../` member and a symlink (skipped and counted), and a
withdrawal notice with no section at all (dropped).
"""

from __future__ import annotations

import gzip
import io
import random
import tarfile
from pathlib import Path
from typing import Any

from corral.sample.grammar import Deck, Slot, paragraph, rng_for
from corral.sample.world import World

TOPICS = [
    ("Flood frequency on the River {river}: a hundred years of gauge records", "river"),
    ("Growth of the market towns of {region}, {y0}--{y1}", "region"),
    ("Counting the {species}: a state-space model for sparse surveys", "species"),
    ("Load paths in the stone bridges of the {river} valley", "river"),
    ("Travel times on the railways of {region}", "region"),
]
ABSTRACT = [
    r"We (study|analyse|revisit) {topic} using (records|data) (collected|kept) (since|between) {y0} (and {y1}|).",
    r"(Our|The proposed) (model|method) (treats|describes) the observations as (noisy|incomplete) measurements of a latent (state|process) $\state\{t\}$.",
    r"(On|For) {n_sites} (sites|stations|towns) the (estimates|forecasts) (improve|reduce the error) by (about|up to) {gain}\% (over|compared with) (the usual|a simple) (baseline|moving average).",
    r"(We also|Finally, we) (release|publish) the (data|code) (used in|behind) this (paper|study).",
]
BODY = [
    r"(Let|We write) $\state\{t\} \in \R^\{d\}$ (denote|for) the (state|level) (of|at) (site|station) $i$ (at|in) (time|year) $t$.",
    r"(Following|As in) \cite\{{cite}\}, we (assume|take) the (errors|noise terms) $\eps_t$ to be (independent|Gaussian) with variance $\sigma^2$.",
    r"(The|Our) (estimator|update) (minimises|is the minimiser of) $\norm\{\vec\{y\}_t - H \vec\{x\}_t\}^2$ (over|with respect to) $\vec\{x\}_t$.",
    r"(Table|Figure)~\ref\{{label}\} (shows|reports|summarises) the (results|estimates) (for|on) (each|every) (site|station|town).",
    r"(The|A) (largest|main) (source of error|difficulty) (is|comes from) (missing years|changes in the gauges|the moving of the station in {y1}).",
    r"(We|In practice we) (set|choose) $\lambda$ (by|with) (cross-validation|a held-out decade) (and the results are|; the results were) (not sensitive|insensitive) to (this choice|its exact value).",
    r"(Records|Observations) (from|at) {town} (begin|start) in {y0} (and|but) (are|become) (sparse|incomplete) (before|until) {y1}.",
    r"(The|This) (bound|inequality) $\abs\{\flow\{i\} - \flow\[s\]\{i\}\} \le C \abs\{t - s\}$ (holds|is satisfied) (for|at) (all|every) (sites|stations) (in our data|we studied).",
    r"(This|The) (result|finding) (agrees|is consistent) with (earlier|older) (work|estimates) (by|of) \cite\{{cite}\}, (though|but) (our|the new) (intervals|estimates) are (narrower|tighter).",
    r"(We|In the following we) (compare|contrast) (three|two) (variants|versions) of the (model|method): (with|without) (seasonal terms|a trend), and (a|one) (fitted|estimated) (per site|jointly).",
    r"(About|Roughly) {gain}\% of the (variance|variation) (is explained|can be explained) by the (season|weather|distance to {town}).",
    r"(A|One) (limitation|weakness) of (the|this) (approach|analysis) is (that|the assumption that) the (errors|sites) are (independent|exchangeable); (we return to this in|see) Section~\ref\{sec:discussion\}.",
    r"(For|On) \place the (fitted|estimated) (trend|drift) is (small|close to zero) (before|until) {y1} (and|but) (grows|rises) (steadily|quickly) (afterwards|after that).",
    r"(We|To check the model we) (simulate|generate) (data|series) from (Equation|model)~\eqref\{eq:state\} (and|, then) (recover|re-estimate) (the|its) parameters (within|to within) {gain}\%.",
]
REFS = [
    ("fenwick1902", "A. Fenwick", "On the levels of rivers", "Proceedings of the Avefield Society", 1902),
    ("holloway1955", "B. Holloway", "Floods and their return periods", "Journal of Valley Hydrology", 1955),
    (
        "marlow1987",
        "C. Marlow and D. Pell",
        "State-space models for counts",
        "Annals of Field Statistics",
        1987,
    ),
    ("ives2011", "E. Ives", "Gauges, weirs and missing years", "Water Records", 2011),
    ("kestrel2019", "F. Kestrel", "Small-area estimation for towns", "Census Methods", 2019),
]


def _ctx(w: World, rng: random.Random, topic: str) -> dict[str, Slot]:
    y0 = rng.randint(1880, 1930)
    return {
        "topic": topic,
        "y0": str(y0),
        "y1": str(y0 + rng.randint(40, 90)),
        "n_sites": str(rng.randint(12, 140)),
        "gain": lambda r: str(r.randint(4, 31)),
        "cite": [k for k, *_ in REFS],
        "label": ("tab:results", "fig:levels"),
        "town": list(w.towns)[:20],
    }


PREAMBLE = r"""\documentclass[11pt,a4paper]{article}
\usepackage[utf8]{inputenc}
\usepackage{amsmath,amssymb,amsthm}
\usepackage{graphicx}
\usepackage{titlesec}
% section headings: smaller than the default, with a full stop after the number
\titleformat{\section}{\normalfont\large\bfseries}{\thesection.}{0.6em}{}
\titlespacing*{\section}{0pt}{2ex plus 1ex minus .2ex}{1ex}
%% ---- macros ----
\newcommand{\R}{\mathbb{R}}
\newcommand{\E}{\mathbb{E}}
\newcommand{\norm}[1]{\left\lVert #1 \right\rVert}
\newcommand{\abs}[1]{\lvert #1 \rvert}
\newcommand{\state}[1]{\vec{x}_{#1}}
\newcommand{\flow}[2][t]{Q_{#2}(#1)}
\newcommand{\place}{%PLACE%}
\renewcommand{\vec}[1]{\mathbf{#1}}
\def\eps{\varepsilon}
\newtheorem{proposition}{Proposition}
"""


def _section(
    title: str, w: World, rng: random.Random, ctx: dict[str, Slot], deck: Deck, n: int, label: str = ""
) -> str:
    lab = f"\\label{{{label}}}" if label else ""
    paras = [paragraph(BODY, rng, ctx, rng.randint(4, 6), deck) for _ in range(n)]
    return f"\\section{{{title}}}{lab}\n" + "\n\n".join(paras) + "\n"


def paper_files(w: World, seed: int, index: int) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The members of one submission, and what it plants."""
    rng = rng_for(seed, "paper", index)
    template, kind = TOPICS[index % len(TOPICS)]
    river = rng.choice(list(w.rivers))
    region = rng.choice(list(w.regions))
    species = rng.choice(list(w.species))
    ctx = _ctx(w, rng, "")
    title = template.format(river=river, region=region, species=species, y0=ctx["y0"], y1=ctx["y1"])
    ctx["topic"] = title[0].lower() + title[1:]
    deck = Deck(rng)
    authors = rng.sample([p.name for p in w.people.values()], 2)
    place = {"river": f"the River {river}", "region": region, "species": f"the {species}"}[kind]
    preamble = PREAMBLE.replace("%PLACE%", place)
    abstract = paragraph(ABSTRACT, rng, ctx, 4, deck)
    intro = _section("Introduction", w, rng, ctx, deck, 3)
    intro = intro.replace("\n\n", " % TODO: cite the 1950s survey here\n\n", 1)
    method = _section("Model", w, rng, ctx, deck, 3, "sec:model")
    method += (
        "\n\\begin{equation}\n  \\state{t} = A\\,\\state{t-1} + \\eps_t, \\qquad \\flow{i} = h(\\state{t}) \\label{eq:state}\n"
        "\\end{equation}\n\n\\begin{proposition}\nIf $\\norm{A} < 1$ then $\\E\\,\\norm{\\state{t}}^2$ is bounded.\n\\end{proposition}\n"
    )
    results = _section("Results", w, rng, ctx, deck, 3, "sec:results")
    results += (
        "\n\\begin{table}[t]\n\\centering\n\\begin{tabular}{lrr}\n\\hline\nSite & Years & Error (\\%) \\\\\n\\hline\n"
        + "".join(
            f"{t} & {rng.randint(20, 120)} & {rng.randint(2, 30)}.{rng.randint(0, 9)} \\\\\n"
            for t in rng.sample(list(w.towns), 4)
        )
        + "\\hline\n\\end{tabular}\n\\caption{Errors of the forecasts for \\place.}\\label{tab:results}\n\\end{table}\n\n"
        "\\begin{figure}[t]\n\\centering\n\\includegraphics[width=0.8\\linewidth]{fig1.pdf}\n"
        "\\caption{Yearly maxima at four sites.}\\label{fig:levels}\n\\end{figure}\n"
    )
    discussion = _section("Discussion", w, rng, ctx, deck, 2, "sec:discussion")
    discussion += f"\nCosts rose by {rng.randint(3, 40)}\\% over the period, % not inflation adjusted\nwhich limits what the towns could build.\n"
    bib_inline = index % 2 == 1
    bibliography = (
        "\\begin{thebibliography}{9}\n"
        + "".join(
            f"\\bibitem{{{k}}} {a}. \\newblock {t}. \\newblock \\emph{{{j}}}, {y}.\n"
            for k, a, t, j, y in REFS
        )
        + "\\end{thebibliography}\n"
        if bib_inline
        else "\\bibliographystyle{plain}\n\\bibliography{refs}\n"
    )
    planted: dict[str, Any] = {"kind": "paper"}
    inputs = "\\input{sections/intro}\n" + method + "\\include{sections/results}\n"
    if index == 2:
        inputs += "\\input{sections/appendix}\n"  # not in the tarball: a missing input, counted as a repair
        planted["kind"] = "missing_input"
    main = (
        preamble + f"\\title{{{title}}}\n\\author{{{authors[0]} \\and {authors[1]}\\\\ University of "
        f"{w.regions[region].capital if region in w.regions else region}}}\n\\date{{}}\n\n\\begin{{document}}\n\\maketitle\n\n"
        f"\\begin{{abstract}}\n{abstract}\n\\end{{abstract}}\n\n{inputs}\n{discussion}\n"
        "% \\section{Old appendix} (removed in v2)\n" + bibliography + "\n\\end{document}\n"
    )
    files = {
        "main.tex": main.encode(),
        "sections/intro.tex": ("% introduction\n" + intro).encode(),
        "sections/results.tex": results.encode(),
        "fig1.pdf": b"%PDF-1.4\n% corral sample figure placeholder\n" + bytes(range(256)),
    }
    if not bib_inline:
        files["refs.bib"] = "".join(
            f"@article{{{k},\n  author = {{{a}}},\n  title = {{{t}}},\n  journal = {{{j}}},\n  year = {{{y}}}\n}}\n\n"
            for k, a, t, j, y in REFS
        ).encode()
    return files, planted


def _tar(files: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_717_200_000, 0o644
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(
                info,
                io.BytesIO(b"\\section{Injected}\nThis member must never be read.\n")
                if info.isfile()
                else None,
            )
    return gzip.compress(buf.getvalue(), compresslevel=9, mtime=0)


def write_papers(w: World, out: Path, seed: int, scale: float) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    planted: dict[str, Any] = {"files": [], "kinds": {}}
    n = max(5, round(8 * scale))
    for i in range(n):
        pid = f"2405.{10001 + i * 7:05d}"
        files, info = paper_files(w, seed, i)
        extra = None
        if i == 3:
            bad = tarfile.TarInfo("../../outside.tex")
            bad.size = len(b"\\section{Injected}\nThis member must never be read.\n")
            link = tarfile.TarInfo("sections/link.tex")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            extra = [bad, link]
            info["kind"] = "unsafe_members"
        if i == 4:
            name = f"{pid}.gz"  # a single-file submission: one gzipped .tex (inputs inlined by the author)
            main = files["main.tex"].decode()
            main = main.replace("\\input{sections/intro}", files["sections/intro.tex"].decode())
            main = main.replace("\\include{sections/results}", files["sections/results.tex"].decode())
            (out / name).write_bytes(gzip.compress(main.encode(), mtime=0))
            info["kind"] = "single_file"
        else:
            name = f"{pid}.tar.gz"
            (out / name).write_bytes(_tar(files, extra))
        planted["files"].append(name)
        planted["kinds"].setdefault(info["kind"], []).append(f"arxiv:{pid}")
    pid = "2405.19999"
    notice = (
        "\\documentclass{article}\n\\begin{document}\n% withdrawal notice\nThis paper has been withdrawn by the "
        "authors: the gauge records of Table 2 were mislabelled.\n\\end{document}\n"
    )
    (out / f"{pid}.tar.gz").write_bytes(_tar({"withdrawn.tex": notice.encode()}))
    planted["files"].append(f"{pid}.tar.gz")
    planted["kinds"]["no_section"] = [f"arxiv:{pid}"]
    return planted
