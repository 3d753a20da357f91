"""The demo report in a real browser: headless Chromium, network off, charts drawn, no errors.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: commands
on fd 3, events on fd 4, each JSON message ended by a NUL byte), so nothing listens on a port
and no client library is needed. The network is cut twice: every host name resolves to nothing
(``--host-resolver-rules``) and the page's network is emulated offline; a page that tried to
fetch anything logs a network error, which fails the test.

Without Chromium (Debian package ``chromium``) the tests skip, except under ``CI`` where they
fail: ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from auditkit import report

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 30.0


class Browser:
    """A headless Chromium and a DevTools protocol session over its pipe."""

    def __init__(self, executable: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._events, events_write = os.pipe()

        def onto_fd_3_and_4() -> None:  # in the child, before exec
            commands, events = os.dup(commands_read), os.dup(events_write)
            os.dup2(commands, 3)
            os.dup2(events, 4)

        args = [
            executable, "--headless", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe",
            f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9", "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root (CI containers)
        self.process = subprocess.Popen(
            args, preexec_fn=onto_fd_3_and_4, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(events_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._events], [], [], remaining)
            if ready:
                chunk = os.read(self._events, 1 << 16)
                if not chunk:
                    raise EOFError("Chromium closed the pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and return its result; events received meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            event = self._receive(deadline)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return

    def open(self, url: str) -> Page:
        """Load ``url`` in a new offline tab, wait for its load event."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.call(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            session=session,
        )
        first_event = len(self.events)
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired", session)
        return Page(self, session, first_event)

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.process.wait(10)
        except (OSError, TimeoutError, EOFError, subprocess.TimeoutExpired):
            self.process.kill()
        finally:
            os.close(self._commands)
            os.close(self._events)


class Page:
    """A loaded tab: evaluate JavaScript in it, list the errors it reported."""

    def __init__(self, browser: Browser, session: str, first_event: int) -> None:
        self.browser, self.session, self.first_event = browser, session, first_event

    def evaluate(self, expression: str) -> Any:
        result = self.browser.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, self.session
        )
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and failed loads (network included)."""
        found = []
        for event in self.browser.events[self.first_event :]:
            if event.get("sessionId") != self.session:
                continue
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value")) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                found.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        return found


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = next(filter(None, map(shutil.which, BROWSERS)), None)
    if executable is None:
        message = "headless Chromium not found (Debian: apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; under CI it is required (.ci/run installs it)")
        pytest.skip(message)
    started = Browser(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield started
    started.close()


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Path:
    """The demo report (``auditkit demo``: every report notebook over sample_logs/), once."""
    samples = report.notebook_dir().parent / "sample_logs"
    if not any(samples.rglob("*.log")):
        pytest.skip("sample_logs/ is empty (make samples)")
    return report.build_report([str(samples)], tmp_path_factory.mktemp("site"))


def test_index_opens_offline_without_errors(browser, demo_site):
    page = browser.open(demo_site.as_uri())
    assert page.errors() == []
    links = page.evaluate("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
    for name in report.DEFAULT_NOTEBOOKS:
        assert f"{name}.html" in links
    assert "manifest.json" in links


@pytest.mark.parametrize("name", report.DEFAULT_NOTEBOOKS)
def test_pages_draw_their_charts_offline(browser, demo_site, name):
    page = browser.open((demo_site.parent / f"{name}.html").as_uri())
    assert page.errors() == []
    drawn = page.evaluate(
        "[...document.querySelectorAll('svg, canvas')]"
        ".filter(e => e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0)"
        ".length"
    )
    assert drawn >= 1, f"{name}.html: no chart drawn"
    assert page.evaluate("document.querySelectorAll('table.auditkit').length") >= 1


def test_the_check_itself_sees_errors(browser, tmp_path):
    """A page that fetches from a CDN and logs an error is caught (the test can fail)."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><script>console.error("boom")</script>'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script></body></html>'
    )
    errors = browser.open(bad.as_uri()).errors()
    assert any("boom" in e for e in errors)
    assert any("cdn.jsdelivr.net" in e for e in errors)
