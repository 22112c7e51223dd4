"""No secret leaves in any form (docs/safety.md).

The canary: a real run whose secret (with a space, `@ & / " < >`) goes in a header, a query,
a JSON and a form body, a path, a redirect, failing checks, basic auth from a hand-written
user, and messages long enough to be cut at 80 and 300 characters. Then every file of the run
folder, and the command's stdout and stderr, are searched for any 6 characters in a row of
the secret in each encoding the runtime produces: there must be none. The fast tests check
the mask, the `env` rule and the escaping of terminal and XML text on their own.
"""

from __future__ import annotations

import base64
import html
import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import yaml

from shop_loadtest.errors import ScenarioError
from shop_loadtest.safety.mask import env_names, env_secrets, mask, mask_cut, mask_data
from shop_loadtest.safety.text import terminal_safe, xml_safe
from shop_loadtest.scenario import load_scenario
from tests.conftest import ROOT
from tests.servers import RouteServer

SECRET = 'S3cr3t p@ss&x/"y<z>'
WINDOW = 6

# Each encoding, one character at a time (so a window can be told to span the secret).
CHAR_ENCODINGS: dict[str, Callable[[str], str]] = {
    "raw": lambda c: c,
    "percent": lambda c: quote(c, safe=""),
    "percent-lower": lambda c: quote(c, safe="") if c.isalnum() else quote(c, safe="").lower(),
    "percent-path": lambda c: quote(c, safe="/"),
    "percent-rfc3986": lambda c: quote(c, safe="/:@!$&'()*+,;=~"),
    "form": lambda c: quote_plus(c, safe=""),
    "json": lambda c: json.dumps(c)[1:-1],
    "json-slash": lambda c: json.dumps(c)[1:-1].replace("/", "\\/"),
    "json-unicode": lambda c: f"\\u{ord(c):04x}" if not c.isalnum() else c,
    "json-in-json": lambda c: json.dumps(json.dumps(c)[1:-1])[1:-1],
    "html": lambda c: html.escape(c),
    "html-json": lambda c: html.escape(json.dumps(c)[1:-1]),
    "python-repr": lambda c: repr(c)[1:-1] if c != "'" else "\\'",
}


def _windows_of(pieces: list[str]) -> set[str]:
    """6-character windows of the joined pieces that hold the whole encoding of two or more
    of the secret's characters (one character's escape alone, `&quot;` or `x\\u002f` in
    base64 data, says nothing of the secret), widened to whole encodings at both ends: a
    window cut inside an escape says as little (`ss\\u00` is in any JSON-escaped base64 with
    `ss/` in it; `ss\\u0026` is only in the secret)."""
    text, spans = "", []
    for piece in pieces:
        spans.append((len(text), len(text) + len(piece)))
        text += piece
    out = set()
    for k in range(len(text) - WINDOW + 1):
        end = k + WINDOW
        if sum(k <= a and b <= end for a, b in spans) >= 2:
            start = min(a for a, b in spans if b > k)  # the piece the window starts in
            stop = max(b for a, b in spans if a < end)  # the piece it ends in
            out.add(text[start:stop])
    return out


