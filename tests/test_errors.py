"""Why requests failed: one message format, the shop's own words, body samples with secrets
masked before they are cut, and errors grouped by a normalised message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from shop_loadtest.journeys import SecretEnv
from shop_loadtest.journeys.failures import (
    SAMPLE_CHARS,
    describe_failure,
    escape_control,
    failure_sample,
    shop_words,
)
from shop_loadtest.judge.errors import normalise_message
from tests.conftest import cli
from tests.servers import Handler, LoopbackServer

SECRET = "S3cr3t-CANARY-9f2"


class Resp:
    """A response as Locust hands it to the request event: status, body, request URL."""

    def __init__(self, status: int, body: bytes | None, url: str = "http://127.0.0.1/x") -> None:
        self.status_code = status
        self.content = body
        self.request = type("Req", (), {"url": url})()


class CatchResponseError(Exception):
    """Named as Locust's: what `resp.failure(...)` raises inside catch_response."""


def mask_with(*secrets: str):
    env = SecretEnv({})
    env.used = set(secrets)
    return env.scrub


@pytest.mark.parametrize("exception, response, expected", [
    # Locust's own status failure and ours (a check on the status) come out the same
    (ConnectionError("URL http://127.0.0.1/api/checkout: code=507"),
     Resp(507, b'{"error": "database or disk is full"}'),
     ("HTTP 507", "database or disk is full")),
    (CatchResponseError("HTTP 507"), Resp(507, b'{"error": "database or disk is full"}'),
     ("HTTP 507", "database or disk is full")),
    # Django's 406 page: its words, not only the status
    (CatchResponseError("HTTP 406"),
     Resp(406, b"<html><title>406</title><body><h1>Not Acceptable</h1>"
               b"<p>Could not satisfy the request Accept header.</p></body></html>"),
     ("HTTP 406", "406 Not Acceptable Could not satisfy the request Accept header.")),
    (CatchResponseError("HTTP 403"), Resp(403, b'{"detail": [{"msg": "CSRF failed"}]}'),
     ("HTTP 403", "CSRF failed")),
    # an empty body: the reason phrase
    (ConnectionError("URL http://127.0.0.1/a: code=404"), Resp(404, b""),
     ("HTTP 404", "Not Found")),
    (CatchResponseError("check $.id: missing"), Resp(200, b"{}"),
     ("check failed", "check $.id: missing")),
])
def test_every_failure_has_one_format_and_the_shops_own_words(exception, response, expected):
    assert describe_failure(exception, response, mask_with()) == expected


def test_no_response_is_named_by_its_cause():
    refused = ConnectionRefusedError(111, "Connection refused")
    response = type("ErrorResponse", (), {"status_code": 0, "error": refused, "content": None})()
    kind, message = describe_failure(refused, response, mask_with())
    assert kind == "ConnectionRefusedError" and "Connection refused" in message


def test_a_secret_is_masked_before_the_body_is_cut():
    # The secret straddles the cut: cutting first would leave its first characters.
    body = ("x" * (SAMPLE_CHARS - 6) + SECRET + " tail").encode()
    sample = failure_sample("POST", f"http://127.0.0.1/api/pay/{SECRET}?token={SECRET}",
                            Resp(403, body), mask_with(SECRET))
    assert sample == {"status": 403, "method": "POST", "path": "/api/pay/***",
                      "body": "x" * (SAMPLE_CHARS - 6) + "*** ta"}


def test_control_characters_in_a_body_are_escaped():
    sample = failure_sample("GET", "http://h/a", Resp(500, b"line1\r\n\x1b[31mred\x00\ttab\x7f"),
                            mask_with())
    assert sample["body"] == "line1\\r\\n\\x1b[31mred\\x00\\ttab\\x7f"
    assert escape_control("a\u2028b") == "a\\u2028b"


def test_shop_words_take_the_text_of_an_error_page_and_ignore_its_scripts():
    page = "<html><head><script>var x=1</script><title>Oops</title></head><body>Sold out</body>"
    assert shop_words(page) == "Oops Sold out"
    assert shop_words('{"errors": ["card declined", "try again"]}') == "card declined; try again"
    assert shop_words("plain words\nsecond line") == "plain words"
    assert shop_words("") == ""


@pytest.mark.parametrize("message, normalised", [
    ("product 123 not found", "product {n} not found"),
    ("product 7 not found", "product {n} not found"),
    ("order 9f1c2e6a-0d4b-4c3e-9a55-3b1f0c7d2e11 for a.b@shop.example",
     "order {uuid} for {email}"),
    ("session deadbeef42 expired", "session {hex} expired"),
    ("[Errno 111] Connection refused", "[Errno 111] Connection refused"),
    ("URL http://127.0.0.1:8800/api/checkout?x=1: code=403", "Forbidden"),
    ("database or disk is full", "database or disk is full"),
])
def test_messages_are_normalised_so_one_failure_is_one_group(message, normalised):
    assert normalise_message(message) == normalised


# --- a real run --------------------------------------------------------------------------
class EchoingForbidden(LoopbackServer):
    """Answers 403 with a body that repeats the request's token (header and query) and a
    terminal escape: what a careless shop's error page does."""

    def __init__(self) -> None:
        class Refusing(Handler):
            def do_GET(self) -> None:
                body = json.dumps({"error": f"token {self.headers.get('X-Token')} refused",
                                   "echo": self.path}).encode() + b"\n\x1b[2J"
                self.reply(403, body)

        super().__init__(Refusing)


@pytest.mark.e2e
def test_a_runs_errors_carry_body_samples_with_secrets_masked(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SLT_TEST_TOKEN", SECRET)
    with EchoingForbidden() as server:
        path = tmp_path / "t.yaml"
        path.write_text(yaml.safe_dump({
            "name": "t", "target": {"host": server.url},
            "load": {"model": "users", "stages": [{"duration": 1, "target": 2},
                                                  {"duration": 2, "target": 2}]},
            "journeys": [{"name": "j", "steps": [
                {"request": "GET /api/account?token={{ env.SLT_TEST_TOKEN }}",
                 "name": "GET /api/account", "headers": {"X-Token": "{{ env.SLT_TEST_TOKEN }}"}},
                {"think": "0.2s"}]}],
            "budgets": ["error_rate < 1%"],
        }, sort_keys=False))
        out = tmp_path / "run"
        result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 1, result.stderr[-2000:] + result.stdout[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    (group,) = summary["errors"]
    assert (group["endpoint"], group["kind"]) == ("GET /api/account", "HTTP 403")
    assert group["message"] == "token *** refused"  # the shop's words, masked
    assert 1 <= len(group["samples"]) <= 3
    sample = group["samples"][0]
    assert (sample["status"], sample["method"], sample["path"]) == (403, "GET", "/api/account")
    assert '"error": "token *** refused"' in sample["body"]
    assert sample["body"].endswith("\\n\\x1b[2J")  # escaped, not raw
    report = (out / "report.html").read_text()
    assert "token *** refused" in report and "/api/account" in report
    assert "token \\*\\*\\* refused" in (out / "summary.md").read_text()
    for name in ("intervals.jsonl", "summary.json", "report.html", "summary.md", "junit.xml"):
        text = (out / name).read_text()
        assert SECRET[:6] not in text, name
        assert "\x1b" not in text, name
