"""`corral download` against a real HTTP server on 127.0.0.1 that injects the faults real mirrors have."""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from corral import download as dlmod
from corral.download import (
    Checksum,
    ChecksumError,
    Downloader,
    DownloadError,
    RetryPolicy,
    download_commoncrawl,
    download_wikipedia,
    parse_checksum_file,
)

FAST = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, timeout=2.0)


class FaultServer:
    """Serves in-memory files with Range/If-Range support; per-path queues of faults to inject."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list[str]] = defaultdict(list)
        self.requests: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with server.lock:
                    server.requests.append((self.path, self.headers.get("Range")))
                    fault = server.faults[self.path].pop(0) if server.faults[self.path] else None
                    data = server.files.get(self.path)
                if fault == "stall":
                    time.sleep(1.0)
                if fault in ("503", "429"):
                    self.send_response(int(fault))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if data is None or fault == "404":
                    self.send_error(404)
                    return
                etag = '"' + hashlib.sha1(data).hexdigest() + '"'
                start = 0
                rng = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if rng and fault != "ignore_range" and (if_range is None or if_range == etag):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", etag)
                self.end_headers()
                if fault == "drop_half":
                    # Promise the whole body, deliver half, hang up: a dropped connection mid-file.
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def gets(self, path: str) -> list[str | None]:
        """Range headers of every GET of `path`, in order."""
        return [rng for p, rng in self.requests if p == path]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ever talk to 127.0.0.1 directly, whatever proxy the environment configures."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture
def server() -> Iterator[FaultServer]:
    srv = FaultServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def payload(n: int, seed: int) -> bytes:
    """Deterministic incompressible-looking bytes, distinct per seed."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def downloader() -> Downloader:
    return Downloader(FAST, progress=False)


# -- Common Crawl ----------------------------------------------------------------------------------
SNAP = "CC-MAIN-2024-22"


def serve_cc(server: FaultServer, n: int) -> list[str]:
    rels = [
        f"crawl-data/{SNAP}/segments/17155{i}.1/wet/CC-MAIN-2024052{i}-0000{i}.warc.wet.gz" for i in range(n)
    ]
    server.files[f"/crawl-data/{SNAP}/wet.paths.gz"] = gzip.compress(("\n".join(rels) + "\n").encode())
    for i, rel in enumerate(rels):
        server.files["/" + rel] = gzip.compress(payload(20_000 + 1000 * i, i))
    return rels


