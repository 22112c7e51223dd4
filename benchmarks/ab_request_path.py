"""The socket levers of issue 20 in one process: CPU-us per request of one FastHttpSession
against benchmarks/server.py, each variant in turn in short interleaved rounds (ABCD DCBA ...),
so a busy machine weighs on all of them alike; medians and minimums over the rounds.

Variants: `stock` (a FastHttpSession as Locust makes it), `none` (send_once, neither lever),
`send` (one plain send() instead of gevent's sendall with its getsockopt: the runtime),
`poll` (a per-socket poll() keep-alive check instead of gevent's select(), measured and not
kept: it lost 8-12% with 20 concurrent users, docs/performance.md), `send+poll`.

    .venv/bin/python benchmarks/ab_request_path.py [--rounds 80] [--requests 500]
"""

from __future__ import annotations

# isort: skip_file

import locust  # noqa: F401  (first: gevent patches the process)

import argparse
import json
import re
import resource
import select
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import gevent.monkey
import gevent.socket
from geventhttpclient.connectionpool import ConnectionPool
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment

from shop_loadtest.runtime import client

HERE = Path(__file__).resolve().parent
VARIANTS = ("stock", "none", "send", "poll", "send+poll")
LEAN_SENDALL = client.LeanSocket.sendall
_POLL = gevent.monkey.get_original("select", "poll")
_NOT_IDLE = (select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
             | getattr(select, "POLLRDHUP", 0))
_POLLERS: dict[int, Any] = {}


def poll_alive(pool: Any, sock: Any) -> bool:
    """The keep-alive check with one poll() object per socket (the alternative measured)."""
    try:
        fd = sock.fileno()
        if fd < 0:
            return False
        poller = _POLLERS.get(id(sock))
        if poller is None:
            poller = _POLLERS[id(sock)] = _POLL()
            poller.register(fd, _NOT_IDLE)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=80)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-u", str(HERE / "server.py"), "--port", "0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        found = re.search(r"http://127\.0\.0\.1:\d+", server.stdout.readline())
        assert found, "the benchmark server did not start"
        url = found.group(0)
        env = Environment()
        sessions: dict[str, Any] = {}
        for name in VARIANTS:
            session = FastHttpSession(url, request_event=env.events.request, user=None)
            if name != "stock":
                client.send_once(session)
            sessions[name] = session
        got: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for k in range(args.rounds):
            for name in VARIANTS if k % 2 == 0 else VARIANTS[::-1]:
                # Only the class attributes differ between the lean variants.
                client.LeanSocket.sendall = (LEAN_SENDALL if "send" in name  # type: ignore
                                             else gevent.socket.socket.sendall)
                client.LeanConnectionPool._is_socket_alive = (  # type: ignore
                    poll_alive if "poll" in name else ConnectionPool._is_socket_alive)
                session = sessions[name]
                began = _cpu()
                for _ in range(args.requests):
                    session.request("GET", "/api/products", name="x")
                got[name].append(1e6 * (_cpu() - began) / args.requests)
        with urllib.request.urlopen(url + "/__stats", timeout=10) as resp:
            connections = json.loads(resp.read())["connections"]
    finally:
        server.kill()
        server.wait()
    out = {name: {"median_us": round(statistics.median(v), 1), "min_us": round(min(v), 1)}
           for name, v in got.items()}
    print(f"CPU-us per request, {args.rounds} interleaved rounds of {args.requests} requests "
          f"({connections} connections in all: one per variant, none replaced)")
    for name, r in out.items():
        print(f"  {name:10} median {r['median_us']:6.1f}  min {r['min_us']:6.1f}  "
              f"({r['median_us'] / out['none']['median_us']:.3f} of none)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
