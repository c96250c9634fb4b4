"""arXiv reader and LaTeX recipe: macros, inputs, comments, trimming, tarball safety, real papers."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from filters.sources.arxiv import clean_arxiv, read_arxiv, read_arxiv_dir
from filters.sources.base import ReaderError, ReadStats
from filters.sources.latex import body_between_section_and_bibliography, expand_macros, remove_comments


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _paper_tar(paper_dir: Path, prefix: str = "paper/") -> bytes:
    members = []
    for path in sorted(paper_dir.rglob("*.tex")):
        members.append((tarfile.TarInfo(prefix + path.relative_to(paper_dir).as_posix()), path.read_bytes()))
    return _tar_gz(members)


def _read(data: bytes, name: str, **kwargs) -> tuple[list, ReadStats]:
    stats = ReadStats()
    return list(read_arxiv(io.BytesIO(data), name, stats, **kwargs)), stats


def test_directory_paper_cleaned(fixtures_dir: Path) -> None:
    stats = ReadStats()
    docs = list(read_arxiv_dir(str(fixtures_dir / "arxiv_paper"), stats))
    assert [d.id for d in docs] == ["arxiv:arxiv_paper"] and docs[0].meta["main_file"] == "main.tex"
    doc = clean_arxiv(docs[0], stats)
    assert doc is not None
    text = doc.text
    assert text.startswith("\\section{Introduction}\nWe present CorralTool, which costs 5\\% less.")
    assert "$\\mathbf{x}$" in text and "$(a, b)$" in text and "$\\frac{n}{2}$" in text
    assert "Hello World and Alice." in text and "Hello Bob and Carol." in text
    assert "$\\overrightarrow{v}$" in text
    assert "\\section{Results}\nFences held in 100\\% of trials." in text  # \include resolved
    for gone in (
        "SECRETCOMMENT",
        "INLINECOMMENT",
        "COMMENTENVIRONMENT",
        "PREAMBLEONLY",
        "\\newcommand",
        "\\bibliography",
        "\\end{document}",
        "Notes without",
        "\\corral",
        "\\vect",
        "\\half",
    ):
        assert gone not in text, gone
    assert stats.emitted == 1 and not stats.dropped


def test_tarball_equals_directory_and_is_stable(fixtures_dir: Path) -> None:
    data = _paper_tar(fixtures_dir / "arxiv_paper")
    docs, stats = _read(data, "2101.00001.tar.gz")
    assert [d.id for d in docs] == ["arxiv:2101.00001"]
    from_dir = list(read_arxiv_dir(str(fixtures_dir / "arxiv_paper"), ReadStats()))
    assert docs[0].text == from_dir[0].text
    again, _ = _read(data, "2101.00001.tar.gz")
    assert [(d.id, d.text) for d in again] == [(d.id, d.text) for d in docs]


def test_single_tex_and_gz(fixtures_dir: Path) -> None:
    main = (fixtures_dir / "arxiv_paper" / "main.tex").read_bytes()
    for data, name in ((main, "2101.00002.tex"), (gzip.compress(main), "2101.00002.gz")):
        docs, stats = _read(data, name)
        assert [d.id for d in docs] == ["arxiv:2101.00002"]
        assert stats.repaired["arxiv_missing_input"] == 2  # its \input files are not in a single file
        assert clean_arxiv(docs[0], stats) is None and stats.dropped["arxiv_no_section"] == 1


def test_unsafe_members_skipped_and_nothing_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    good = b"\\documentclass{article}\\begin{document}\\section{A}Safe text.\\end{document}"
    link = tarfile.TarInfo("paper/link.tex")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("paper/hard.tex")
    hard.type, hard.linkname = tarfile.LNKTYPE, "paper/main.tex"
    fifo = tarfile.TarInfo("paper/pipe.tex")
    fifo.type = tarfile.FIFOTYPE
    data = _tar_gz(
        [
            (tarfile.TarInfo("paper/main.tex"), good),
            (tarfile.TarInfo("../evil.tex"), b"\\documentclass{x}\\begin{document}EVIL"),
            (tarfile.TarInfo("/tmp/abs-evil.tex"), b"EVIL"),
            (link, None),
            (hard, None),
            (fifo, None),
        ]
    )
    before = set(tmp_path.parent.iterdir())
    docs, stats = _read(data, "bad.tar.gz")
    assert [d.meta["main_file"] for d in docs] == ["paper/main.tex"]
    assert "EVIL" not in docs[0].text
    assert stats.dropped == {"arxiv_member_unsafe_path": 2, "arxiv_member_link": 2, "arxiv_member_special": 1}
    assert set(tmp_path.parent.iterdir()) == before and list(tmp_path.iterdir()) == []


def test_tar_bomb_capped() -> None:
    zeros = b"\0" * (4 << 20)
    data = _tar_gz(
        [(tarfile.TarInfo("paper/main.tex"), b"\\documentclass{a}"), (tarfile.TarInfo("big.tex"), zeros)]
    )
    assert len(data) < 64 << 10  # compresses ~1000:1
    with pytest.raises(ReaderError, match="size cap"):
        _read(data, "bomb.tar.gz", max_total_bytes=1 << 20)
    _docs, stats = _read(data, "bomb.tar.gz", max_member_bytes=1 << 20)
    assert stats.dropped["arxiv_member_too_large"] == 1


def test_truncated_and_empty(fixtures_dir: Path) -> None:
    data = _paper_tar(fixtures_dir / "arxiv_paper")
    with pytest.raises(ReaderError, match=r"cut\.tar\.gz at byte \d+"):
        _read(data[: len(data) // 2], "cut.tar.gz")
    with pytest.raises(ReaderError, match="empty"):
        _read(b"", "empty.tar.gz")


def test_no_main_file_is_dead_letter() -> None:
    data = _tar_gz([(tarfile.TarInfo("a.tex"), b"no class"), (tarfile.TarInfo("b.tex"), b"nor here")])
    docs, stats = _read(data, "x.tar.gz")
    assert docs == [] and stats.dead_letters[0].reason == "arxiv_no_main_file"


def test_invalid_utf8_replaced_and_counted() -> None:
    data = b"\\documentclass{a}\\begin{document}\n\\section{S}Caf\xe9\n\\end{document}"
    docs, stats = _read(data, "u.tex")
    assert "Caf\ufffd" in docs[0].text and stats.repaired["invalid_utf8"] == 1


def test_latex_functions() -> None:
    assert remove_comments("a 5\\% b % c\n\\\\% d\n% whole\ne") == "a 5\\% b \n\\\\\ne"
    src = "\\newcommand{\\two}[2]{<#1|#2>}\\def\\wrap#1{[\\two{#1}{x}]}\\wrap{y} \\two ab"
    assert expand_macros(src) == "[<y|x>] <a|b>"
    assert expand_macros("\\newcommand\\n{N}\\n{}ice \\n x") == "Nice N x"
    for command in ("chapter", "section", "subsection", "subsubsection", "paragraph", "subparagraph"):
        assert body_between_section_and_bibliography(f"pre \\{command}{{X}} body") == f"\\{command}{{X}} body"
    body = "\\section*{A} text \\begin{thebibliography}{9} refs"
    assert body_between_section_and_bibliography(body) == "\\section*{A} text "
    assert body_between_section_and_bibliography("no sections") is None


@pytest.mark.realdata
@pytest.mark.parametrize("paper", ["cam16_arXiv-1802.06067", "nagy-fail-paper", "scipy-1.0_arXiv-1907.10121"])
def test_real_papers(shared_data: Path, paper: str) -> None:
    folder = shared_data / "arxiv"
    stats = ReadStats()
    with (folder / f"{paper}.tar.gz").open("rb") as handle:
        docs = list(read_arxiv(handle, f"{paper}.tar.gz", stats))
    from_dir = list(read_arxiv_dir(str(folder / paper), stats))
    assert [d.id for d in docs] == [d.id for d in from_dir] == [f"arxiv:{paper}"]
    cleaned = clean_arxiv(docs[0], stats)
    assert cleaned is not None and cleaned.text == clean_arxiv(from_dir[0], stats).text
    text = cleaned.text
    assert text.startswith("\\section")
    assert "\\bibliography" not in text and "\\documentclass" not in text and "\\newcommand" not in text
    assert not any(line.lstrip().startswith("%") for line in text.splitlines())
    assert len(text) > 10_000
    if paper.startswith("scipy"):
        assert "\\code{" not in text and "\\texttt{" in text  # \newcommand{\code}[1]{\texttt{#1}}
        assert "space-partitioning data structure" in text  # from \input{ckdtree}
    if paper.startswith("cam16"):
        assert "\\rgb" not in text and "\\bm{R}" in text


def test_first_section_is_one_used_in_the_body() -> None:
    """A preamble names \\section in titlesec and \\renewcommand arguments: those are not sections."""
    tex = (
        "\\documentclass{article}\n\\usepackage{titlesec}\n"
        "\\titlespacing*{\\section}{0pt}{2ex}{1ex}\n\\titleformat{\\section}[block]{\\bfseries}{}{0pt}{}\n"
        "\\renewcommand\\section{\\oldsection}\n\\begin{document}\n\\maketitle\n"
        "{\\bf Abstract.} A short abstract.\n\\section{Introduction}\nBody text.\n\\bibliography{refs}\n"
        "\\end{document}\n"
    )
    body = body_between_section_and_bibliography(tex)
    assert body is not None and body.startswith("\\section{Introduction}") and "titlesec" not in body
    assert body_between_section_and_bibliography("\\begin{document} no sections \\end{document}") is None
    assert body_between_section_and_bibliography("\\section*{Starred} x").startswith("\\section*")
    assert body_between_section_and_bibliography(
        "{\\section{inside braces}} \\subsection[s]{Real}"
    ).startswith("\\subsection[s]")