def test_commoncrawl_first_n_with_offset_then_rerun_is_noop(
    server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rels = serve_cc(server, 4)
    argv = ["commoncrawl", "--snapshot", SNAP, "--segments", "2", "--offset", "1", "--out", str(tmp_path)]
    argv += ["--base-url", server.base + "/", "--quiet", "--backoff", "0.01"]
    assert dlmod.main(argv) == 0
    for rel in rels[1:3]:
        assert (tmp_path / rel).read_bytes() == server.files["/" + rel]
    assert not (tmp_path / rels[0]).exists() and not (tmp_path / rels[3]).exists()
    assert (tmp_path / f"crawl-data/{SNAP}/wet.paths.gz").exists()
    assert not list(tmp_path.rglob("*.part*"))
    first_run = len(server.requests)
    assert first_run == 3
    assert "3 fetched" in capsys.readouterr().out

    assert dlmod.main(argv) == 0
    assert len(server.requests) == first_run  # nothing fetched again
    out = capsys.readouterr().out
    assert "0 fetched" in out and "3 already complete" in out


def test_commoncrawl_rejects_paths_escaping_out_dir(server: FaultServer, tmp_path: Path) -> None:
    server.files[f"/crawl-data/{SNAP}/wet.paths.gz"] = gzip.compress(b"crawl-data/ok.wet.gz\n../../evil.gz\n")
    server.files["/crawl-data/ok.wet.gz"] = b"x"
    out = tmp_path / "out"
    with pytest.raises(DownloadError, match=r"wet.paths.gz line 2: unsafe path '\.\./\.\./evil.gz'"):
        download_commoncrawl(downloader(), SNAP, 2, out, server.base)
    assert not (tmp_path / "evil.gz").exists()


def test_commoncrawl_too_few_listed_segments_is_a_clear_error(server: FaultServer, tmp_path: Path) -> None:
    serve_cc(server, 2)
    with pytest.raises(DownloadError, match=r"lists 2 WET files; asked for 3 from offset 0"):
        download_commoncrawl(downloader(), SNAP, 3, tmp_path, server.base)


# -- resume, retries, faults -----------------------------------------------------------------------
def test_dropped_connection_resumes_with_range_byte_identical(server: FaultServer, tmp_path: Path) -> None:
    data = payload(300_001, 7)
    server.files["/f.bin"] = data
    server.faults["/f.bin"] = ["drop_half", "drop_half"]
    dl = Downloader(FAST, progress=True)  # exercise the tqdm bar, resumed at an initial offset
    res = dl.fetch(
        server.base + "/f.bin", tmp_path / "f.bin", Checksum("sha256", hashlib.sha256(data).hexdigest())
    )
    assert (tmp_path / "f.bin").read_bytes() == data
    half = len(data) // 2
    quarter = (len(data) - half) // 2
    assert server.gets("/f.bin") == [None, f"bytes={half}-", f"bytes={half + quarter}-"]
    assert res.resumes == 2 and res.restarts == 0 and res.verified and res.attempts == 3
    assert res.bytes_fetched == len(data)  # nothing fetched twice
    assert not (tmp_path / "f.bin.part").exists() and not (tmp_path / "f.bin.part.json").exists()


def test_503_twice_then_success(server: FaultServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = data = payload(5000, 1)
    server.faults["/f.bin"] = ["503", "429"]
    sleeps: list[float] = []
    dl = Downloader(FAST, progress=False, sleep=sleeps.append)
    res = dl.fetch(server.base + "/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data
    assert res.attempts == 3 and len(server.gets("/f.bin")) == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]  # exponential backoff between attempts


def test_persistent_503_gives_up_after_limit(server: FaultServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = b"data"
    server.faults["/f.bin"] = ["503"] * 10
    with pytest.raises(DownloadError, match=r"/f.bin -> .*gave up after 4 attempts: HTTP 503"):
        downloader().fetch(server.base + "/f.bin", tmp_path / "f.bin")
    assert len(server.gets("/f.bin")) == 4 and not (tmp_path / "f.bin").exists()


def test_timeout_is_retried(server: FaultServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = data = payload(1000, 2)
    server.faults["/f.bin"] = ["stall"]
    dl = Downloader(RetryPolicy(attempts=3, base_delay=0.01, timeout=0.3), progress=False)
    res = dl.fetch(server.base + "/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data and res.attempts == 2


def test_server_ignoring_range_restarts_cleanly(server: FaultServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = data = payload(100_000, 3)
    server.faults["/f.bin"] = ["drop_half", "ignore_range"]
    res = downloader().fetch(server.base + "/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == data  # not the half prefix + the whole file
    assert server.gets("/f.bin") == [None, f"bytes={len(data) // 2}-"]
    assert res.restarts == 1 and res.resumes == 0


def test_changed_file_on_server_is_not_spliced(server: FaultServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = payload(50_000, 4)
    server.faults["/f.bin"] = ["drop_half"] * 4
    with pytest.raises(DownloadError, match="partial data kept"):
        Downloader(RetryPolicy(attempts=1, base_delay=0.01), progress=False).fetch(
            server.base + "/f.bin", tmp_path / "f.bin"
        )
    assert (tmp_path / "f.bin.part").stat().st_size == 25_000
    server.files["/f.bin"] = new = payload(60_000, 5)  # new version: the ETag changes, If-Range fails
    server.faults["/f.bin"] = []
    res = downloader().fetch(server.base + "/f.bin", tmp_path / "f.bin")
    assert (tmp_path / "f.bin").read_bytes() == new and res.restarts == 1


def test_part_already_complete_gets_416_and_is_finished(server: FaultServer, tmp_path: Path) -> None:
    server.files["/f.bin"] = data = payload(4096, 6)
    (tmp_path / "f.bin.part").write_bytes(data)
    res = downloader().fetch(
        server.base + "/f.bin", tmp_path / "f.bin", Checksum("md5", hashlib.md5(data).hexdigest())
    )
    assert (tmp_path / "f.bin").read_bytes() == data and res.verified and res.bytes_fetched == 0


def test_404_fails_immediately_with_url(server: FaultServer, tmp_path: Path) -> None:
    sleeps: list[float] = []
    url = server.base + "/missing.bin"
    with pytest.raises(DownloadError, match=rf"{url}: HTTP 404 .*not retried"):
        Downloader(FAST, progress=False, sleep=sleeps.append).fetch(url, tmp_path / "missing.bin")
    assert len(server.gets("/missing.bin")) == 1 and sleeps == []
    assert not list(tmp_path.iterdir())


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(
        DownloadError, match=rf"127.0.0.1:{port}/x -> .*: gave up after 2 attempts: ConnectionRefused"
    ):
        Downloader(RetryPolicy(attempts=2, base_delay=0.01), progress=False).fetch(
            f"http://127.0.0.1:{port}/x", tmp_path / "x"
        )


# -- Wikipedia -------------------------------------------------------------------------------------
def serve_wiki(
    server: FaultServer, lang: str, date: str, *, sums: str | None = "sha1", corrupt: bool = False
) -> str:
    name = f"{lang}wiki-{date}-pages-articles.xml.bz2"
    data = payload(40_000, sum(map(ord, lang)))
    server.files[f"/{lang}wiki/{date}/{name}"] = data
    if sums:
        digest = hashlib.new(sums, data).hexdigest()
        if corrupt:
            digest = digest[::-1]
        other = f"{lang}wiki-{date}-pages-meta-history1.xml.bz2"
        text = f"{hashlib.new(sums, b'x').hexdigest()}  {other}\n{digest}  {name}\n"
        server.files[f"/{lang}wiki/{date}/{lang}wiki-{date}-{sums}sums.txt"] = text.encode()
    return name


def test_wikipedia_verified_multiple_langs(
    server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = {lang: serve_wiki(server, lang, "20220701") for lang in ("en", "bg")}
    names["sv"] = serve_wiki(server, "sv", "20220701", sums="md5")  # only md5sums published
    argv = ["wikipedia", "--date", "20220701", "--out", str(tmp_path), "--base-url", server.base, "--quiet"]
    for lang in names:
        argv += ["--lang", lang]
    assert dlmod.main(argv) == 0
    for lang, name in names.items():
        got = (tmp_path / f"{lang}wiki" / "20220701" / name).read_bytes()
        assert got == server.files[f"/{lang}wiki/20220701/{name}"]
    out = capsys.readouterr().out
    assert out.count("verified:") == 3


def test_wikipedia_wrong_checksum_fails_clearly_and_leaves_no_file(
    server: FaultServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = serve_wiki(server, "en", "20220701", corrupt=True)
    data = server.files[f"/enwiki/20220701/{name}"]
    actual = hashlib.sha1(data).hexdigest()
    dl = downloader()
    with pytest.raises(ChecksumError) as err:
        download_wikipedia(dl, "en", "20220701", tmp_path, server.base)
    msg = str(err.value)
    assert name in msg and f"expected {actual[::-1]}" in msg and f"got {actual}" in msg
    assert not list(tmp_path.rglob("*.bz2*"))  # neither final file nor .part
    assert len(server.gets(f"/enwiki/20220701/{name}")) == FAST.attempts

    argv = [
        "wikipedia",
        "--lang",
        "en",
        "--date",
        "20220701",
        "--out",
        str(tmp_path),
        "--base-url",
        server.base,
    ]
    assert dlmod.main([*argv, "--quiet", "--retries", "1"]) == 1
    assert "sha1 mismatch" in capsys.readouterr().err


def test_wikipedia_without_published_checksum_still_downloads(server: FaultServer, tmp_path: Path) -> None:
    name = serve_wiki(server, "uk", "20220801", sums=None)
    res = download_wikipedia(downloader(), "uk", "20220801", tmp_path, server.base)
    assert res.path.read_bytes() == server.files[f"/ukwiki/20220801/{name}"] and not res.verified


def test_wikipedia_resume_after_drop_is_verified(server: FaultServer, tmp_path: Path) -> None:
    name = serve_wiki(server, "de", "20220701")
    server.faults[f"/dewiki/20220701/{name}"] = ["drop_half"]
    res = download_wikipedia(downloader(), "de", "20220701", tmp_path, server.base)
    assert res.verified and res.resumes == 1  # digest computed over the kept prefix + the resumed tail


# -- small pieces ----------------------------------------------------------------------------------
def test_parse_checksum_file() -> None:
    text = "ABCDEF01  a.bz2\n0123abcd *b.bz2\n\nnot a line\nzz  c.bz2\n"
    sums = parse_checksum_file(text, "sha1")
    assert sums == {"a.bz2": Checksum("sha1", "abcdef01"), "b.bz2": Checksum("sha1", "0123abcd")}


def test_backoff_grows_and_honours_retry_after() -> None:
    p = RetryPolicy(base_delay=1.0, max_delay=5.0)
    assert 1.0 <= p.delay(1) <= 1.1 and 2.0 <= p.delay(2) <= 2.2 and p.delay(10) <= 5.5
    assert p.delay(1, retry_after=3.0) == 3.0 and p.delay(1, retry_after=100.0) == 5.0


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="CC-MAIN"):
        download_commoncrawl(downloader(), "2024-22", 1, tmp_path)
    with pytest.raises(DownloadError, match="YYYYMMDD"):
        download_wikipedia(downloader(), "en", "July", tmp_path)
    assert not os.listdir(tmp_path)
