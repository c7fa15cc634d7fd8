"""A real headless Chromium, driven over its DevTools protocol through a pipe, with the stdlib only.

Why this and not Playwright or Selenium: Chromium's ``--remote-debugging-pipe`` speaks the
DevTools protocol as NUL-terminated JSON messages on file descriptors 3 (commands in) and 4
(replies and events out), so a hundred lines of ``os.posix_spawn``, ``select`` and ``json``
drive the system's Chromium (Debian's ``chromium`` package, which .ci/run installs) without a
websocket library, a downloaded browser or a Node.js runtime: nothing to install from PyPI or
npm, nothing that needs the network, and the same browser a user opens the report in.

    with Browser(tmp_path / "profile") as browser:
        page = browser.open(report.as_uri())
        page.evaluate("document.title")
        page.click("#summary a")
        page.screenshot(tmp_path / "report.png")

Every wait has a deadline; the browser runs in its own session and is killed, with every
process it started, when the ``with`` block ends.

``python -m tests._browser PAGE.html OUT.png [SELECTOR [HEIGHT]]`` takes a screenshot of a page,
1000 pixels wide and HEIGHT (default 640) high, scrolled to the element ``SELECTOR`` if given:
docs/report-screenshot.png is made this way (see README.md).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The flags the tests start Chromium with: headless, no sandbox (CI runs as root), and nothing
#: that reaches for the network or a GPU.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class BrowserError(Exception):
    """Chromium could not be found or started, or did not answer in time."""


def find_chromium() -> str:
    """The Chromium to use: ``$MEGA_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH."""
    explicit = os.environ.get("MEGA_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("no Chromium found: install Debian's chromium package (.ci/run does) or set MEGA_CHROMIUM")


def _high_fd(fd: int) -> int:
    """``fd`` moved above 10 (close-on-exec), so that placing the pipe at 3 and 4 in the child cannot clobber it."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Browser:
    """One headless Chromium process and its DevTools pipe."""

    def __init__(self, user_data_dir: Path, *, width: int = 1200, height: int = 900, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self.width = width
        self.height = height
        user_data_dir.mkdir(parents=True, exist_ok=True)
        commands_r, commands_w = (_high_fd(fd) for fd in os.pipe())
        events_r, events_w = (_high_fd(fd) for fd in os.pipe())
        log = user_data_dir / "chromium.log"
        argv = [find_chromium(), *FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={width},{height}"]
        try:
            self.pid = os.posix_spawn(
                argv[0],
                [*argv, "about:blank"],
                dict(os.environ),
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
                    (os.POSIX_SPAWN_DUP2, 1, 2),
                    (os.POSIX_SPAWN_DUP2, commands_r, 3),
                    (os.POSIX_SPAWN_DUP2, events_w, 4),
                ],
                setsid=True,
            )
        except OSError as exc:
            for fd in (commands_r, commands_w, events_r, events_w):
                os.close(fd)
            raise BrowserError(f"cannot start {argv[0]}: {exc}") from exc
        os.close(commands_r)
        os.close(events_w)
        self._out = commands_w
        self._in = events_r
        self._buf = b""
        self._next_id = 1
        self._events: list[dict[str, Any]] = []
        self._log = log
        try:
            self.version = self.send("Browser.getVersion")
        except BrowserError:
            self.close()
            raise

    # -- the pipe ------------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._in], [], [], remaining)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout:g} s ({self._tail_of_log()})")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed its DevTools pipe ({self._tail_of_log()})")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def _tail_of_log(self) -> str:
        with contextlib.suppress(OSError):
            return "log: " + self._log.read_text(errors="replace")[-500:].replace("\n", " | ")
        return "no log"

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one command and wait for its result (events that arrive meanwhile are kept)."""
        cid = self._next_id
        self._next_id += 1
        message: dict[str, Any] = {"id": cid, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self._out, data)
            data = data[written:]
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == cid:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            if "method" in reply:
                self._events.append(reply)

    def wait_event(self, method: str, session: str | None = None) -> dict[str, Any]:
        """The first event ``method`` (of ``session``) not yet taken, waited for up to the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event.get("method") == method and (session is None or event.get("sessionId") == session):
                    del self._events[i]
                    return event
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    # -- pages ---------------------------------------------------------------------------------

    def open(self, url: str) -> Page:
        """A new tab showing ``url``, once its load event has fired."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        page.navigate(url)
        return page

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            done, _ = os.waitpid(self.pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)  # the renderers and helpers too
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self._out, self._in):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})
        self.browser.wait_event("Page.loadEventFired", self.session)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable); a page exception raises."""
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r} raised {reply['exceptionDetails']}")
        return reply.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll ``expression`` until it is truthy (animation frames apart); its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"{expression!r} still false after {timeout:g} s")
            self.evaluate("new Promise(r => requestAnimationFrame(() => r(true)))")

    def click(self, selector: str) -> None:
        """A real left click (mouse pressed and released) at the middle of the element ``selector``."""
        box = self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); if (!el) return null;"
            " el.scrollIntoView({block: 'center'}); const r = el.getBoundingClientRect();"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        if box is None:
            raise BrowserError(f"no element {selector!r} to click")
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1},
            )

    def type_text(self, text: str) -> None:
        """Type ``text`` into the focused element, as a keyboard would insert it."""
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path, *, selector: str | None = None) -> Path:
        """A PNG of the viewport (scrolled to ``selector`` first, if given)."""
        if selector is not None:
            self.evaluate(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'start'}})")
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3, 4):
        print("usage: python -m tests._browser PAGE.html OUT.png [SELECTOR [HEIGHT]]", file=sys.stderr)
        return 2
    page_path, out = Path(argv[0]).resolve(), Path(argv[1])
    height = int(argv[3]) if len(argv) == 4 else 640
    with tempfile.TemporaryDirectory() as profile, Browser(Path(profile), width=1000, height=height) as browser:
        page = browser.open(page_path.as_uri())
        page.screenshot(out, selector=argv[2] if len(argv) >= 3 else None)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
