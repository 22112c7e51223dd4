"""Requests go only to allowed hosts (docs/safety.md).

127.0.0.1 is allowed and 127.0.0.2 (a second loopback host, a CountingServer) is not: every
route the issue found to the forbidden host is driven for real, and the forbidden server must
receive 0 requests while each refusal is reported with its host and step. The fast tests check
the rule (`Allowlist`), the guard on real Locust sessions (in a subprocess: locust patches the
process with gevent), and the verdict rule, so the quick suite fails if any of them breaks.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shop_loadtest.errors import TargetNotAllowed
from shop_loadtest.judge.verdict import decide, refusal_reasons
from shop_loadtest.safety.hosts import (
    Allowlist,
    HostNotAllowed,
    check_target_allowed,
    guarded_urlopen,
    origin_of,
)
from tests.conftest import cli
from tests.servers import CountingServer, RouteServer
from tests.test_arrivals import in_engine

ALLOWED = "http://127.0.0.1:8800"


@pytest.fixture
def forbidden() -> Iterator[CountingServer]:
    with CountingServer(host="127.0.0.2") as server:
        yield server


@pytest.fixture
def shop() -> Iterator[RouteServer]:
    with RouteServer() as server:
        yield server


# --- the rule ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8800/api?q=1", True),
    ("HTTP://127.0.0.1:8800/x", True),
    ("http://127.0.0.1:8800", True),
    ("http://user:pw@127.0.0.1:8800/x", True),  # userinfo is not the host
    ("http://127.0.0.1@127.0.0.2:8800/", False),  # ... and cannot hide another one
    ("http://127.0.0.1:8800@127.0.0.2:8800/", False),
    ("http://127.0.0.2:8800/", False),
    ("http://127.0.0.1:8801/", False),
    ("http://127.0.0.1/", False),  # port 80
    ("https://127.0.0.1:8800/", False),
    ("http://127.1:8800/", False),  # other spellings of an allowed host are other hosts
    ("http://0x7f.0.0.1:8800/", False),
    ("http://2130706433:8800/", False),
    ("http://127.0.0.1.:8800/", False),
    ("http://[::1]:8800/", False),
    ("//127.0.0.1:8800/x", False),  # no scheme: not a URL the guard lets through
    ("/x", False),
    ("ftp://127.0.0.1:8800/", False),
    ("http://127.0.0.1:notaport/", False),
])
def test_the_allowlist_compares_origins_exactly_as_spelled(url, allowed):
    assert Allowlist.of([ALLOWED]).allows(url) is allowed


def test_default_ports_and_case_are_the_same_origin():
    allow = Allowlist.of(["http://Shop.Example:80", "https://shop.example"])
    assert allow.allows("http://shop.example/x") and allow.allows("https://SHOP.example:443/")
    assert origin_of("http://Shop.Example/x") == ("http", "shop.example", 80)


def test_an_empty_allowlist_allows_nothing():
    assert not Allowlist.of([None, ""]).allows(ALLOWED)


def test_a_refusal_names_the_origin_only_never_the_path_or_userinfo():
    with pytest.raises(HostNotAllowed) as caught:
        Allowlist.of([ALLOWED]).check("http://me:S3CRET@127.0.0.2:9/p?token=S3CRET", "step 2")
    assert str(caught.value) == "http://127.0.0.2:9 is not an allowed host (step 2)"
    assert isinstance(caught.value, ConnectionRefusedError)


@pytest.mark.parametrize("host", [
    "http://127.0.0.1:8801", "http://127.1:8800", "http://0x7f000001:8800",
    "http://127.0.0.1.:8800", "http://127.0.0.1@127.0.0.2:8800", "https://127.0.0.1:8800",
    "http://localhost:8800",
])
def test_host_spelling_tricks_are_refused_before_the_run(host):
    with pytest.raises(TargetNotAllowed, match="refusing to send load"):
        check_target_allowed(host, Allowlist.of([ALLOWED]))


def test_the_cli_side_request_refuses_a_redirect_to_a_forbidden_host(shop, forbidden):
    allow = Allowlist.of([shop.url])
    with pytest.raises(HostNotAllowed, match="127.0.0.2.*redirect of the health check"):
        guarded_urlopen(f"{shop.url}/to/302?url={forbidden.url}/x", allow=allow,
                        where="health check", timeout=5)
    with guarded_urlopen(f"{shop.url}/to/302?url={shop.url}/fine", allow=allow,
                         where="health check", timeout=5) as answer:
        assert answer.status == 200
    assert forbidden.count == 0 and shop.per_path["/fine"] == 1


# --- the guard on real sessions --------------------------------------------------------------
SESSIONS = """
    import json
    from locust.clients import HttpSession
    from locust.contrib.fasthttp import FastHttpSession, LocustUserAgent
    from locust.event import EventHook
    from shop_loadtest.runtime.guard import HostGuard, guard_session
    from shop_loadtest.safety.hosts import Allowlist

    SHOP, OTHER, BAD = ARGS
    refused, recorded = [], []
    guard = HostGuard(Allowlist.of([SHOP, OTHER]), on_refused=lambda e: refused.append(str(e)))
    events = EventHook()
    events.add_listener(lambda **kw: recorded.append(
        (kw["name"], type(kw["exception"]).__name__ if kw["exception"] else None)))

    fast = FastHttpSession(SHOP, request_event=events, user=None)
    agent = guard_session(fast, guard, "step 1 of journey j")
    plain = HttpSession(SHOP, request_event=events, user=None)
    guard_session(plain, guard, "step 2 of journey j")
    for s in (fast, plain):
        s.get(BAD + "/abs", name="abs")
        s.get("/to/302?url=" + BAD + "/r302", name="r302")
        s.post("/to/307?url=" + BAD + "/r307", json={"a": 1}, name="r307")
        s.get("/to/302?url=" + BAD + "/manual", name="manual", allow_redirects=False)
        s.get("/to/302?url=" + OTHER + "/fine", name="fine")
        try:  # geventhttpclient refuses a protocol-relative target itself; requests sends
            s.get("//127.0.0.2/dslash", name="dslash")  # it to SHOP as a path
        except ValueError:
            recorded.append(("dslash", "ValueError"))
        s.get("/hh", headers={"Host": BAD.split("//")[1]}, name="host-header")
    # a user who swaps the agent of a guarded session gets a guarded agent
    fast.client = LocustUserAgent()
    fast.get(BAD + "/swapped", name="swapped")
    # a proxy is a host too
    bad_host, bad_port = BAD.split("//")[1].split(":")
    proxied = FastHttpSession(SHOP, request_event=events, user=None, proxy_host=bad_host,
                              proxy_port=int(bad_port))
    guard_session(proxied, guard, "step 3 of journey j")
    proxied.get("/via-proxy", name="fast proxy")
    plain.proxies = {"http": BAD}
    plain.get("/via-proxy", name="requests proxy")
    print(json.dumps({"refused": refused, "recorded": recorded}))
