"""Hand-written `class:` users in the open model (issue 18, item 7): each arrival calls one
method of the class, on a pool user's instance of it; validated at validate time, recorded
like the generated journeys, and its `client` still passes the allowed-hosts guard."""

from __future__ import annotations

import json
import textwrap

import pytest

from shop_loadtest.errors import ScenarioError
from shop_loadtest.generate.locustfile import render_locustfile
from shop_loadtest.scenario import load_scenario
from tests.conftest import cli
from tests.servers import CountingServer

USERS = """
    from locust import HttpUser, task
    from locust.contrib.fasthttp import FastHttpUser

    BAD = {bad!r}


    class Shopper(FastHttpUser):
        def on_start(self):
            self.client.get("/class-start", name="class-start")

        def journey(self):
            self.client.get("/class-call", name="class-call")

        def sneak(self):
            self.client.get(BAD + "/class-sneak", name="class-sneak")

        def explode(self):
            raise KeyError("no such basket")


    class Reader(HttpUser):
        @task
        def read(self):
            self.client.get("/class-requests", name="class-requests")


    class Many(FastHttpUser):
        @task
        def a(self):
            pass

        @task
        def b(self):
            pass
"""


def _scenario(tmp_path, journeys: str, model: str = "arrival_rate", host: str = "null",
              bad: str = "http://127.0.0.1:9") -> str:
    (tmp_path / "users.py").write_text(textwrap.dedent(USERS.format(bad=bad)))
    return (f"name: open-class\ntarget: {{host: {host}}}\n"
            f"load: {{model: {model}, stages: [{{duration: 0s, target: 8}}, "
            "{duration: 3s, target: 8}]}\njourneys:\n" + journeys)


@pytest.mark.parametrize(("journeys", "message"), [
    ("  - {name: m, class: users.py:Many}\n",
     "s.yaml:5:22: journeys.0.class: users.py:Many: in the open model an arrival calls one "
     "method: name it with method: (its tasks are a, b), or define journey(self)"),
    ("  - {name: m, class: users.py:Shopper, method: jurney}\n",
     "s.yaml:5:48: journeys.0.method: users.py:Shopper: has no method 'jurney'"),
    ("  - {name: m, class: users.py:Shopper, method: _private}\n",
     "s.yaml:5:48: journeys.0.method: a method name (letters, digits, _; not private)"),
    ("  - {name: m, steps: [{request: GET /}], method: journey}\n",
     "s.yaml:5:5: journeys.0: method: goes with class: path.py:ClassName"),
])
def test_bad_open_model_classes_are_caught_at_validate_time(tmp_path, journeys, message):
    path = tmp_path / "s.yaml"
    path.write_text(_scenario(tmp_path, journeys))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).replace(str(tmp_path) + "/", "").startswith(message)


def test_an_open_model_class_is_generated_as_a_journey_of_the_pool(tmp_path):
    text = _scenario(tmp_path, "  - {name: browse, steps: [{request: GET /}]}\n"
                               "  - {name: vip, class: users.py:Shopper, method: sneak}\n")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    where = {"source": str(path), "output": str(tmp_path / "s_locustfile.py")}
    source = render_locustfile(load_scenario(path), **where)
    assert "from shop_loadtest.runtime.classes import class_journey" in source
    assert ("VIP_JOURNEY = class_journey(\n    HERE / 'users.py', 'Shopper',\n"
            "    journey='vip',\n    weight=1.0,\n    host=HOST,\n    method='sneak',\n)"
            ) in source
    assert "    journeys = [BROWSE_JOURNEY, VIP_JOURNEY]" in source
    # the closed model runs the one method named as the user's only task
    path.write_text(text.replace("arrival_rate", "users"))
    source = render_locustfile(load_scenario(path), **where)
    assert "    journey='vip',\n    method='sneak',\n)" in source


@pytest.mark.e2e
def test_arrivals_call_class_methods_recorded_and_guarded(tmp_path):
    """Each arrival is one call: the calls the shop saw are the arrivals started; on_start ran
    once per pool user; a raise is a recorded failure; a request to a host not allowed is
    refused before it is sent and fails the run."""
    with CountingServer() as shop, CountingServer() as forbidden:
        journeys = ("  - {name: shopper, weight: 3, class: users.py:Shopper}\n"
                    "  - {name: reader, weight: 1, class: users.py:Reader}\n"
                    "  - {name: sneaky, weight: 1, class: users.py:Shopper, method: sneak}\n"
                    "  - {name: boom, weight: 1, class: users.py:Shopper, method: explode}\n"
                    "  - {name: yaml, weight: 1, steps: [{request: GET /yaml}]}\n")
        path = tmp_path / "s.yaml"
        path.write_text(_scenario(tmp_path, journeys, host=repr(shop.url), bad=forbidden.url))
        out = tmp_path / "run"
        result = cli("run", str(path), "--out", str(out), timeout=120)
        seen = dict(shop.per_path)
    assert forbidden.count == 0
    summary = json.loads((out / "summary.json").read_text())
    by_name = {e["name"]: e for e in summary["endpoints"]}
    calls = {n: by_name[n]["requests"] for n in ("class-call", "class-requests", "class-sneak",
                                                 "class boom", "GET /yaml")}
    assert all(calls.values()), calls
    assert sum(calls.values()) == summary["arrivals"]["started"] >= 20
    assert seen["/class-call"] == calls["class-call"] and seen["/yaml"] == calls["GET /yaml"]
    assert seen["/class-requests"] == calls["class-requests"]  # HttpUser (requests) too
    # on_start: once per pool user and class journey, at that journey's first arrival there
    assert 1 <= seen["/class-start"] <= (calls["class-call"] + calls["class-sneak"]
                                         + calls["class boom"])
    assert by_name["class-sneak"]["failures"] == calls["class-sneak"]
    assert by_name["class boom"]["failures"] == calls["class boom"]
    assert "explode: KeyError: 'no such basket'" in json.dumps(summary["errors"])
    assert {r["where"] for r in summary["refused"]["refusals"]} == {
        "journey sneaky, class Shopper"}
    assert summary["verdict"] == "fail" and result.returncode == 1
