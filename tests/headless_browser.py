"""Load a page in headless Chromium and report its console errors and images, for the report's tests.

Chromium's DevTools protocol over `--remote-debugging-pipe` (what Playwright and Puppeteer use): JSON
messages separated by NUL bytes on file descriptors 3 (commands in) and 4 (responses and events out),
so no websocket client and no port are needed. The page is loaded with Runtime, Log and Network
events enabled; every exception, `console.error`, error log entry (a failed resource load is one) and
failed network request is collected, then `document.images` is read after the load event.
Protocol reference: https://chromedevtools.github.io/devtools-protocol/ (Target, Page, Runtime, Log).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")

IMAGES_JS = (
    "JSON.stringify(Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
    "complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"
)


def _above(fd: int, low: int) -> int:
    """`fd` moved to a descriptor number >= `low` (the original is closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return moved


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    errors: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    title: str = ""


class DevToolsPipe:
    def __init__(self, chromium: str, timeout: float) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="corral-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._evt_r, evt_w = os.pipe()
        cmd_r, evt_w = _above(cmd_r, 10), _above(evt_w, 10)  # never 3 or 4 themselves (see the shell line)
        args = [
            chromium,
            "--headless",
            "--remote-debugging-pipe",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={self.profile}",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # the browser expects the pipe on fds 3 and 4: bash moves the two pipe ends there (dash only knows fds 0-9)
        shell = f'exec "$@" 3<&{cmd_r} 4>&{evt_w} {cmd_r}<&- {evt_w}>&-'
        self.proc = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", shell, "bash", *args],
            pass_fds=(cmd_r, evt_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(evt_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(self.timeout)
            if reply is None:
                raise TimeoutError(f"chromium did not answer {method} within {self.timeout}s")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        for e in self.events:
            if e.get("method") == method:
                return e
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            e = self._read(left)
            if e is None:
                break
            self.events.append(e)
            if e.get("method") == method:
                return e
        raise TimeoutError(f"no {method} event within {self.timeout}s")

    def drain(self, quiet: float) -> None:
        """Collect events until none arrives for `quiet` seconds."""
        while (e := self._read(quiet)) is not None:
            self.events.append(e)

    def _read(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._evt_r], [], [], left)[0]:
                return None
            chunk = os.read(self._evt_r, 1 << 16)
            if not chunk:
                raise RuntimeError(f"chromium closed the pipe (exit code {self.proc.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._evt_r)
        shutil.rmtree(self.profile, ignore_errors=True)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append(
                "console.error: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"])
            )
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
        elif method == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"network: {p.get('errorText')} ({p.get('type', '?')})")
    return out


def check_page(url: str, chromium: str, timeout: float = 60.0) -> PageCheck:
    """Load `url` (a file:// URL works) and return its errors, its images' state and its title."""
    browser = DevToolsPipe(chromium, timeout)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.events.clear()
        browser.send("Page.navigate", {"url": url}, session=session)
        browser.wait_event("Page.loadEventFired")
        images = browser.send(
            "Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True}, session=session
        )
        title = browser.send(
            "Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session=session
        )
        browser.drain(0.5)
        return PageCheck(
            errors=_errors(browser.events),
            images=json.loads(images["result"]["value"]),
            title=title["result"]["value"],
        )
    finally:
        browser.close()