def _base64_cores(secret: str) -> Iterator[str]:
    """The base64 characters of `prefix + secret` that depend on the secret alone."""
    data = secret.encode()
    for prefix in (b"user:", b"ab:", b"a:"):
        encoded = base64.b64encode(prefix + data + b"\n").decode()
        start = -(-len(prefix) * 8 // 6)
        end = (len(prefix) + len(data)) * 8 // 6
        yield encoded[start:end]
        yield encoded[start:end].replace("+", "-").replace("/", "_")


def canary_windows(secret: str) -> dict[str, set[str]]:
    out = {name: _windows_of([enc(c) for c in secret]) for name, enc in CHAR_ENCODINGS.items()}
    out["base64"] = {core[k:k + WINDOW] for core in _base64_cores(secret)
                     for k in range(len(core) - WINDOW + 1)}
    return out


def hits(texts: dict[str, str], secret: str) -> list[tuple[str, str, str]]:
    """(where, encoding, window) for each window of the secret found in a text."""
    found = []
    for encoding, windows in canary_windows(secret).items():
        for window in sorted(windows):
            found += [(where, encoding, window) for where, text in texts.items()
                      if window in text]
    return found


# --- the mask ---------------------------------------------------------------------------------
@pytest.mark.parametrize("encoding", sorted(CHAR_ENCODINGS))
def test_every_char_wise_encoding_of_a_secret_is_masked(encoding):
    encoded = "".join(CHAR_ENCODINGS[encoding](c) for c in SECRET)
    text = f"before {encoded} after"
    assert mask(text, [SECRET]) == "before *** after"


def test_base64_of_user_and_secret_is_masked_whatever_the_user():
    for user in ("u", "us", "user", "a-much-longer-user-name"):
        header = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
        assert hits({"header": mask(f"Basic {header}", [SECRET])}, SECRET) == []


def test_the_mask_comes_before_the_cut():
    message = "x" * 290 + SECRET
    assert mask_cut(message, [SECRET], 300) == "x" * 290 + "***"
    assert SECRET[:6] not in mask_cut(message, [SECRET], 300)


def test_mask_data_masks_keys_and_values_and_leaves_other_types():
    data = {f"GET /{SECRET}": [SECRET, 1, None, {"m": f"t={quote_plus(SECRET)}"}]}
    assert mask_data(data, [SECRET]) == {"GET /***": ["***", 1, None, {"m": "t=***"}]}


def test_short_or_no_secrets_leave_text_alone():
    assert mask("abc", []) == "abc" and mask("ab ab", ["ab"]) == "ab ab"


def test_the_secrets_are_the_values_of_the_env_names_the_scenario_reads():
    text = "a: '{{ env.TOKEN }}'\nb: \"{{ env.get('PASS', 'x') }}\"\nc: environment"
    assert env_names(text) == {"TOKEN", "PASS"}
    assert env_secrets(text, {"TOKEN": "t0k3n", "PASS": "", "OTHER": "o"}) == {"t0k3n"}


# --- env in templates ---------------------------------------------------------------------
def _scenario(tmp_path: Path, template: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: t
        target: {{host: "http://127.0.0.1:8800"}}
        load: {{model: users, stages: [{{duration: 1, target: 1}}]}}
        variables: {{k: SHOP_TOKEN}}
        journeys:
          - name: j
            steps:
              - request: GET /x
                headers: {{X-A: "{template}"}}
        """))
    return path


@pytest.mark.parametrize("template", [
    "{{ env.items() | list }}", "{{ env[k] }}", "{{ env['SHOP_TOKEN'] }}", "{{ env }}",
    "{{ env | list }}", "{{ env.keys() }}", "{{ env.get(k) }}", "{{ env.SHOP_TOKEN() }}",
    "{% for n in env %}{{ n }}{% endfor %}", "{{ env._environ }}", "{{ env.used }}",
])
def test_anything_on_env_but_a_literal_name_is_refused_at_validate(tmp_path, template):
    with pytest.raises(ScenarioError, match=r"s\.yaml:9:\d+: journeys\.0\.steps\.0\.headers"
                                            r"\.X-A: env.* is not allowed") as caught:
        load_scenario(_scenario(tmp_path, template))
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("template", [
    "{{ env.SHOP_TOKEN }}", "Bearer {{ env.SHOP_TOKEN | trim }}",
    "{{ env.get('SHOP_TOKEN', 'dev') }}", "{{ env.SHOP_TOKEN.upper() }}",
])
def test_literal_env_names_are_allowed(tmp_path, template):
    assert load_scenario(_scenario(tmp_path, template)).name == "t"


# --- terminal and XML ---------------------------------------------------------------------
def test_control_sequences_are_shown_escaped_on_a_terminal():
    assert terminal_safe("GET /x\x1b]0;TITLE\x07\x1b[2J\u202e") == (
        "GET /x\\x1b]0;TITLE\\x07\\x1b[2J\\u202e")
    assert terminal_safe("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_xml_forbidden_characters_are_escaped_so_the_file_parses():
    text = xml_safe('<a name="x\x1b\x00y\ufffe">\x07</a>')
    assert ET.fromstring(text).get("name") == "x\\x1b\\x00y\\ufffe"


# --- the canary ---------------------------------------------------------------------------
CLASS_USER = """
    import os

    from locust import constant, task
    from locust.contrib.fasthttp import FastHttpUser


    class Auth(FastHttpUser):
        wait_time = constant(0.2)

        @task
        def login(self):
            secret = os.environ["CANARY"]
            with self.client.get("/echo/500", auth=("user", secret), name="basic auth",
                                 catch_response=True) as resp:
                resp.failure(resp.text)  # the body echoes the Authorization header
"""


def _canary_scenario(tmp_path: Path, host: str) -> Path:
    (tmp_path / "auth.py").write_text(textwrap.dedent(CLASS_USER))
    secret = "{{ env.CANARY }}"
    steps = [
        {"request": "GET /echo/500/" + secret, "name": "secret in the path",
         "headers": {"X-Token": "{{ token }}"}, "query": {"t": secret}, "on_fail": "continue"},
        {"request": "POST /echo/500", "name": "json body", "json": {"password": secret},
         "expect": {"status": 500}, "on_fail": "continue",
         "check": [{"body_contains": "{{ 'x' * 60 }}" + secret}]},
        {"request": "POST /echo/200", "name": "form body", "form": {"p": secret},
         "on_fail": "continue", "check": [{"json": "$.x", "equals": secret}]},
        {"request": "GET /to/302?url=/echo/500/{{ env.CANARY | urlencode }}",
         "name": "redirect", "on_fail": "continue"},
    ]
    # the secret lands around the 300-character cut of the failure message
    steps += [{"request": "GET /echo/503", "name": f"long {n}", "on_fail": "continue",
               "query": {"pad": "p" * n, "t": secret}} for n in (220, 240, 260, 280)]
    # an export row holds it as it is, URL-encoded and inside other text (CSV quotes its ")
    steps += [{"set": {"enc": "{{ env.CANARY | urlencode }}", "wrapped": "<" + secret + ">"}},
              {"export": {"file": "canary.csv", "values": ["token", "enc", "wrapped"]}}]
    data = {
        "name": "canary",
        "target": {"host": host, "headers": {"Authorization": "Bearer " + secret}},
        "load": {"model": "users", "spawn_rate": 10,
                 "stages": [{"duration": 0, "target": 2}, {"duration": 3, "target": 2}]},
        "variables": {"token": secret},
        "journeys": [{"name": "leaky", "steps": [{"think": "0.1s"}, *steps]},
                     {"name": "auth", "class": "auth.py:Auth"}],
        "budgets": ["error_rate < 1%"],
    }
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.e2e
def test_the_canary_secret_appears_in_no_output_in_any_encoding(tmp_path):
    with RouteServer() as shop:
        path = _canary_scenario(tmp_path, shop.url)
        out = tmp_path / "run"
        env = {**os.environ, "CANARY": SECRET, "PYTHONUNBUFFERED": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "shop_loadtest", "run", str(path), "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=150, env=env)
        received = dict(shop.per_path)
    assert result.returncode == 1, result.stdout + result.stderr
    # the secret was really sent, in every place the scenario puts it
    assert any(p.startswith("/echo/500/S3cr3t") for p in received), received
    summary = json.loads((out / "summary.json").read_text())
    kinds = {e["endpoint"] for e in summary["errors"]}
    assert {"secret in the path", "json body", "form body", "redirect (redirect 1)", "basic auth",
            "long 220", "long 280"} <= kinds
    texts = {"stdout": result.stdout, "stderr": result.stderr}
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert {"locustfile.py", "locust.log", "intervals.jsonl", "summary.json", "report.html",
            "junit.xml", "summary.md", "events.jsonl", "canary.csv"} <= {p.name for p in files}
    for file in files:
        texts[str(file.relative_to(out))] = file.read_bytes().decode("utf-8", errors="replace")
    assert hits(texts, SECRET) == []
    ET.parse(out / "junit.xml")


# --- every output of the report stage -----------------------------------------------------
HOSTILE_NAME = "GET /x\x1b]0;owned\x07"


def _report(run_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shop_loadtest", "report", str(run_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_report_outputs_parse_and_the_terminal_gets_no_control_sequence(tmp_path):
    from tests.runfolder import RunFolder

    run = RunFolder(tmp_path, budgets=[f"p95 of {HOSTILE_NAME} < 1s"])
    for t in range(1, 11):  # the whole 10 s shape the folder plans, so the verdict can pass
        run.interval(float(t), {HOSTILE_NAME: [10.0, 20.0]},
                     errors={HOSTILE_NAME: [("HTTP 500", "busy\x1b[2J\x00\x0b now", 1)]})
    run.finish(t=10.0)
    result = _report(tmp_path)
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "\x1b" not in shown and "\x07" not in shown
    assert "GET /x\\x1b]0;owned\\x07" in shown
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert "p95 of GET /x\\x1b]0;owned\\x07 < 1s" in {c.get("name") for c in suite.iter("testcase")}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["endpoints"][0]["name"] == HOSTILE_NAME  # the data keeps what was sent
    assert "\x1b" not in (tmp_path / "summary.md").read_text()


def test_report_masks_a_secret_the_run_folder_holds_in_every_output(tmp_path):
    from tests.runfolder import RunFolder

    scenario = ("name: demo\nload: {model: users, stages: [{duration: 2s, target: 1}]}\n"
                "journeys:\n  - name: j\n    steps:\n"
                "      - request: GET /x?t={{ env.CANARY }}\n")
    run = RunFolder(tmp_path, scenario_yaml=scenario)
    leaked = [SECRET, quote_plus(SECRET), json.dumps(SECRET), html.escape(SECRET)]
    for t in range(1, 4):
        run.interval(float(t), {f"GET /x?t={quote(SECRET)}": [10.0]},
                     errors={f"GET /x?t={quote(SECRET)}": [("HTTP 500", " ".join(leaked), 1)]})
    run.finish(t=3.0)
    result = _report(tmp_path, CANARY=SECRET)
    outputs = {name: (tmp_path / name).read_text() for name in
               ("summary.json", "report.html", "junit.xml", "summary.md")}
    assert hits({"stdout": result.stdout, "stderr": result.stderr, **outputs}, SECRET) == []
    assert "GET /x?t=***" in outputs["summary.json"]


def test_a_refused_request_in_the_folder_fails_the_report_with_exit_1(tmp_path):
    from tests.runfolder import RunFolder

    run = RunFolder(tmp_path)
    for t in range(1, 11):  # the whole 10 s shape: the refusal is the only thing wrong
        run.interval(float(t), {"GET /a": [10.0]})
    run.event(2.0, "refused", host="http://127.0.0.2:18912", where="step 2 of journey buy",
              count=3)
    run.finish(t=10.0)
    result = _report(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("3 requests refused: http://127.0.0.2:18912 is not an allowed host (step 2 of "
            "journey buy); add it to target.allowed_hosts if it is yours") in result.stdout
    assert "requests only to allowed hosts (always on)  3 refused" in result.stdout