"""


def test_the_guard_refuses_every_hop_to_a_forbidden_host_on_real_sessions(shop, forbidden):
    with RouteServer() as other:
        got = in_engine(SESSIONS.replace("ARGS", repr((shop.url, other.url, forbidden.url))))
        assert other.per_path == {"/fine": 2}
    assert forbidden.count == 0
    bad = forbidden.url
    sent = ["manual", "fine", "dslash", "host-header"]  # nothing to refuse: no exception
    assert got["recorded"] == (
        [["abs", "HostNotAllowed"], ["r302", "HostNotAllowed"], ["r307", "HostNotAllowed"],
         ["manual", None], ["fine", None], ["dslash", "ValueError"], ["host-header", None]]
        + [["abs", "RequestsHostNotAllowed"], ["r302", "RequestsHostNotAllowed"],
           ["r307", "RequestsHostNotAllowed"]]
        + [[n, None] for n in sent]
        + [["swapped", "HostNotAllowed"], ["fast proxy", "HostNotAllowed"],
           ["requests proxy", "RequestsHostNotAllowed"]])
    assert got["refused"] == (
        [f"{bad} is not an allowed host (step 1 of journey j)"] * 3
        + [f"{bad} is not an allowed host (step 2 of journey j)"] * 3
        + [f"{bad} is not an allowed host (step 1 of journey j)"]
        + [f"{bad} is not an allowed host (step 3 of journey j)"]
        + [f"{bad} is not an allowed host (step 2 of journey j)"])


# The runtime's journey users send most requests through the lean lane (runtime/lane.py), not
# through the session's guarded `_urlopen`: their own requests, fixed or built per request, and
# the hops they follow must be refused there too, nothing sent.
JOURNEY_USERS = """
    import json
    from locust.env import Environment
    from shop_loadtest.journeys import Journey, RequestStep
    from shop_loadtest.runtime.users import JourneyUser

    SHOP, BAD = ARGS
    recorded = []

    class Walker(JourneyUser):
        host = SHOP
        journey = Journey(name="j", weight=1.0, steps=[
            RequestStep("GET", "/fine", name="fine"),
            RequestStep("GET", BAD + "/fixed", name="fixed", on_fail="continue"),
            RequestStep("GET", "{{ '" + BAD + "' }}/tmpl", name="tmpl", on_fail="continue"),
            RequestStep("POST", "{{ '" + BAD + "' }}/json", name="json", json={"a": 1},
                        on_fail="continue"),
            RequestStep("GET", "/to/302?url=" + BAD + "/hop", name="hop", on_fail="continue"),
        ])

    env = Environment(user_classes=[Walker], host=SHOP)
    env.events.request.add_listener(lambda **kw: recorded.append(
        (kw["name"], type(kw["exception"]).__name__ if kw["exception"] else None)))
    user = Walker(env)
    user.on_start()
    for _ in range(2):  # the second run reuses what the first built
        user.run_journey(Walker.journey)
    print(json.dumps(recorded))
