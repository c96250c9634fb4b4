"""`corral download`: fetch the public dumps corral reads (Common Crawl WET segments, Wikipedia dumps).

Real dumps are tens of GB over flaky links, so every file is fetched the same careful way:

* written to ``NAME.part`` and resumed with an HTTP ``Range`` request from the part's size (guarded by
  ``If-Range`` so a file that changed on the server restarts instead of being spliced); a server that
  ignores ``Range`` (answers 200) restarts the part from byte 0;
* connection errors, timeouts, short bodies, 5xx and 429 are retried with exponential backoff; any
  other HTTP error (404, 403, ...) fails at once with the URL in the message;
* the digest the source publishes (Wikipedia's ``sha1sums.txt``, or ``md5sums.txt``) is checked before
  the part is renamed to its final name; a mismatch deletes the part and retries, then fails naming
  the file and both digests;
* a final file that exists was verified when it was renamed, so re-running is a no-op.

Only the standard library's ``urllib`` is used for HTTP (no new dependency); ``tqdm`` draws progress.
"""

from __future__ import annotations

import argparse
import dataclasses
import email.utils
import gzip
import hashlib
import http.client
import json
import logging
import os
import random
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm import tqdm

log = logging.getLogger("corral.download")

CC_BASE_URL = "https://data.commoncrawl.org"
WIKI_BASE_URL = "https://dumps.wikimedia.org"
USER_AGENT = "corral-download/0.1 (+https://github.com/corral; LLaMA data recipe)"
CHUNK = 1 << 20
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(RuntimeError):
    """A file could not be fetched; the message names the URL (and the local file where relevant)."""


class ChecksumError(DownloadError):
    """The fetched bytes do not match the digest the source publishes."""


