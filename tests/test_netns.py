"""`master` listens where remote workers reach it: master, two workers and the target each on
their own "host", as cloud workers would be.

Four network namespaces joined by veth pairs to a bridge in a fifth one (the "switch"), with
private addresses (10.213.0.0/24) that exist inside the namespaces only: nothing is added to
the machine's own network. The commands are the documented ones (docs/distributed.md), with the
namespace's addresses. Needs root and iproute2; skips with the reason otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_runner import scenario

pytestmark = pytest.mark.e2e

HOSTS = {"master": "10.213.0.1", "w1": "10.213.0.2", "w2": "10.213.0.3", "shop": "10.213.0.4"}
SHOP_PORT = 8080  # its own namespace: no other process can hold it

SHOP = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = 0
lock = threading.Lock()
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        global count
        with lock:
            count += 1
            open(sys.argv[2], "w").write(str(count))
        body = b'{"items": [{"id": 1}]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer((sys.argv[1], int(sys.argv[3])), Handler).serve_forever()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=20)


@pytest.fixture
def hosts() -> Iterator[dict[str, str]]:
    """{role: namespace name}, wired to one bridge; removed afterwards."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (`ip`) is not installed")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    tag = uuid.uuid4().hex[:6]
    names = {role: f"slt{tag}{role}" for role in (*HOSTS, "sw")}
    made: list[str] = []
    try:
        try:
            _ip("netns", "add", names["sw"])
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot create a network namespace: {exc.stderr.strip()}")
        made.append(names["sw"])
        sw = ["-n", names["sw"]]
        _ip(*sw, "link", "add", "br0", "type", "bridge")
        _ip(*sw, "link", "set", "br0", "up")
        for i, (role, address) in enumerate(HOSTS.items()):
            ns = names[role]
            _ip("netns", "add", ns)
            made.append(ns)
            # Created inside the host's namespace, so no interface ever exists outside them.
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}",
                "netns", names["sw"])
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip(*sw, "link", "set", f"p{i}", "master", "br0")
            _ip(*sw, "link", "set", f"p{i}", "up")
        yield names
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def _in(ns: str, *cmd: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], cwd=ROOT, text=True,
                            **kw)  # type: ignore[call-overload]


def _wait_listening(ns: str, address: str, port: int, timeout: float = 40.0) -> None:
    probe = (f"import socket; s = socket.socket(); s.settimeout(1); "
             f"raise SystemExit(s.connect_ex(({address!r}, {port})))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", probe],
                          capture_output=True, timeout=20).returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"nothing listened on {address}:{port} in {ns}")


def test_a_master_and_two_workers_on_separate_hosts_deliver_the_rate(tmp_path, hosts):
    target = f"http://{HOSTS['shop']}:{SHOP_PORT}"
    count_file = tmp_path / "shop-count"
    # 20 journeys/s for 4 s = 80, played across two workers on two other "machines". What
    # is tested is the network, not the pacing: a loaded machine may delay an arrival by
    # seconds, so the lateness limit is generous.
    path = scenario(tmp_path, None, model="arrival_rate", stages=[(0, 20), (4, 20)])
    path.write_text(path.read_text().replace("model: arrival_rate",
                                             "model: arrival_rate\n  max_lateness: 10s"))
    out = tmp_path / "run"
    procs: list[subprocess.Popen[str]] = []
    logs = [(tmp_path / f"{name}.log").open("w") for name in ("shop", "master", "w1", "w2")]
    try:
        procs.append(_in(hosts["shop"], sys.executable, "-c", SHOP, HOSTS["shop"],
                         str(count_file), str(SHOP_PORT), stdout=logs[0], stderr=subprocess.STDOUT))
        _wait_listening(hosts["master"], HOSTS["shop"], SHOP_PORT)
        master = _in(hosts["master"], sys.executable, "-m", "shop_loadtest", "master",
                     str(path), "--expect-workers", "2", "--host", target,
                     "--bind", HOSTS["master"], "--port", "5557", "--wait", "60",
                     "--out", str(out), stdout=logs[1], stderr=subprocess.STDOUT)
        procs.append(master)
        _wait_listening(hosts["w1"], HOSTS["master"], 5557)
        for i, role in enumerate(("w1", "w2")):
            procs.append(_in(hosts[role], sys.executable, "-m", "shop_loadtest", "worker",
                             "--master-host", HOSTS["master"], "--master-port", "5557",
                             stdout=logs[2 + i], stderr=subprocess.STDOUT))
        code = master.wait(timeout=120)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=20)
        for log in logs:
            log.close()
    master_log = (tmp_path / "master.log").read_text()[-2000:]
    assert code == 0, master_log
    s = json.loads((out / "summary.json").read_text())
    assert s["workers"] == {"expected": 2, "joined": 2, "refused": 0, "refused_reasons": [],
                            "lost": 0}
    assert s["target"] == {"kind": "named", "host": target}
    assert s["delivery"]["held"] and s["verdict"] == "pass"
    served = int(count_file.read_text())
    assert 76 <= served <= 81, served  # 80 planned; a request or two in flight at the end
    sources = {json.loads(line)["source"] for line in (out / "intervals.jsonl").read_text()
               .splitlines() if json.loads(line)["endpoints"]}
    assert sources == {"worker-0", "worker-1"}
    assert Path(out / "locustfile.py").exists()