"""


def test_journey_users_refuse_a_forbidden_host_on_every_path_of_the_lane(shop, forbidden):
    got = in_engine(JOURNEY_USERS.replace("ARGS", repr((shop.url, forbidden.url))))
    assert forbidden.count == 0
    assert shop.per_path.get("/fine") == 2
    one_run = [["fine", None], ["fixed", "HostNotAllowed"], ["tmpl", "HostNotAllowed"],
               ["json", "HostNotAllowed"], ["hop", None], ["hop (redirect 1)", "HostNotAllowed"]]
    assert got == one_run * 2


# --- the verdict rule -------------------------------------------------------------------------
def _summary(refused: dict) -> dict:
    """A summary with the evidence a clean 4 s run records (judge/evidence.py): the load
    process recorded its stop after the whole shape, the expected worker took part and the
    planned load was delivered, so `refused` is the only thing that can change the verdict."""
    return {"requests": 10, "exit_reason": "completed", "workers_lost": [],
            "generator": {"problems": [], "healthy": True}, "duration_s": 4.0, "budgets": [],
            "aborted": None, "refused": refused,
            "load_process": {"exit_code": 0, "signal": None, "stop_event": True,
                             "played_s": 4.0, "planned_s": 4.0},
            "workers": {"expected": 1, "joined": 1},
            "delivery": {"model": "users", "unit": "users", "min_delivered": 0.95,
                         "planned": 40.0, "achieved": 40.0, "ratio": 1.0, "judged": True,
                         "held": True, "stages": [
                             {"name": "steady", "kind": "hold", "planned": 40.0,
                              "achieved": 40.0, "ratio": 1.0, "judged": True, "held": True}]}}


def test_any_refused_request_fails_the_run_with_the_host_and_the_step():
    refused = {"count": 3, "passed": False, "refusals": [
        {"host": "http://127.0.0.2:18912", "where": "step 2 of journey buy", "count": 3}]}
    verdict, reasons = decide(_summary(refused), tolerate_worker_loss=False)
    assert verdict == "fail"
    assert reasons[0] == ("3 requests refused: http://127.0.0.2:18912 is not an allowed host "
                          "(step 2 of journey buy); add it to target.allowed_hosts if it is "
                          "yours")


def test_no_refusal_passes_and_many_are_summed_up():
    ok = {"count": 0, "passed": True, "refusals": []}
    assert decide(_summary(ok), tolerate_worker_loss=False)[0] == "pass"
    many = {"count": 8, "passed": False, "refusals": [
        {"host": f"http://10.0.0.{i}:80", "where": "", "count": 1} for i in range(8)]}
    lines = refusal_reasons(many)
    assert len(lines) == 6 and lines[0].startswith("1 request refused: http://10.0.0.0:80 ")
    assert lines[-1].startswith("3 more requests refused at 3 other hosts")


# --- every route, for real --------------------------------------------------------------------
CLASSES = """
    from locust import HttpUser, constant, task
    from locust.contrib.fasthttp import FastHttpSession, FastHttpUser, LocustUserAgent

    BAD = {bad!r}


    class Direct(FastHttpUser):
        wait_time = constant(0.2)

        @task
        def go(self):
            self.client.get(BAD + "/class-direct", name="class-direct")


    class OwnSession(FastHttpUser):
        wait_time = constant(0.2)

        @task
        def go(self):
            self.client = FastHttpSession(BAD, self.environment.events.request, self)
            self.client.get("/class-own-session", name="class-own-session")
            self.client.client = LocustUserAgent()
            self.client.get(BAD + "/class-own-agent", name="class-own-agent")


    class Homed(FastHttpUser):
        wait_time = constant(0.2)

        def on_start(self):
            self.client.base_url = BAD

        @task
        def go(self):
            self.client.get("/class-host", name="class-host")


    class Requests(HttpUser):
        wait_time = constant(0.2)

        @task
        def go(self):
            self.client.get(BAD + "/class-requests", name="class-requests")