class _Retryable(Exception):
    """Internal: an attempt failed in a way worth retrying (network, 5xx, short body, bad digest)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per file, backoff base/cap (seconds) and the socket timeout."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    timeout: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with a little jitter; a server's Retry-After wins, within the cap."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        d = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return d + random.uniform(0, d * 0.1)


@dataclasses.dataclass(frozen=True)
class Checksum:
    """A published digest: algorithm name as hashlib spells it (sha1, md5, sha256) and hex value."""

    algo: str
    hexdigest: str

    def __post_init__(self) -> None:
        if self.algo not in {"sha1", "md5", "sha256", "sha512"}:
            raise ValueError(f"unsupported checksum algorithm {self.algo!r}")


@dataclasses.dataclass
class FetchResult:
    """What happened to one file, for the summary and for tests."""

    url: str
    path: Path
    skipped: bool = False
    verified: bool = False
    bytes_fetched: int = 0
    attempts: int = 0
    restarts: int = 0
    resumes: int = 0


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Downloader:
    """Fetches URLs to local files with resume, retries, verification and atomic completion."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        progress: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.progress = progress
        self._sleep = sleep
        self._opener = urllib.request.build_opener()

    # -- small in-memory fetches (paths lists, checksum files) -------------------------------------
    def fetch_bytes(self, url: str, *, missing_ok: bool = False) -> bytes | None:
        """GET a small file into memory with the same retry rules; None on 404 when `missing_ok`."""
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            try:
                with self._open(url, {}) as resp:
                    expected = resp.headers.get("Content-Length")
                    data = self._read_all(resp, url)
                    if expected is not None and len(data) != int(expected):
                        raise _Retryable(f"short body: {len(data)} of {expected} bytes")
                    return data
            except urllib.error.HTTPError as e:
                if e.code == 404 and missing_ok:
                    return None
                err = self._classify_http(e, url)
                last, retry_after = str(err), err.retry_after
            except _Retryable as e:
                last, retry_after = str(e), e.retry_after
            if attempt < self.policy.attempts:
                self._sleep(self.policy.delay(attempt, retry_after))
        raise DownloadError(f"{url}: gave up after {self.policy.attempts} attempts: {last}")

    # -- whole files -------------------------------------------------------------------------------
    def fetch(self, url: str, dest: Path, checksum: Checksum | None = None) -> FetchResult:
        """Download `url` to `dest` (resuming `dest.part`), verify, then rename into place."""
        dest = Path(dest)
        result = FetchResult(url=url, path=dest)
        if dest.exists():
            result.skipped = True
            log.info("already complete: %s", dest)
            return result
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        meta = dest.with_name(dest.name + ".part.json")
        last = ""
        for attempt in range(1, self.policy.attempts + 1):
            result.attempts = attempt
            retry_after = None
            try:
                digest = self._attempt(url, part, meta, checksum, result)
            except _Retryable as e:
                last, retry_after = str(e), e.retry_after
                log.warning("%s: attempt %d/%d failed: %s", url, attempt, self.policy.attempts, last)
            else:
                if checksum is not None and digest != checksum.hexdigest.lower():
                    part.unlink(missing_ok=True)
                    meta.unlink(missing_ok=True)
                    last = (
                        f"{checksum.algo} mismatch for {dest.name}: expected {checksum.hexdigest.lower()}, "
                        f"got {digest}"
                    )
                    log.warning("%s: attempt %d/%d: %s", url, attempt, self.policy.attempts, last)
                    if attempt == self.policy.attempts:
                        raise ChecksumError(
                            f"{url} -> {dest}: {last} (after {attempt} attempts; partial file deleted)"
                        )
                else:
                    os.replace(part, dest)
                    meta.unlink(missing_ok=True)
                    result.verified = checksum is not None
                    return result
            if attempt < self.policy.attempts:
                self._sleep(self.policy.delay(attempt, retry_after))
        kept = f" (partial data kept in {part.name} for a later resume)" if part.exists() else ""
        raise DownloadError(f"{url} -> {dest}: gave up after {self.policy.attempts} attempts: {last}{kept}")

    def _attempt(
        self, url: str, part: Path, meta: Path, checksum: Checksum | None, result: FetchResult
    ) -> str | None:
        """One GET (ranged when a part exists); returns the hex digest of the complete part, if asked."""
        offset = part.stat().st_size if part.exists() else 0
        validator = self._load_validator(meta, url) if offset else None
        headers: dict[str, str] = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if validator:
                headers["If-Range"] = validator
        try:
            resp = self._open(url, headers)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:
                # Our part is at or past the end; if it is exactly the whole file it only needs verifying.
                total = _total_from_content_range(e.headers.get("Content-Range"))
                e.close()
                if total is not None and total == offset:
                    return self._hash_file(part, checksum)
                part.unlink(missing_ok=True)
                meta.unlink(missing_ok=True)
                result.restarts += 1
                raise _Retryable(f"HTTP 416 for a {offset}-byte part: restarting from 0") from None
            raise self._classify_http(e, url) from None
        with resp:
            status = resp.status
            mode = "ab"
            if offset and status == 206:
                start, total = _parse_content_range(resp.headers.get("Content-Range"), url)
                if start != offset:
                    part.unlink(missing_ok=True)
                    meta.unlink(missing_ok=True)
                    result.restarts += 1
                    raise _Retryable(f"server sent range from byte {start}, asked {offset}: restarting")
                result.resumes += 1
            elif status in (200, 203):
                if offset:
                    log.info("%s: server ignored Range (HTTP %d); restarting %s", url, status, part.name)
                    result.restarts += 1
                offset, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length is not None else None
            else:
                raise DownloadError(f"{url}: unexpected HTTP {status} {resp.reason}")
            new_validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
            if mode == "wb" or not meta.exists():
                self._save_validator(meta, url, new_validator)
            hasher = hashlib.new(checksum.algo) if checksum else None
            if hasher is not None and mode == "ab":
                _hash_into(part, hasher, offset)
            with (
                open(part, mode) as out,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name[: -len(".part")][-40:],
                    disable=not self.progress,
                    leave=False,
                ) as bar,
            ):
                received = self._stream(resp, out, hasher, bar, url)
                out.flush()
                os.fsync(out.fileno())
        result.bytes_fetched += received
        size = offset + received
        if total is not None and size != total:
            raise _Retryable(f"connection ended at byte {size} of {total}")
        return hasher.hexdigest() if hasher is not None else None

    # -- helpers -----------------------------------------------------------------------------------
    def _open(self, url: str, headers: dict[str, str]) -> http.client.HTTPResponse:
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
        try:
            return self._opener.open(req, timeout=self.policy.timeout)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise _Retryable(f"{type(reason).__name__}: {reason}") from None

    def _classify_http(self, e: urllib.error.HTTPError, url: str) -> _Retryable:
        """Return a retryable error for 5xx/429/408, raise DownloadError for everything else."""
        retry_after = _parse_retry_after(e.headers.get("Retry-After") if e.headers else None)
        e.close()
        if e.code in RETRYABLE_STATUS or 500 <= e.code < 600:
            return _Retryable(f"HTTP {e.code} {e.reason}", retry_after)
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason} (not retried)")

    def _read_all(self, resp: http.client.HTTPResponse, url: str) -> bytes:
        chunks = []
        while True:
            chunk = self._read_chunk(resp)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    @staticmethod
    def _read_chunk(resp: http.client.HTTPResponse) -> bytes:
        try:
            return resp.read(CHUNK)
        except http.client.IncompleteRead as e:
            raise _Retryable(f"incomplete read ({len(e.partial)} bytes in last chunk)") from None
        except (OSError, http.client.HTTPException) as e:
            raise _Retryable(f"{type(e).__name__}: {e}") from None

    def _stream(self, resp: http.client.HTTPResponse, out: BinaryIO, hasher, bar: tqdm, url: str) -> int:
        received = 0
        try:
            while True:
                chunk = self._read_chunk(resp)
                if not chunk:
                    return received
                out.write(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        except _Retryable as e:
            # Keep what arrived: it is a valid prefix and the next attempt resumes after it.
            raise _Retryable(f"{e} after {received} bytes of this response") from None

    @staticmethod
    def _hash_file(part: Path, checksum: Checksum | None) -> str | None:
        if checksum is None:
            return None
        hasher = hashlib.new(checksum.algo)
        _hash_into(part, hasher, part.stat().st_size)
        return hasher.hexdigest()

    @staticmethod
    def _load_validator(meta: Path, url: str) -> str | None:
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            return None
        return data.get("validator") if data.get("url") == url else None

    @staticmethod
    def _save_validator(meta: Path, url: str, validator: str | None) -> None:
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_text(json.dumps({"url": url, "validator": validator}))
        os.replace(tmp, meta)


def _hash_into(path: Path, hasher, length: int) -> None:
    with open(path, "rb") as f:
        remaining = length
        while remaining > 0:
            block = f.read(min(CHUNK, remaining))
            if not block:
                raise DownloadError(f"{path}: shorter than expected while hashing ({length} bytes)")
            hasher.update(block)
            remaining -= len(block)


def _total_from_content_range(value: str | None) -> int | None:
    m = re.match(r"bytes\s+\*/(\d+)", value or "")
    return int(m.group(1)) if m else None


def _parse_content_range(value: str | None, url: str) -> tuple[int, int | None]:
    m = _CONTENT_RANGE.match(value or "")
    if not m:
        raise _Retryable(f"HTTP 206 without a usable Content-Range ({value!r})")
    total = None if m.group(3) == "*" else int(m.group(3))
    return int(m.group(1)), total


# -- sources ---------------------------------------------------------------------------------------
def parse_checksum_file(text: str, algo: str) -> dict[str, Checksum]:
    """Parse `sha1sum`-style lines (`<hex>  <name>`, optional `*` binary marker) into name → Checksum."""
    sums: dict[str, Checksum] = {}
    for line in text.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) != 2:
            continue
        digest, name = parts
        if re.fullmatch(r"[0-9a-fA-F]+", digest):
            sums[name.lstrip("*").strip()] = Checksum(algo, digest.lower())
    return sums


