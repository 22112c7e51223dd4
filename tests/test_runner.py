"""Real runs: a real Locust subprocess against real servers on 127.0.0.1, a few seconds each."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, cli
from tests.servers import CountingServer

pytestmark = pytest.mark.e2e


def scenario(tmp_path: Path, host: str | None, *, model: str = "users",
             stages: list[tuple[float, float]], budgets: list[str] | None = None,
             steps: list[dict] | None = None, **extra: object) -> Path:
    """Write a small scenario; stages are (seconds, target) pairs."""
    data = {
        "name": "t",
        "target": {"host": host},
        "load": {"model": model,
                 "stages": [{"duration": d, "target": t} for d, t in stages]},
        "journeys": [{"name": "j", "steps": steps or [
            {"request": "GET /api/products", "name": "GET /api/products"}]}],
        "budgets": budgets or [],
        **extra,
    }
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_a_short_run_on_the_demo_shop_writes_every_output(tmp_path, demo_shop):
    steps = [
        {"request": "GET /api/products", "capture": {"pid": "json:$.items[0].id"}},
        {"request": "GET /api/products/{{ pid }}", "name": "GET /api/products/{id}"},
        {"request": "POST /api/cart/items", "json": {"product_id": "{{ pid }}", "quantity": 1}},
        {"request": "POST /api/checkout",
         "json": {"email": "{{ faker.email() }}", "name": "x"}},
    ]
    path = scenario(tmp_path, demo_shop, stages=[(1, 4), (3, 4)], steps=steps,
                    budgets=["error_rate < 1%", "p99 < 5s"])
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr + result.stdout
    for name in ("scenario.yaml", "locustfile.py", "run.json", "intervals.jsonl",
                 "events.jsonl", "summary.json", "report.html", "junit.xml", "summary.md"):
        assert (out / name).exists(), name
    s = summary(out)
    assert s["verdict"] == "pass"
    names = {e["name"] for e in s["endpoints"]}
    assert names == {"GET /api/products", "GET /api/products/{id}", "POST /api/cart/items",
                     "POST /api/checkout"}
    assert s["failures"] == 0 and s["requests"] > 20


def test_the_summary_counts_what_the_server_received(tmp_path, counting_server):
    path = scenario(tmp_path, counting_server.url,
                    stages=[(0, 5), (4, 5)])
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    recorded = summary(out)["requests"]
    # users stopped at the end may have had one request each in flight
    assert counting_server.count - 5 <= recorded <= counting_server.count
    assert recorded > 100


def test_percentiles_match_a_server_with_a_known_delay(tmp_path, slow_server):
    path = scenario(tmp_path, slow_server.url,
                    stages=[(0, 4), (3, 4)])
    out = tmp_path / "run"
    assert cli("run", str(path), "--out", str(out)).returncode == 0
    (endpoint,) = summary(out)["endpoints"]
    # 50 ms of server sleep plus loopback overhead, measured to 0.1% (not 10 ms buckets)
    assert 50.0 <= endpoint["p50_ms"] < 60.0
    assert endpoint["p50_ms"] != round(endpoint["p50_ms"], -1)  # not a 10 ms bucket key
    assert endpoint["p99_ms"] >= endpoint["p50_ms"]


def test_a_broken_budget_exits_1(tmp_path, slow_server):
    path = scenario(tmp_path, slow_server.url, budgets=["p95 < 10ms"],
                    stages=[(0, 2), (2, 2)])
    result = cli("run", str(path), "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    s = summary(tmp_path / "run")
    assert s["verdict"] == "fail"
    assert s["budgets"][0]["passed"] is False and s["budgets"][0]["observed"] >= 50


def test_bad_input_exits_2_with_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nload: {model: users, stagse: []}\n"
                    "journeys: [{name: a, steps: [{request: GET /}]}]\n")
    result = cli("validate", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "stagse" in result.stderr and "did you mean stages?" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_host_the_scenario_does_not_allow_is_refused_before_any_request(tmp_path,
                                                                         counting_server):
    path = scenario(tmp_path, "http://127.0.0.1:1", stages=[(1, 1)])
    result = cli("run", str(path), "--host", counting_server.url, "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "refusing to send load" in result.stderr and "--allow-host" in result.stderr
    assert counting_server.count == 0


def test_allow_host_lets_the_run_go(tmp_path, counting_server):
    path = scenario(tmp_path, "http://127.0.0.1:1",
                    stages=[(0, 1), (1, 1)])
    result = cli("run", str(path), "--host", counting_server.url, "--allow-host",
                 counting_server.url, "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert counting_server.count > 0


def test_an_unreachable_target_exits_3_before_the_load(tmp_path):
    path = scenario(tmp_path, "http://127.0.0.1:9", stages=[(1, 1)])
    result = cli("run", str(path), "--out", str(tmp_path / "r"))
    assert result.returncode == 3
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "intervals.jsonl").exists()


def test_ctrl_c_stops_the_load_and_still_writes_the_report(tmp_path, counting_server):
    path = scenario(tmp_path, counting_server.url,
                    stages=[(0, 3), (60, 3)])
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "shop_loadtest", "run", str(path),
                             "--out", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out / "intervals.jsonl").exists():
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=40)
    s = summary(out)
    assert s["requests"] > 0
    assert json.loads((out / "run.json").read_text())["exit_reason"] == "interrupted"
    assert proc.returncode == 3, stderr  # an interrupted run cannot say "launch"
    assert (out / "report.html").exists()


def test_the_generated_locustfile_runs_under_plain_locust(tmp_path, counting_server):
    path = scenario(tmp_path, counting_server.url,
                    stages=[(0, 2), (2, 2)])
    assert cli("generate", str(path), "-o", str(tmp_path / "lf.py")).returncode == 0
    result = subprocess.run([sys.executable, "-m", "locust", "-f", str(tmp_path / "lf.py"),
                             "--headless", "--only-summary"], capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert counting_server.count > 10
    assert not list(tmp_path.glob("*.jsonl"))  # no --slt-results: nothing recorded


def test_open_model_arrivals_match_the_target_at_the_server(tmp_path, counting_server):
    # 20/s for 1 s ramp + 40/s for 3 s: 10 + 120 = 130 journeys of one request each
    path = scenario(tmp_path, counting_server.url, model="arrival_rate",
                    stages=[(1, 20), (0, 40), (3, 40)])
    out = tmp_path / "run"
    result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert 127 <= counting_server.count <= 131
    s = summary(out)
    assert s["arrivals"]["dropped"] == 0


def test_an_abort_rule_stops_the_run_early_with_a_partial_report(tmp_path):
    with CountingServer(status=500) as failing:
        # A think time keeps the generator far from saturation (which would be inconclusive).
        path = scenario(tmp_path, failing.url, stages=[(0, 2), (30, 2)],
                        steps=[{"think": "100ms"}, {"request": "GET /api/products"}],
                        abort=["error_rate > 50% for 2s"])
        out = tmp_path / "run"
        result = cli("run", str(path), "--out", str(out))
    assert result.returncode == 1, result.stderr
    meta = json.loads((out / "run.json").read_text())
    assert meta["exit_reason"] == "aborted"
    assert meta["abort_reason"]["rule"] == "error_rate > 50% for 2s"
    s = summary(out)
    assert s["verdict"] == "fail"
    assert s["aborted"]
    last_t = max(json.loads(x)["t"] for x in (out / "intervals.jsonl").read_text().splitlines())
    assert last_t < 20  # the recorded load ended long before the 30 s shape would have
    events = [json.loads(x)["kind"] for x in (out / "events.jsonl").read_text().splitlines()]
    assert "abort" in events


@pytest.fixture
def tiny_disk(tmp_path):
    """A 96 KiB filesystem that a run fills: the full disk of the original outage, in small."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("needs root to mount a tiny tmpfs")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gives_one_line_and_exit_3(tmp_path, tiny_disk, counting_server):
    path = scenario(tmp_path, counting_server.url, stages=[(0, 20), (4, 20)],
                    steps=[{"request": "GET /a"}, {"request": "GET /b"}, {"request": "GET /c"}])
    result = cli("run", str(path), "--out", str(tiny_disk / "run"))
    assert result.returncode == 3, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert str(tiny_disk / "run") in lines[0]
    assert "Traceback" not in result.stderr


def test_a_plain_locust_run_with_results_can_be_judged_later(tmp_path, slow_server):
    path = scenario(tmp_path, slow_server.url, stages=[(0, 2), (2, 2)],
                    budgets=["p95 < 10ms", "error_rate < 1%"])
    assert cli("generate", str(path), "-o", str(tmp_path / "lf.py")).returncode == 0
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "locust", "-f", str(tmp_path / "lf.py"),
                           "--headless", "--only-summary", "--slt-results", str(results)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((results / "run.json").read_text())
    assert meta["budgets"] == ["p95 < 10ms", "error_rate < 1%"]
    assert meta["exit_reason"] == "completed"
    report = cli("report", str(results))
    assert report.returncode == 1, report.stderr  # the 50 ms server breaks p95 < 10ms
    s = summary(results)
    assert [b["passed"] for b in s["budgets"]] == [False, True]


@pytest.mark.parametrize("args", [("run", "scenarios/flash-sale.yaml", "--speedup", "0"),
                                  ("run", "scenarios/flash-sale.yaml", "--bogus"),
                                  ("compare",)])
def test_bad_flags_exit_2_without_a_traceback(args):
    result = cli(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error" in result.stderr or "error" in result.stderr
