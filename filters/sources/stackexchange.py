"""StackExchange `Posts.xml` → one document per question with its answers (LLaMA §2.1).

Input: `Posts.xml` plain, gzip/bz2/xz (sniffed), or the dump's `.7z` archive (via py7zr; the `Posts.xml`
member is extracted into a private temp dir, since 7z cannot be decompressed as a forward-only stream).

Join design (answers may come before or after their question, arbitrarily far apart): rows are
streamed with `lxml` `iterparse` (element clearing) into an on-disk SQLite database in a temp dir, then
questions are read back in numeric id order with their answers sorted by `int(Score)` descending (ties:
lower answer id first). Memory is bounded by SQLite's page cache (`cache_size` below, ~16 MiB) plus one
question's answers; disk use is about the size of the bodies in the dump. The temp dir is removed when
the generator finishes or is closed.

Output text: `Q: {title}\\n{question body}\\nA: {answer}\\nA: …`, HTML turned into text with lxml.html
(block elements and `<li>` items become lines, `<pre>` code blocks keep their lines). Questions without
answers are kept (`Q:` part only). Id: `{site}:{question id}`; the site (`beer.stackexchange.com`) comes
from the file name and goes into `meta`.

Counted drops: answers whose question is not in the file (`stackexchange_orphan_answer`), post types
other than question/answer (`stackexchange_other_post_type`), rows missing required attributes or with a
non-numeric score (dead letters with the row's line, reason `stackexchange_bad_row`), questions whose
site is not selected (`stackexchange_site_not_selected`, only when `sites` is given).

Site selection: `DEFAULT_SITES` is the 28 largest sites (LLaMA keeps "the 28 largest websites").
`select_site_files(paths, sites)` picks dump files by site, and `read_stackexchange(..., sites=…)`
filters inside a file; `sites=None` (what `corral read` uses) reads whatever site it is given.

Errors: a truncated compressed stream or malformed XML raises `ReaderError` (file and position).
Because of the join, nothing is yielded for that file in that case (all questions are emitted after
the whole file has been read); the caller records the error as a dead letter. An empty input raises
`ReaderError` as well.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Collection, Iterable, Iterator
from typing import BinaryIO

import lxml.html
from lxml import etree

from filters.document import Document
from filters.sources.base import ReaderError, ReadStats, ReplayStream
from filters.sources.compression import open_decompressed
from filters.sources.xmlsafe import clear_element, safe_iterparse

SOURCE = "stackexchange"

# The 28 largest Stack Exchange sites by size of their dump archive (archive.org `stackexchange`
# collection; stackoverflow.com is split into per-table archives). LLaMA §2.1 keeps the 28 largest.
DEFAULT_SITES: tuple[str, ...] = (
    "stackoverflow.com",
    "math.stackexchange.com",
    "superuser.com",
    "askubuntu.com",
    "serverfault.com",
    "mathoverflow.net",
    "electronics.stackexchange.com",
    "physics.stackexchange.com",
    "tex.stackexchange.com",
    "unix.stackexchange.com",
    "stats.stackexchange.com",
    "english.stackexchange.com",
    "gis.stackexchange.com",
    "apple.stackexchange.com",
    "salesforce.stackexchange.com",
    "softwareengineering.stackexchange.com",
    "ell.stackexchange.com",
    "gaming.stackexchange.com",
    "magento.stackexchange.com",
    "codereview.stackexchange.com",
    "sharepoint.stackexchange.com",
    "scifi.stackexchange.com",
    "mathematica.stackexchange.com",
    "dba.stackexchange.com",
    "wordpress.stackexchange.com",
    "security.stackexchange.com",
    "diy.stackexchange.com",
    "worldbuilding.stackexchange.com",
)

_SEVEN_ZIP_MAGIC = b"7z\xbc\xaf\x27\x1c"
_BATCH = 5000
_SUFFIXES = (".gz", ".bz2", ".xz", ".7z", ".xml", ".posts", "-posts", "_posts")
_BLOCK = frozenset(
    {
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "pre",
        "blockquote",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "table",
        "tr",
    }
)
_WS = re.compile(r"\s+")
_PRE_TRAILING = re.compile(r"\x01+(?=\n|$)")


def site_from_filename(name: str) -> str:
    """`beer.stackexchange.Posts.xml.gz` / `beer.stackexchange.com.7z` → `beer.stackexchange.com`.

    A bare `Posts.xml` takes its folder's name (the layout of an unpacked dump).
    """
    base = os.path.basename(name.rstrip("/"))
    stem = base
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if stem.lower().endswith(suffix):
                stem = stem[: -len(suffix)]
                changed = True
    stem = stem.strip(".-_")
    if not stem or stem.lower() == "posts":
        parent = os.path.basename(os.path.dirname(name.rstrip("/")))
        return site_from_filename(parent) if parent else "unknown"
    if not re.search(r"\.(com|net|org)$", stem):
        stem += ".com"
    return stem


def select_site_files(paths: Iterable[str], sites: Collection[str] | None = DEFAULT_SITES) -> list[str]:
    """The dump files whose site is in `sites` (all of them when `sites` is None)."""
    wanted = None if sites is None else {s.lower() for s in sites}
    return [p for p in paths if wanted is None or site_from_filename(p).lower() in wanted]


def html_to_text(html: str) -> str:
    """HTML post body → text: block elements and `<li>` become lines, `<pre>` keeps its line breaks."""
    if not html or not html.strip():
        return ""
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _WS.sub(" ", html).strip()
    parts: list[str] = []
    _walk(root, parts, in_pre=False)
    # "\x01" marks line breaks inside <pre>: those survive; other blank lines and indentation do not
    lines = (line.strip() for line in "".join(parts).split("\n"))
    text = "\n".join(line for line in lines if line.strip("\x01 \t"))
    text = _PRE_TRAILING.sub("", text)
    return text.replace("\x01", "\n").strip()


def _walk(elem, parts: list[str], in_pre: bool) -> None:
    tag = elem.tag if isinstance(elem.tag, str) else ""
    pre = in_pre or tag == "pre"
    if tag == "br":
        parts.append("\n")
    elif tag in _BLOCK:
        parts.append("\n")
    if tag == "li":
        parts.append("- ")
    if elem.text and isinstance(elem.tag, str):
        parts.append(elem.text.replace("\n", "\x01") if pre else _WS.sub(" ", elem.text))
    for child in elem:
        _walk(child, parts, pre)
        if child.tail:
            parts.append(child.tail.replace("\n", "\x01") if pre else _WS.sub(" ", child.tail))
    if tag in _BLOCK:
        parts.append("\n")


def _open_posts(stream: BinaryIO, name: str, workdir: str) -> BinaryIO:
    """The decompressed `Posts.xml` byte stream, extracting from a .7z archive when needed."""
    head = stream.read(6)
    if head == _SEVEN_ZIP_MAGIC:
        import py7zr  # only 7z inputs need it

        archive_path = os.path.join(workdir, "input.7z")
        with open(archive_path, "wb") as out:
            out.write(head)
            shutil.copyfileobj(stream, out, 1 << 20)
        try:
            with py7zr.SevenZipFile(archive_path, mode="r") as archive:
                members = [n for n in archive.getnames() if os.path.basename(n).lower() == "posts.xml"]
                if not members:
                    raise ReaderError(name, None, "7z archive has no Posts.xml member")
                member = members[0]
                if os.path.isabs(member) or ".." in member.replace("\\", "/").split("/"):
                    raise ReaderError(name, member, "unsafe member path in 7z archive")
                extract_dir = os.path.join(workdir, "x")
                archive.extract(path=extract_dir, targets=[member])
        except py7zr.exceptions.ArchiveError as exc:
            raise ReaderError(name, None, f"7z archive is corrupt: {exc}") from exc
        os.remove(archive_path)
        return open(os.path.join(extract_dir, member), "rb")
    return open_decompressed(ReplayStream(stream, head), name)


_SCHEMA = """
CREATE TABLE q (id INTEGER PRIMARY KEY, title TEXT, body TEXT, score INTEGER, tags TEXT, created TEXT);
CREATE TABLE a (id INTEGER PRIMARY KEY, parent INTEGER, score INTEGER, body TEXT);
"""


def read_stackexchange(
    stream: BinaryIO, name: str, stats: ReadStats, *, sites: Collection[str] | None = None
) -> Iterator[Document]:
    """Yield `Q: …\\nA: …` documents for every question of a `Posts.xml`, answers by numeric score."""
    site = site_from_filename(name)
    workdir = tempfile.mkdtemp(prefix="corral-se-")
    try:
        posts = _open_posts(stream, name, workdir)
        db = sqlite3.connect(os.path.join(workdir, "posts.sqlite"))
        try:
            db.execute("PRAGMA journal_mode=OFF")
            db.execute("PRAGMA synchronous=OFF")
            db.execute("PRAGMA cache_size=-16384")
            db.executescript(_SCHEMA)
            _load(posts, name, stats, db)
            posts.close()
            selected = sites is None or site.lower() in {s.lower() for s in sites}
            yield from _emit(db, site, selected, stats)
        finally:
            db.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _load(posts: BinaryIO, name: str, stats: ReadStats, db: sqlite3.Connection) -> None:
    questions: list[tuple] = []
    answers: list[tuple] = []
    for _event, row in safe_iterparse(posts, name, stats, events=("end",)):
        if row.tag != "row":
            continue
        attrs = dict(row.attrib)
        line = row.sourceline
        clear_element(row)
        kind = attrs.get("PostTypeId")
        try:
            if kind == "1":
                questions.append(
                    (
                        int(attrs["Id"]),
                        attrs["Title"],
                        attrs["Body"],
                        int(attrs["Score"]),
                        attrs.get("Tags", ""),
                        attrs.get("CreationDate"),
                    )
                )
            elif kind == "2":
                answers.append((int(attrs["Id"]), int(attrs["ParentId"]), int(attrs["Score"]), attrs["Body"]))
            elif kind is None:
                raise KeyError("PostTypeId")
            else:
                stats.drop("stackexchange_other_post_type")
        except (KeyError, ValueError) as exc:
            detail = f"row Id={attrs.get('Id', '?')} PostTypeId={kind}: missing or invalid attribute {exc}"
            stats.dead_letter(name, f"line {line}", "stackexchange_bad_row", detail)
        if len(questions) >= _BATCH:
            _flush(db, questions, answers)
        elif len(answers) >= _BATCH:
            _flush(db, questions, answers)
    _flush(db, questions, answers)
    db.execute("CREATE INDEX a_parent ON a (parent, score DESC, id)")


def _flush(db: sqlite3.Connection, questions: list[tuple], answers: list[tuple]) -> None:
    db.executemany("INSERT OR REPLACE INTO q VALUES (?, ?, ?, ?, ?, ?)", questions)
    db.executemany("INSERT OR REPLACE INTO a VALUES (?, ?, ?, ?)", answers)
    db.commit()
    questions.clear()
    answers.clear()


def _emit(db: sqlite3.Connection, site: str, selected: bool, stats: ReadStats) -> Iterator[Document]:
    orphans = db.execute("SELECT COUNT(*) FROM a WHERE parent NOT IN (SELECT id FROM q)").fetchone()[0]
    if orphans:
        stats.drop("stackexchange_orphan_answer", orphans)
    if not selected:
        n_questions = db.execute("SELECT COUNT(*) FROM q").fetchone()[0]
        if n_questions:
            stats.drop("stackexchange_site_not_selected", n_questions)
        return
    answer_cursor = db.cursor()
    for qid, title, body, score, tags, created in db.execute(
        "SELECT id, title, body, score, tags, created FROM q ORDER BY id"
    ):
        rows = answer_cursor.execute(
            "SELECT id, score, body FROM a WHERE parent = ? ORDER BY score DESC, id", (qid,)
        ).fetchall()
        parts = [f"Q: {title.strip()}"]
        question_body = html_to_text(body)
        if question_body:
            parts.append(question_body)
        parts.extend(f"A: {html_to_text(a_body)}" for _aid, _score, a_body in rows)
        meta = {
            "site": site,
            "question_id": qid,
            "title": title,
            "score": score,
            "tags": re.findall(r"<([^>]+)>", tags) or [t for t in tags.split("|") if t],
            "created": created,
            "answer_ids": [aid for aid, _s, _b in rows],
            "answer_scores": [s for _a, s, _b in rows],
            "url": f"https://{site}/questions/{qid}",
        }
        stats.emitted += 1
        yield Document(id=f"{site}:{qid}", source=SOURCE, text="\n".join(parts), meta=meta)