def safe_relative_path(rel: str, where: str) -> PurePosixPath:
    """A listed path must stay inside the output directory (no absolute paths, no `..`)."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or ".." in p.parts or "\\" in rel or ":" in p.parts[0]:
        raise DownloadError(f"{where}: unsafe path {rel!r} (absolute or contains '..')")
    return p


def download_commoncrawl(
    dl: Downloader, snapshot: str, segments: int, out: Path, base_url: str = CC_BASE_URL, offset: int = 0
) -> list[FetchResult]:
    """Fetch `wet.paths.gz` of a snapshot, then WET files [offset, offset+segments) in listed order."""
    if not re.fullmatch(r"CC-MAIN-\d{4}-\d{2}", snapshot):
        raise DownloadError(f"snapshot must look like CC-MAIN-2024-22, got {snapshot!r}")
    if segments < 1 or offset < 0:
        raise DownloadError("--segments must be >= 1 and --offset >= 0")
    base = base_url.rstrip("/")
    rel = f"crawl-data/{snapshot}/wet.paths.gz"
    listing = dl.fetch(f"{base}/{rel}", out / rel)
    try:
        with gzip.open(listing.path, "rt", encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DownloadError(
            f"{listing.path}: not a readable gzip paths list ({e}); delete it to refetch"
        ) from e
    paths = [(n, line) for n, line in enumerate(lines, 1) if line]
    if offset + segments > len(paths):
        raise DownloadError(
            f"{listing.path}: lists {len(paths)} WET files; asked for {segments} from offset {offset}"
        )
    results = [listing]
    chosen = [
        (n, safe_relative_path(p, f"{listing.path} line {n}")) for n, p in paths[offset : offset + segments]
    ]
    for _, rel_path in chosen:
        results.append(dl.fetch(f"{base}/{rel_path}", out.joinpath(*rel_path.parts)))
    return results


def download_wikipedia(
    dl: Downloader, lang: str, date: str, out: Path, base_url: str = WIKI_BASE_URL
) -> FetchResult:
    """Fetch `{lang}wiki-{date}-pages-articles.xml.bz2`, verified against the dump's sha1sums (or md5sums)."""
    if not re.fullmatch(r"[a-z][a-z0-9_-]*", lang):
        raise DownloadError(f"bad language code {lang!r}")
    if not re.fullmatch(r"\d{8}|latest", date):
        raise DownloadError(f"--date must be YYYYMMDD or 'latest', got {date!r}")
    base = base_url.rstrip("/")
    wiki = f"{lang}wiki"
    name = f"{wiki}-{date}-pages-articles.xml.bz2"
    folder = f"{base}/{wiki}/{date}"
    dest = out / wiki / date / name
    checksum = None
    if not dest.exists():
        for algo in ("sha1", "md5"):
            sums_url = f"{folder}/{wiki}-{date}-{algo}sums.txt"
            raw = dl.fetch_bytes(sums_url, missing_ok=True)
            if raw is None:
                continue
            sums = parse_checksum_file(raw.decode("utf-8", "replace"), algo)
            checksum = sums.get(name)
            if checksum is None:
                log.warning("%s lists no entry for %s", sums_url, name)
            break
        if checksum is None:
            log.warning("%s: no published checksum found; the download is size-checked only", name)
    return dl.fetch(f"{folder}/{name}", dest, checksum)


