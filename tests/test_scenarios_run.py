"""The scenario language end to end: real Locust runs (the CLI, as a user runs it), shortened
with --speedup, against the real demo shop or a small echo server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shop_loadtest.scenario import load_scenario
from tests.conftest import ROOT, cli
from tests.servers import Handler, LoopbackServer

pytestmark = pytest.mark.e2e

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
RUN_SECONDS = 5.0  # each shipped scenario's whole shape, compressed to about this
# Scenarios that are meant to fail requests (a reproduced outage) only have to run.
MAY_FAIL = {"postmortem-2024-08-15.yaml"}
# A week replayed in 5 s changes its users faster than Locust's once-a-second shape tick can
# follow: the delivery check (issue 11) rightly calls such a rehearsal inconclusive.
CANNOT_FOLLOW = {"black-friday-week.yaml"}


def _summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
def test_every_shipped_scenario_runs_on_the_demo_shop(path, demo_shop, tmp_path):
    duration = load_scenario(path).profile(path.parent).duration
    speedup = max(duration / RUN_SECONDS, 1.0)
    out = tmp_path / "run"
    # A reproduced outage needs its own demo shop, started by the runner with the storage cap
    # the scenario asks for; the others share the session's shop.
    target = [] if path.name in MAY_FAIL else ["--host", demo_shop, "--allow-host", demo_shop]
    result = cli("run", str(path.relative_to(ROOT)), "--speedup", f"{speedup:g}", *target,
                 "--out", str(out))
    assert (out / "summary.json").exists(), result.stderr[-2000:]
    summary = _summary(out)
    assert summary["requests"] > 0
    if path.name in MAY_FAIL:
        assert result.returncode == 1, result.stderr[-2000:]
        # its monitor kept the shop's latency histogram: the server's p95 beside the client's
        assert "server p95</th>" in (out / "report.html").read_text()
        return
    errors = summary["errors"]
    assert summary["failures"] == 0, errors
    if path.name in CANNOT_FOLLOW:
        assert result.returncode == 3, result.stdout[-2000:]
        assert any("of its planned users" in r for r in summary["reasons"]), summary["reasons"]
    else:
        assert result.returncode == 0, result.stdout[-2000:]
    names = {e["name"] for e in summary["endpoints"]}
    if path.stem == "html-storefront":
        assert {"POST /cart/add", "POST /checkout", "GET /orders/{id}", "POST /login",
                "POST /logout"} <= names
    if path.stem == "black-friday-week":  # the hand-written VipBuyer ran beside the journeys
        assert "GET /api/orders/{id}" in names and "DELETE /api/cart/items/{id}" in names


# --- A server that answers what it was sent ---------------------------------------------------

class EchoServer(LoopbackServer):
    """Records every request (method, path, query, headers, body) and answers JSON; /login
    sets a session cookie, /redirect answers 302 to /target."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Recording(Handler):
            def _answer(self) -> None:
                body = self.body().decode()
                parts = urlsplit(self.path)
                record = {"method": self.command, "path": parts.path,
                          "query": parse_qs(parts.query), "body": body,
                          "headers": {k.lower(): v for k, v in self.headers.items()}}
                with server._lock:
                    server.requests.append(record)
                if parts.path == "/redirect":
                    self.reply(302, headers={"Location": "/target"})
                    return
                payload = json.dumps({"path": parts.path, "n": len(server.requests),
                                      "items": [{"id": 1}, {"id": 2}],
                                      "state": "ok"}).encode()
                headers = {"X-Order": "order-77"}
                if parts.path == "/login":
                    headers["Set-Cookie"] = "sid=abc123; Path=/"
                self.reply(200, payload, headers)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        super().__init__(Recording)

    def on(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    with EchoServer() as server:
        yield server


LANGUAGE = """
name: language
target: {host: HOST}
load:
  model: users
  stages: [{duration: 0s, target: 2}, {duration: 3s, target: 2}]
variables: {who: "{{ faker.first_name() }}"}
data:
  coupons: {file: coupons.csv, mode: unique}
faker: {seed: 5}
journeys:
  - name: every-kind
    on_start:
      - request: POST /login
        json: {user: "{{ who }}"}
        capture: {sid: "cookie:sid", order: "header:X-Order"}
    steps:
      - request: GET /search
        query: {q: "café & tea", tags: [a, b], who: "{{ who }}"}
        capture: {ids: {from: "json:$.items[*].id", pick: all}}
      - request: POST /json
        json: {ids: "{{ ids }}", order: "{{ order }}"}
        check: [{json: $.state, equals: ok}]
      - request: PUT /form
        form: {name: "{{ who }}", n: 2}
      - request: PATCH /raw
        body: "raw {{ sid }}"
        headers: {Content-Type: text/plain}
      - request: DELETE /thing/{{ ids[1] }}
      - request: GET /redirect
        name: GET /redirect (not followed)
        follow_redirects: false
        check: [{status: 302}]
      - request: GET /redirect
        name: GET /redirect (followed)
      - request: GET /soft
        check: [{json: $.state, equals: broken, on_fail: continue}]
      - request: GET /after-soft
      - request: GET /hard
        check: [{body_contains: never there}]
      - request: GET /never
      - think: 200ms
    on_stop:
      - request: POST /logout
  - name: coupons
    steps:
      - request: POST /redeem
        form: {code: "{{ coupons.code }}"}
      - think: 100ms
"""


def test_the_language_reaches_the_server_as_written(echo, tmp_path):
    (tmp_path / "coupons.csv").write_text("code\nC1\nC2\nC3\n")
    path = tmp_path / "language.yaml"
    path.write_text(LANGUAGE.replace("HOST", echo.url))
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out))
    assert (out / "summary.json").exists(), result.stderr[-2000:]

    logins = echo.on("/login")
    assert len(logins) == 1 and json.loads(logins[0]["body"])["user"]  # once per user
    assert "cookie" not in logins[0]["headers"]  # the jar was empty before the login
    assert len(echo.on("/logout")) == 1  # on_stop at the end
    search = echo.on("/search")[0]
    assert search["query"]["q"] == ["café & tea"] and search["query"]["tags"] == ["a", "b"]
    assert search["query"]["who"] == [json.loads(logins[0]["body"])["user"]]
    posted = json.loads(echo.on("/json")[0]["body"])
    assert posted == {"ids": [1, 2], "order": "order-77"}  # captures keep their JSON types
    assert echo.on("/json")[0]["headers"]["content-type"] == "application/json"
    put = echo.on("/form")[0]
    assert put["method"] == "PUT" and parse_qs(put["body"])["n"] == ["2"]
    assert put["headers"]["content-type"] == "application/x-www-form-urlencoded"
    patch = echo.on("/raw")[0]
    assert (patch["method"], patch["body"]) == ("PATCH", "raw abc123")
    assert patch["headers"]["content-type"] == "text/plain"
    assert echo.on("/thing/2")[0]["method"] == "DELETE"
    journeys = len(echo.on("/search"))
    redirects, targets = len(echo.on("/redirect")), len(echo.on("/target"))
    assert targets >= 1 and redirects in (2 * targets, 2 * targets + 1)  # one of two followed
    assert len(echo.on("/after-soft")) >= journeys - 1  # on_fail: continue went on
    assert echo.on("/never") == []  # the failed check ended the journey
    # one cookie jar per user, kept across steps and journeys
    later = [r for r in echo.requests if r["path"] not in ("/", "/login", "/redeem")]
    assert later and all("sid=abc123" in r["headers"].get("cookie", "") for r in later)

    codes = sorted(parse_qs(r["body"])["code"][0] for r in echo.on("/redeem"))
    assert codes == ["C1", "C2", "C3"]  # unique rows, each used once, then none reused
    summary = _summary(out)
    by_kind = {(e["endpoint"], e["kind"]): e for e in summary["errors"]}
    exhausted = by_kind[("data coupons", "DataExhausted")]
    # the group's message is normalised (numbers become {n}); its example is the raw one
    assert "data 'coupons' is exhausted: all 3 unique rows are used" in exhausted["example"]
    assert ("GET /soft", "check failed") in by_kind and ("GET /hard", "check failed") in by_kind
    failed = {e["name"] for e in summary["endpoints"] if e["failures"]}
    assert failed == {"GET /soft", "GET /hard", "data coupons"}


