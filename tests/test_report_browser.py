"""report.html and compare.html in a real browser: they render, raise no error, fetch nothing,
and a hostile endpoint name stays text.

Headless Chromium is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
JSON messages separated by NUL on file descriptors 3 and 4), so no websocket library is needed.
Replies are read in the calling thread with `select`, not by a reader thread: another test
module imports locust, which gevent-patches `threading`, and a "thread" blocked in `os.read`
then starves the test's own waits (CI saw `Target.createTarget` time out).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shop_loadtest.compare import write_comparison
from shop_loadtest.report import build_reports
from tests.runfolder import RunFolder

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs /usr/bin/chromium (Debian package `chromium`; .ci/run installs it)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--mute-audio", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--remote-debugging-pipe"]
HOSTILE = "<script>alert(1)</script>"
HOSTILE_MESSAGE = '<img src=x onerror="alert(2)">'
PRODUCTS = "GET /api/products"
TIMEOUT_S = 30.0
# The first start after apt installed Chromium builds its font cache: on a busy CI runner that
# took longer than TIMEOUT_S (`Target.createTarget` timed out), so the first contact waits longer.
STARTUP_TIMEOUT_S = 180.0


class Browser:
    """One headless Chromium; `open(url)` loads a page and returns what happened on it."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds_3_and_4() -> None:
            """In the child: Chromium reads commands on fd 3 and writes answers on fd 4.
            Move both ends out of the way first: a pipe may itself sit on 3 or 4."""
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_chrome_r, from_chrome_w)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)
                os.close(fd)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds_3_and_4, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._inbox: deque[dict[str, Any]] = deque()
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.send("Browser.getVersion", timeout=STARTUP_TIMEOUT_S)

    def _receive(self, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next message from Chromium, waiting at most `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while not self._inbox:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_chrome], [], [], max(left, 0.0))
            assert ready, f"no message from chromium in {timeout:.0f} s"
            chunk = os.read(self._from_chrome, 1 << 16)
            assert chunk, "chromium exited"
            *messages, self._buffer = (self._buffer + chunk).split(b"\0")
            self._inbox.extend(json.loads(message) for message in messages)
        return self._inbox.popleft()

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive(timeout)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, *methods: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") in methods:
                return event
        while True:
            event = self._receive()
            self.events.append(event)
            if event.get("method") in methods:
                return event

    def evaluate(self, session: str, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def open(self, url: str, screenshot: Path | None = None) -> dict[str, Any]:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable", {}, session)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1400, "height": 2400, "deviceScaleFactor": 1, "mobile": False},
                  session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session)
        # An alert() blocks the page until answered: fail at once rather than time out.
        loaded = self.wait_for("Page.loadEventFired", "Page.javascriptDialogOpening")
        assert loaded["method"] == "Page.loadEventFired", f"script ran in the page: {loaded}"
        # Plotly draws on load; give it until every chart holds its SVG.
        charts = self.evaluate(session, """new Promise(done => {
            const count = () => [...document.querySelectorAll('.chart')]
                .map(d => d.querySelectorAll('svg.main-svg').length);
            const started = Date.now();
            (function poll() {
              const c = count();
              if ((c.length && c.every(n => n > 0)) || Date.now() - started > 20000) done(c);
              else setTimeout(poll, 100);
            })();
        })""")
        page = self.evaluate(session, f"""({{
            charts: {json.dumps(charts)},
            chart_ids: [...document.querySelectorAll('.chart')].map(d => d.id),
            traces: document.querySelectorAll('.chart .trace').length,
            title: document.title,
            hostile_as_text: [...document.querySelectorAll('code, td')]
                .some(e => e.textContent === {json.dumps(HOSTILE)}),
            sample_bodies: [...document.querySelectorAll('table.errors pre.body')]
                .map(e => e.textContent),
            samples_open: document.querySelectorAll('table.errors details[open]').length,
            sample_height: Math.max(0, ...[...document.querySelectorAll('table.errors pre.body')]
                .map(e => e.getBoundingClientRect().height)),
            scripts: document.scripts.length,
            images: document.images.length,
            external: [...document.querySelectorAll('[src], [href]')]
                .map(e => e.getAttribute('src') || e.getAttribute('href'))
                .filter(u => /^(https?:)?\\/\\//.test(u)),
        }})""")
        if screenshot is not None:
            shot = self.send("Page.captureScreenshot", {"format": "png"}, session)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
        page["events"] = list(self.events)
        self.send("Target.closeTarget", {"targetId": target})
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def hostile_run(path: Path, *, slow: float = 1.0, seed: int = 1) -> Path:
    """An open-model run with a hostile endpoint name, hostile error messages, stages, budgets,
    arrivals and target metrics: every chart of the report has something to draw."""
    rng = np.random.default_rng(seed)
    run = RunFolder(path, scenario="hostile", model="arrival_rate",
                    stages=[{"name": "ramp", "start_s": 0.0, "end_s": 4.0, "from": 0, "to": 20},
                            {"name": "peak", "start_s": 4.0, "end_s": 12.0, "from": 20,
                             "to": 20}],
                    budgets=["p95 < 500ms", f"p95 of {HOSTILE} < 10ms for 3s",
                             "error_rate < 1%"],
                    abort=["error_rate > 50% for 5s"],
                    scenario_yaml=f"name: hostile\n# </pre>{HOSTILE}\n")
    for t in range(1, 13):
        lat = {PRODUCTS: list(rng.lognormal(np.log(20 * slow), 0.3, 20)),
               HOSTILE: list(rng.lognormal(np.log(8 * slow), 0.3, 10))}
        due = {name: [v + 2.0 for v in values] for name, values in lat.items()}
        errors = {HOSTILE: [("HTTP 500", HOSTILE_MESSAGE, 1)]} if t in (5, 6) else None
        samples = [{"endpoint": HOSTILE, "kind": "HTTP 500", "message": HOSTILE_MESSAGE,
                    "status": 500, "method": "GET", "path": "/api/<b>x</b>",
                    "body": f"<html>{HOSTILE}{HOSTILE_MESSAGE}</html>\\n"}] if t == 5 else ()
        run.interval(float(t), lat, errors=errors, due=due, target=min(5.0 * t, 20.0),
                     error_samples=samples,
                     users=10, arrivals={"due": 20, "started": 20, "dropped": 0, "late": 0,
                                         "late_max_ms": 0.0})
        run.monitor(float(t), [("shop_db_bytes", {"db": HOSTILE}, 1000.0 * t)])
    run.event(4.0, "stage", name="peak")
    return run.finish(t=12.0)


def assert_clean(page: dict[str, Any]) -> None:
    """No script error, no console error, no dialog, no request beyond the file itself."""
    events = page["events"]
    exceptions = [e for e in events if e["method"] == "Runtime.exceptionThrown"]
    console_errors = [e for e in events if e["method"] == "Runtime.consoleAPICalled"
                      and e["params"]["type"] in ("error", "assert")]
    log_errors = [e for e in events if e["method"] == "Log.entryAdded"
                  and e["params"]["entry"]["level"] == "error"]
    dialogs = [e for e in events if e["method"] == "Page.javascriptDialogOpening"]
    requests = [e["params"]["request"]["url"] for e in events
                if e["method"] == "Network.requestWillBeSent"]
    assert not exceptions and not console_errors and not log_errors, (
        exceptions + console_errors + log_errors)
    assert not dialogs, dialogs
    assert [u for u in requests if not u.startswith("file://")] == []
    assert len(requests) == 1, requests  # the page itself: no image, font, script or XHR
    assert page["external"] == [] and page["images"] == 0
    assert page["charts"] and all(n > 0 for n in page["charts"]), page["charts"]
    assert page["traces"] > 0
    assert page["hostile_as_text"]


def test_report_html_renders_offline_without_errors(browser, tmp_path):
    run = hostile_run(tmp_path / "run")
    build_reports(run)
    page = browser.open((run / "report.html").as_uri(), screenshot=tmp_path / "report.png")
    assert_clean(page)
    assert {"chart-throughput", "chart-users", "chart-latency", "chart-errors",
            "chart-distribution", "chart-generator", "chart-arrivals",
            "chart-monitor-0"} <= set(page["chart_ids"])
    assert page["scripts"] == 3  # config, plotly.js, the charts: nothing injected
    assert page["title"].startswith("hostile: FAIL")
    # why requests failed: the shop's answer, shown as text, drawn (open, not collapsed)
    body = f"<html>{HOSTILE}{HOSTILE_MESSAGE}</html>\\n"
    assert page["sample_bodies"] == [body]
    assert page["samples_open"] == 1 and page["sample_height"] > 10
    assert (tmp_path / "report.png").stat().st_size > 50_000
    keep = os.environ.get("SHOP_LOADTEST_SCREENSHOT")  # to look at it: set a path
    if keep:
        shutil.copy(tmp_path / "report.png", keep)


def test_compare_html_renders_offline_without_errors(browser, tmp_path):
    base, new = hostile_run(tmp_path / "base"), hostile_run(tmp_path / "new", slow=3.0, seed=2)
    write_comparison(base, new)
    page = browser.open((new / "compare.html").as_uri())
    assert_clean(page)
    assert len(page["charts"]) == 1 and page["scripts"] == 3  # both runs' distributions
    assert page["title"] == "REGRESSION: new vs base - shop-loadtest compare"
