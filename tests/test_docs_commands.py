"""Every `shop-loadtest` command line in README.md and docs/ runs as written (issue 11).

The lines are read from the fenced code blocks (continuations joined, a leading `$ ` or
`- run: ` dropped, shell plumbing after `||` cut). They run in a copy of the repository's
scenarios/ with only these substitutions, each forced by the shared test machine:
- the target: `$STAGING_URL` and `https://staging.shop.example` become a server on 127.0.0.1
  (traffic never leaves loopback);
- a master's `--bind 0.0.0.0 --port 5557` becomes 127.0.0.1 and a free port;
- the run folders that `report` and `compare` read are written first (real results folders).
Commands that only read or write files (validate, generate, preview, plan, report, compare)
run to the end. Commands that send load (run, master, find-capacity) run until the load has
started (or a master waits for its workers), then get Ctrl-C: that proves they parse, pass
the target checks and start, without minutes of load per line. `worker --master-host
10.0.0.5` would leave loopback: it runs in tests/test_netns.py against a master in a namespace.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.runfolder import known_run
from tests.servers import CountingServer

pytestmark = pytest.mark.e2e

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_LOOPBACK = re.compile(r"--master-host (?!127\.0\.0\.1)")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line) for every shop-loadtest line of a fenced code block."""
    found = []
    for path in DOCS:
        text = path.read_text()
        for block in re.finditer(r"^```\w*\n(.*?)^```", text, re.S | re.M):
            body = re.sub(r"\\\n\s*", " ", block.group(1))
            for line in body.splitlines():
                line = re.sub(r"^(\$ |- run: |run: )", "", line.strip())
                line = line.split("||")[0].strip()
                if re.match(r"(\.venv/bin/)?shop-loadtest ", line):
                    found.append((f"{path.relative_to(ROOT)}: {line}", line))
    return found


COMMANDS = documented_commands()


def test_the_docs_have_commands_to_check():
    verbs = {shlex.split(line, comments=True)[1] for _, line in COMMANDS}
    assert {"run", "master", "report", "compare", "generate", "plan"} <= verbs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _argv(line: str, target: str) -> list[str]:
    line = line.replace('"$STAGING_URL"', target).replace("https://staging.shop.example", target)
    args = shlex.split(line, comments=True)[1:]
    if "--bind" in args:
        args[args.index("--bind") + 1] = "127.0.0.1"
    if "--port" in args:
        args[args.index("--port") + 1] = str(_free_port())
    return args


def _workspace(tmp_path: Path, args: list[str]) -> Path:
    """The scenarios, and the run folders a `report` or `compare` line names."""
    work = tmp_path / "work"
    shutil.copytree(ROOT / "scenarios", work / "scenarios")
    if args[0] in ("report", "compare"):
        for folder in (a for a in args[1:] if not a.startswith("-") and "/" in a or a in (
                "baseline", "results")):
            known_run(work / folder, budgets=["p99 < 2s"])
    return work


def _until_load_starts(proc: subprocess.Popen[str], work: Path, verb: str,
                       timeout: float = 60.0) -> bool:
    """True once the command is sending load (or, a master, waiting for its workers)."""
    deadline = time.monotonic() + timeout
    name = "locust.log" if verb == "master" else "intervals.jsonl"
    before = set(work.rglob(name))  # the fixture folders' own
    while time.monotonic() < deadline and proc.poll() is None:
        for path in set(work.rglob(name)) - before:
            if verb != "master" or "Waiting for workers" in path.read_text(errors="replace"):
                return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_a_documented_command_runs_as_written(tmp_path, where, line):
    if NOT_LOOPBACK.search(line):
        pytest.skip("a worker for a master on another machine: see tests/test_netns.py")
    if shlex.split(line, comments=True)[1] == "alerts":
        pytest.skip("needs a monitored run folder: tests/test_alerts_e2e.py runs it on a real one")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "shop_loadtest"]
    with CountingServer() as shop:
        args = _argv(line, shop.url)
        verb = args[0]
        work = _workspace(tmp_path, args)
        proc = subprocess.Popen([*cmd, *args], cwd=work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started = None
        if verb in ("run", "master", "find-capacity"):
            started = _until_load_starts(proc, work, verb)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        # Ctrl-C ends a load command promptly, report written (find-capacity once went on
        # to four more 30 s steps after it).
        try:
            stdout, stderr = proc.communicate(timeout=120 if started is None else 45)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            raise AssertionError(f"{where}: did not end") from None
    assert "Traceback" not in stderr, stderr[-2000:]
    assert proc.returncode != 2, f"{where}: bad input: {stderr[-1000:]}"
    if started is not None:
        assert started, f"{where}: the load never started: {stderr[-1500:]}"
        if "--host" in args and verb != "master":  # a master sends load through workers
            assert shop.count > 0, f"{where}: the named target got no traffic"
    else:
        assert proc.returncode in (0, 1), f"{where}: exit {proc.returncode}: {stderr[-1500:]}"
    assert stdout or stderr