# -- command line ----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="corral download", description="Download public dumps (resumable, verified, retried)."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", type=Path, required=True, help="destination directory")
    common.add_argument("--base-url", help="mirror to fetch from instead of the official host")
    common.add_argument("--retries", type=int, default=6, help="attempts per file (default 6)")
    common.add_argument("--backoff", type=float, default=1.0, help="first retry delay in s, doubling")
    common.add_argument("--max-backoff", type=float, default=60.0, help="cap on the retry delay in s")
    common.add_argument("--timeout", type=float, default=60.0, help="socket timeout in s")
    common.add_argument("--quiet", action="store_true", help="no progress bar, warnings only")
    sub = p.add_subparsers(dest="source", required=True)
    cc = sub.add_parser("commoncrawl", parents=[common], help="WET segments of a Common Crawl snapshot")
    cc.add_argument("--snapshot", required=True, help="e.g. CC-MAIN-2024-22")
    cc.add_argument("--segments", type=int, required=True, help="how many WET files (first N listed)")
    cc.add_argument("--offset", type=int, default=0, help="skip the first K listed WET files")
    wk = sub.add_parser("wikipedia", parents=[common], help="pages-articles dumps per language")
    wk.add_argument("--lang", action="append", required=True, help="language code; repeat for several")
    wk.add_argument(
        "--date", required=True, help="dump date YYYYMMDD (LLaMA §2.1 used the June-August 2022 dumps)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of `corral download`; returns 0 when every requested file is complete and verified."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
    )
    if args.retries < 1:
        print("error: --retries must be >= 1", file=sys.stderr)
        return 2
    policy = RetryPolicy(
        attempts=args.retries, base_delay=args.backoff, max_delay=args.max_backoff, timeout=args.timeout
    )
    dl = Downloader(policy, progress=not args.quiet and sys.stderr.isatty())
    results: list[FetchResult] = []
    failures: list[str] = []
    jobs: Sequence[Callable[[], list[FetchResult]]]
    if args.source == "commoncrawl":
        base = args.base_url or CC_BASE_URL
        jobs = [lambda: download_commoncrawl(dl, args.snapshot, args.segments, args.out, base, args.offset)]
    else:
        base = args.base_url or WIKI_BASE_URL
        jobs = [
            (lambda lang=lang: [download_wikipedia(dl, lang, args.date, args.out, base)])
            for lang in args.lang
        ]
    for job in jobs:
        try:
            results.extend(job())
        except DownloadError as e:
            failures.append(str(e))
            print(f"error: {e}", file=sys.stderr)
    fetched = [r for r in results if not r.skipped]
    for r in results:
        state = "skipped (complete)" if r.skipped else ("verified" if r.verified else "downloaded")
        print(f"{state}: {r.path}")
    print(
        f"corral download: {len(fetched)} fetched ({sum(r.bytes_fetched for r in fetched)} bytes), "
        f"{len(results) - len(fetched)} already complete, {len(failures)} failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
