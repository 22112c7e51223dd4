"""`export:` steps (issue 18, item 6): rows of captured values in the run folder's exports/.

Fast tests check validation (file:line, did-you-mean), the generated code, the row and the
writer (masking, a worker's malformed row); the e2e test checks out on a fresh demo shop and
compares the exported order ids with the orders the shop created, in one process and with
two worker processes whose rows the master writes."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest

from shop_loadtest.generate.blocks import to_block
from shop_loadtest.generate.locustfile import render_locustfile
from shop_loadtest.journeys import ExportStep, SecretEnv, export_row
from shop_loadtest.results import export_files
from shop_loadtest.runtime.exports import Exports
from shop_loadtest.scenario import load_scenario_text
from tests.conftest import cli
from tests.scenario_text import journey_text as _journey
from tests.scenario_text import scenario_error as _error

CHECKOUT = (
    "      - set: {email: '{{ faker.email() }}'}\n"
    "      - request: POST /api/cart/items\n"
    "        json: {product_id: 1, quantity: 1}\n"
    "      - request: POST /api/checkout\n"
    "        json: {email: '{{ email }}', name: Load Test}\n"
    "        capture: {order_id: 'json:$.order_id'}\n"
    "      - export: {file: orders.csv, values: [order_id, email, token]}\n"
)




@pytest.mark.parametrize(("steps", "message"), [
    ("      - export: {file: ../orders.csv, values: [x]}\n",
     "s.yaml:6:24: journeys.0.steps.0.export.file: a file name such as orders.csv"),
    ("      - export: {file: orders.txt, values: [x]}\n",
     "s.yaml:6:24: journeys.0.steps.0.export.file: a file name such as orders.csv"),
    ("      - export: {file: o.csv, values: []}\n",
     "s.yaml:6:39: journeys.0.steps.0.export.values: List should have at least 1 item"),
    ("      - export: {file: o.csv, values: ['{{ x }}']}\n",
     "s.yaml:6:39: journeys.0.steps.0.export.values: values are variable names"),
    ("      - export: {file: o.csv, values: [time]}\n",
     "s.yaml:6:39: journeys.0.steps.0.export.values: journey and time are the first two"),
    ("      - export: {file: o.csv, value: [x]}\n",
     "s.yaml:6:31: journeys.0.steps.0.export.value: unknown field"),
    ("      - request: GET /x\n        export: {file: o.csv, values: [x]}\n",
     "s.yaml:6:9: journeys.0.steps.0: a step is one of"),
    ("      - request: GET /x\n        capture: {order_id: 'json:$.id'}\n"
     "      - export: {file: o.csv, values: [ordr_id]}\n",
     "s.yaml:8:40: journeys.0.steps.1.export.values.0: unknown variable 'ordr_id' (did you "
     "mean order_id?)"),
    ("      - export: {file: o.csv, values: [order_id]}\n"
     "      - request: GET /x\n        capture: {order_id: 'json:$.id'}\n",
     "s.yaml:6:40: journeys.0.steps.0.export.values.0: 'order_id' is exported before the "
     "step that captures it (step 2)"),
    ("      - set: {a: 1, b: 2}\n      - export: {file: o.csv, values: [a]}\n"
     "      - export: {file: o.csv, values: [a, b]}\n",
     "s.yaml:8:39: journeys.0.steps.2.export.values: o.csv is exported with other values "
     "elsewhere (a, at journeys.0.steps.1.export)"),
    ("      - export: {file: o.csv, values: [env]}\n",
     "s.yaml:6:40: journeys.0.steps.0.export.values.0: 'env' is a template helper, not a "
     "value"),
])
def test_bad_export_steps_give_one_located_line(steps, message):
    assert _error(_journey(steps)).startswith(message)


def test_an_export_step_is_generated_as_readable_code_with_its_if():
    text = _journey(CHECKOUT.replace("token]}\n", "token]}\n        if: order_id\n")).replace(
        "journeys:", "variables: {token: '{{ env.SLT_EXPORT_TEST_TOKEN }}'}\njourneys:")
    scenario = load_scenario_text(text, file="s.yaml")
    source = render_locustfile(scenario, source="s.yaml", output="s_locustfile.py")
    assert ("IfStep('order_id', ExportStep('orders.csv', ('order_id', 'email', 'token')))"
            in source)
    imported = source.split("from shop_loadtest.journeys import ")[1].split("\nfrom ")[0]
    assert "ExportStep" in imported
    block = to_block(scenario.journeys[0].steps)
    assert block[-1].step == ExportStep("orders.csv", ("order_id", "email", "token"))


def test_a_row_is_journey_time_and_values_with_secrets_masked(tmp_path):
    secrets = SecretEnv({"TOKEN": "s3cr3t-token"})
    assert secrets.get("TOKEN") == "s3cr3t-token"  # handed out: now masked
    step = ExportStep("orders.csv", ("order_id", "note", "token", "missing", "lines"))
    ctx = {"order_id": 7, "note": "for s3cr3t-token%21", "token": "s3cr3t-token",
           "lines": [1, 2]}
    row = export_row("buy", step, ctx, secrets.scrub, ts=0.25)
    assert row == ["buy", "1970-01-01T00:00:00.250Z", "7", "for ***%21", "***", "", "[1, 2]"]
    exports = Exports(tmp_path, secrets.scrub)
    exports.add("orders.csv", ("journey", "time", *step.values), row)
    # the master masks again what a worker sends, and drops what is not a row of a plain file
    exports.on_message({"file": "orders.csv", "columns": ["journey", "time", "order_id"] + [
        "note", "token", "missing", "lines"], "row": ["buy", "t", "8", "s3cr3t-token"] + [""] * 3})
    exports.on_message({"file": "../../evil.csv", "columns": ["a"], "row": ["b"]})
    exports.on_message({"file": "o.csv", "columns": ["a", "b"], "row": ["b"]})
    # on disk as each row is made (a process that dies keeps them), before any close
    text = (tmp_path / "exports" / "orders.csv").read_text()
    exports.close()
    assert "s3cr3t" not in text
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["journey", "time", "order_id", "note", "token", "missing", "lines"]
    assert [r[2] for r in rows[1:]] == ["7", "8"] and rows[2][3] == "***"
    assert sorted(p.name for p in tmp_path.rglob("*.csv")) == ["orders.csv"]
    assert [f.to_json() for f in export_files(tmp_path)] == [
        {"file": "exports/orders.csv", "rows": 2}]
    again = Exports(tmp_path, secrets.scrub)  # a second run into the same folder: no 2nd header
    again.add("orders.csv", ("journey", "time", *step.values), row)
    again.close()
    assert export_files(tmp_path)[0].rows == 3


# --- e2e on a fresh demo shop ------------------------------------------------------------------

@pytest.fixture
def fresh_shop(tmp_path):
    from shop_loadtest.demo_shop import DemoShop

    with DemoShop(tmp_path / "shop.sqlite", port=0) as shop:
        yield shop


@pytest.mark.e2e
@pytest.mark.parametrize("workers", [1, 2])
def test_exported_order_ids_are_the_orders_the_shop_created(tmp_path, fresh_shop, workers,
                                                            monkeypatch):
    """Every order the shop made is in the export, once, whether one process wrote it or the
    master wrote what two workers sent; the secret read from the environment is masked."""
    monkeypatch.setenv("SLT_EXPORT_TEST_TOKEN", "tok-e2e-secret-value")
    text = (f"name: exp\ntarget: {{host: '{fresh_shop.url}'}}\n"
            "load: {model: arrival_rate, stages: [{duration: 0s, target: 6}, "
            "{duration: 3s, target: 6}]}\n"
            "variables: {token: '{{ env.SLT_EXPORT_TEST_TOKEN }}'}\n"
            "journeys:\n  - name: buy\n    steps:\n" + CHECKOUT)
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    out = tmp_path / "run"
    args = ["--workers", str(workers)] if workers > 1 else []
    result = cli("run", str(path), "--out", str(out), *args, timeout=120)
    summary = json.loads((out / "summary.json").read_text())
    assert result.returncode == 0, (summary["reasons"], result.stderr[-2000:])
    with sqlite3.connect(fresh_shop.db_path) as db:
        orders = {(str(i), e) for i, e in db.execute("SELECT id, email FROM orders")}
    text = (out / "exports" / "orders.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(orders) >= 12 and len(rows) == len(orders)
    assert {(r["order_id"], r["email"]) for r in rows} == orders
    assert {r["journey"] for r in rows} == {"buy"} and {r["token"] for r in rows} == {"***"}
    assert "tok-e2e-secret-value" not in text
    assert summary["exports"] == [{"file": "exports/orders.csv", "rows": len(orders)}]
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parents[1] / "shop_loadtest" / "schemas" /
                         "summary.schema.json").read_text())
    jsonschema.validate(summary, schema)
    assert f"exported {len(orders)} rows to exports/orders.csv" in result.stdout
    assert f"`exports/orders.csv` ({len(orders)} rows)" in (out / "summary.md").read_text()
    assert "<code>exports/orders.csv</code></a> (" in (out / "report.html").read_text()


@pytest.mark.e2e
def test_a_worker_killed_mid_run_keeps_the_rows_it_sent(tmp_path, fresh_shop):
    """Master and two workers as separate processes (as on cloud machines, no shared disk):
    one worker is killed mid-run; the export still holds every order it reported, and the
    summary (inconclusive: a worker was lost) still names the file."""
    from tests.test_distributed import run_distributed

    text = (f"name: exp\ntarget: {{host: '{fresh_shop.url}'}}\n"
            "load: {model: arrival_rate, stages: [{duration: 0s, target: 8}, "
            "{duration: 5s, target: 8}]}\n"
            "journeys:\n  - name: buy\n    steps:\n"
            + CHECKOUT.replace(", token]", "]"))
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    out = tmp_path / "run"
    code, _ = run_distributed(path, out, kill_one_after=0.5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["workers_lost"] and code == 3
    with sqlite3.connect(fresh_shop.db_path) as db:
        orders = {str(i) for (i,) in db.execute("SELECT id FROM orders")}
    rows = list(csv.DictReader((out / "exports" / "orders.csv").read_text().splitlines()))
    exported = {r["order_id"] for r in rows}
    assert len(exported) == len(rows) and exported <= orders
    # at most the orders in flight when the worker died are missing
    assert len(orders) - len(exported) <= 2 and len(rows) >= 16
    assert summary["exports"] == [{"file": "exports/orders.csv", "rows": len(rows)}]


@pytest.mark.e2e
def test_plain_locust_runs_exports_and_an_open_model_class_journey(tmp_path, fresh_shop):
    """The generated locustfile, unchanged under plain `locust -f --slt-results DIR`: the class
    journey takes arrivals, the export file is written, and `report DIR` counts its rows."""
    import subprocess
    import sys

    (tmp_path / "users.py").write_text(
        "from locust import task\nfrom locust.contrib.fasthttp import FastHttpUser\n\n\n"
        "class Buyer(FastHttpUser):\n    @task\n    def buy(self):\n"
        "        self.client.get('/api/products', name='class-products')\n")
    path = tmp_path / "plain.yaml"
    path.write_text(
        f"name: plain\ntarget: {{host: '{fresh_shop.url}'}}\n"
        "load: {model: arrival_rate, stages: [{duration: 0s, target: 4}, "
        "{duration: 3s, target: 4}]}\n"
        "journeys:\n  - {name: buyer, class: users.py:Buyer}\n  - name: buy\n    steps:\n"
        + CHECKOUT.replace(", token]", "]"))
    locustfile = tmp_path / "plain_locustfile.py"
    assert cli("generate", str(path), "-o", str(locustfile)).returncode == 0
    run = subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
                          "--only-summary", "--json", "--slt-results", str(tmp_path / "res")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    stats = {s["name"]: s for s in json.loads(run.stdout)}
    assert stats["class-products"]["num_requests"] > 0, run.stderr[-2000:]
    assert sum(s["num_failures"] for s in stats.values()) == 0, run.stderr[-2000:]
    rows = list(csv.DictReader((tmp_path / "res" / "exports" / "orders.csv").read_text()
                               .splitlines()))
    assert len(rows) == stats["POST /api/checkout"]["num_requests"] > 0
    report = cli("report", str(tmp_path / "res"))
    assert f"exported {len(rows)} rows to exports/orders.csv" in report.stdout, report.stderr