def test_secrets_never_reach_the_run_folder(demo_shop, tmp_path, monkeypatch):
    secret = "tok-3f9a8c1e-never-write-me"
    monkeypatch.setenv("SHOP_TOKEN", secret)
    path = tmp_path / "secret.yaml"
    path.write_text(f"""
name: secret
target:
  host: {demo_shop}
  headers: {{Authorization: "Bearer {{{{ env.SHOP_TOKEN }}}}"}}
load: {{model: users, stages: [{{duration: 0s, target: 2}}, {{duration: 2s, target: 2}}]}}
variables: {{token: "{{{{ env.SHOP_TOKEN }}}}"}}
journeys:
  - name: j
    steps:
      - request: GET /api/products
        query: {{token: "{{{{ token }}}}"}}
        check: [{{body_contains: "{{{{ env.SHOP_TOKEN }}}}"}}]
        on_fail: continue
      - export: {{file: leak.csv, values: [token]}}   # written, masked
      - think: 100ms
""")
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out))
    assert (out / "summary.json").exists(), result.stderr[-2000:]
    summary = _summary(out)
    assert summary["failures"] > 0  # the check failed on purpose, quoting the secret
    assert any("***" in e["message"] for e in summary["errors"])
    assert secret not in result.stdout + result.stderr
    leaks = [p.name for p in out.rglob("*") if p.is_file() and secret in p.read_text(
        errors="replace")]
    assert leaks == []
    assert "***" in (out / "exports" / "leak.csv").read_text()