"""


def _routes_scenario(tmp_path: Path, shop: str, other: str, bad: str) -> tuple[Path, dict]:
    port = bad.rsplit(":", 1)[1]
    (tmp_path / "users.py").write_text(textwrap.dedent(CLASSES.format(bad=bad)))
    pause = {"think": "0.2s"}
    journeys = {
        "tmpl-abs": [{"request": f"GET {{{{ '{bad}/tmpl-abs' }}}}"}],
        "tmpl-caps": [{"request": f"GET {{{{ 'HTTP://127.0.0.2:{port}/tmpl-caps' }}}}"}],
        "variable": [{"request": "GET {{ forbidden }}"}],
        "userinfo": [{"request": f"GET {{{{ 'http://127.0.0.1@127.0.0.2:{port}/userinfo' }}}}"}],
        "captured": [{"request": f"GET /json?url={bad}/captured", "capture": {"u": "json:$.url"}},
                     {"request": "GET {{ u }}", "name": "GET captured"}],
        "r302": [{"request": f"GET /to/302?url={bad}/r302", "name": "r302"}],
        "r307": [{"request": f"POST /to/307?url={bad}/r307", "name": "r307",
                  "json": {"a": 1}}],
        "r-checked": [{"request": f"GET /to/302?url={bad}/r-checked", "name": "r-checked",
                       "expect": {"status": 200}}],
        "r-allowed": [{"request": f"GET /to/302?url={other}/fine", "name": "r-allowed"}],
        # a literal `//host` path fails validate; rendered, it is a URL without its scheme
        # (as a browser reads it), refused by the guard, not a task error no request records
        "dslash": [{"request": f"GET {{{{ '//127.0.0.2:{port}/dslash' }}}}", "name": "dslash"}],
        # a URL the HTTP client will not build: a failed request of its own, not a task error
        "bad-url": [{"request": "GET {{ 'http://[::1/x' }}", "name": "bad-url"}],
        "host-header": [{"request": "GET /hh", "name": "host-header",
                         "headers": {"Host": f"127.0.0.2:{port}"}}],
    }
    data = {
        "name": "routes",
        "target": {"host": shop, "allowed_hosts": [other],
                   "health_path": f"/to/302?url={bad}/health"},
        # 20 users for 17 journeys: Locust gives each journey at least one
        "load": {"model": "users", "spawn_rate": 100,
                 "stages": [{"duration": 0, "target": 20}, {"duration": 4, "target": 20}]},
        "variables": {"forbidden": f"{bad}/variable"},
        "journeys": [{"name": n, "steps": [pause, *steps]} for n, steps in journeys.items()]
        + [{"name": f"class-{c.lower()}", "class": f"users.py:{c}"}
           for c in ("Direct", "OwnSession", "Homed", "Requests")],
        "monitor": {"interval": "0.5s",
                    "endpoints": [f"{bad}/metrics-abs", f"/to/302?url={bad}/metrics-redirect"]},
    }
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, data


@pytest.mark.e2e
def test_no_route_reaches_a_forbidden_host_and_each_refusal_is_reported(tmp_path, shop,
                                                                         forbidden):
    with RouteServer() as other:
        path, _ = _routes_scenario(tmp_path, shop.url, other.url, forbidden.url)
        out = tmp_path / "run"
        result = cli("run", str(path), "--out", str(out), timeout=150)
        other_fine = other.per_path.get("/fine", 0)
    assert forbidden.per_path == {} and forbidden.count == 0
    assert result.returncode == 1, result.stdout + result.stderr
    assert other_fine > 0  # a redirect to another allowed host is followed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    bad = forbidden.url
    wheres = {r["where"] for r in summary["refused"]["refusals"]}
    expected = {f"step 2 of journey {n}" for n in (
        "tmpl-abs", "tmpl-caps", "variable", "userinfo", "r302", "r307", "r-checked",
        "dslash")}
    expected |= {"step 3 of journey captured", "redirect of the health check (target.health_path)",
                 f"monitor scrape of {bad}/metrics-abs",
                 f"redirect of the monitor scrape of {shop.url}/to/302?url={bad}/metrics-redirect"}
    expected |= {f"journey class-{c.lower()}, class {c}"
                 for c in ("Direct", "OwnSession", "Homed", "Requests")}
    assert wheres == expected
    assert {r["host"] for r in summary["refused"]["refusals"]} == {bad}
    assert summary["refused"]["count"] == sum(r["count"] for r in summary["refused"]["refusals"])
    # failed requests of their own kind, on the steps that made them
    kinds = {e["endpoint"] for e in summary["errors"] if e["kind"] == "refused: host not allowed"}
    # (a refused redirect hop is the hop's request, recorded as `NAME (redirect 1)`)
    assert {"r302 (redirect 1)", "r307 (redirect 1)", "r-checked (redirect 1)", "GET captured",
            "class-direct", "class-own-agent", "class-host", "class-requests", "dslash"} <= kinds
    assert not {"host-header", "r-allowed"} & kinds
    assert {"endpoint": "bad-url", "kind": "InvalidRequest",
            "message": "invalid request URL: Invalid IPv6 URL"}.items() <= next(
        e for e in summary["errors"] if e["endpoint"] == "bad-url").items()
    # the reasons and the terminal say it as docs/safety.md does
    top = summary["refused"]["refusals"][0]
    assert summary["reasons"][0] == (
        f"{top['count']} requests refused: {bad} is not an allowed host ({top['where']}); "
        "add it to target.allowed_hosts if it is yours")
    assert re.fullmatch(rf"\d+ more requests refused at {len(expected) - 5} other hosts or "
                        r"steps \(see summary.json `refused`\)", summary["reasons"][5])
    assert "requests only to allowed hosts (always on)" in result.stdout
    suite = ET.parse(out / "junit.xml").getroot()
    [case] = [c for c in suite.iter("testcase") if c.get("classname") == "always-on"]
    failure = case.find("failure")
    assert case.get("name") == "requests only to allowed hosts" and failure is not None
    assert "(redirect of the health check (target.health_path))" in failure.text
    assert "| requests only to allowed hosts (always on) |" in (out / "summary.md").read_text()
    assert "requests only to allowed hosts</td><td>always on" in (
        out / "report.html").read_text()


@pytest.mark.e2e
@pytest.mark.parametrize("path", ["http://127.0.0.2:5/x", "//127.0.0.2:5/x"])
def test_literal_other_hosts_are_refused_at_validate_with_file_and_line(tmp_path, path):
    scenario = tmp_path / "s.yaml"
    scenario.write_text(textwrap.dedent(f"""\
        name: t
        target: {{host: "http://127.0.0.1:8800"}}
        load: {{model: users, stages: [{{duration: 1, target: 1}}]}}
        journeys:
          - name: j
            steps:
              - request: GET {path}
        """))
    result = cli("validate", str(scenario))
    assert result.returncode == 2
    assert f"{scenario}:7:18: journeys.0.steps.0.request: the path must start with" in (
        result.stderr + result.stdout)


@pytest.mark.e2e
def test_a_host_trick_on_the_command_line_is_refused_before_any_load(tmp_path, forbidden):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "t", "target": {"host": "http://127.0.0.1:8800"},
        "load": {"model": "users", "stages": [{"duration": 1, "target": 1}]},
        "journeys": [{"name": "j", "steps": [{"request": "GET /"}]}]}))
    port = forbidden.url.rsplit(":", 1)[1]
    for host in (forbidden.url, f"http://127.0.0.1:8800@127.0.0.2:{port}",
                 f"HTTP://127.0.0.2:{port}"):
        result = cli("run", str(path), "--host", host, "--out", str(tmp_path / "run"))
        assert result.returncode == 2, result.stderr
        assert "refusing to send load" in result.stderr
    assert forbidden.count == 0
