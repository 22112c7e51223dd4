"""Which workers take part in a run: exactly the ones the master expects, and no others.

Locust's master takes any worker that connects to its port, and counts it towards
`--expect-workers`: another Locust on the same machine (or anything that finds the port) joins
the run, takes a share of the users and the run delivers part of its load. Here every worker
says hello with the run token as soon as it connects (`MSG_HELLO`); the master admits a worker
whose token matches, up to the number expected, and refuses the others: told to quit, removed
from Locust's worker list (so it gets no users) and recorded as a `worker_refused` event. A
worker that never says hello (a plain Locust without this runtime) is refused after
`HELLO_WAIT_S`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.rpc import Message
from locust.runners import STATE_RUNNING, STATE_SPAWNING

logger = logging.getLogger(__name__)

MSG_HELLO = "slt_hello"
HELLO_WAIT_S = 3.0


class Admission:
    """The master's door: `on_connect`/`on_hello` from Locust, `settle()` at test start."""

    def __init__(self, runner: Any, *, expected: int, token: str | None,
                 on_refused: Callable[[dict[str, Any]], None]) -> None:
        self.runner = runner
        self.expected = expected
        self.token = token
        self.refused: list[dict[str, Any]] = []
        self._admitted: list[str] = []
        self._connected: dict[str, float] = {}
        self._on_refused = on_refused
        self._greenlet: gevent.Greenlet | None = None

    def admitted(self, client_id: str) -> bool:
        return client_id in self._admitted

    def start(self) -> None:
        self._greenlet = gevent.spawn(self._sweep_loop)

    def on_connect(self, client_id: str, **_: Any) -> None:
        self._connected.setdefault(client_id, time.monotonic())

    def on_hello(self, environment: Any, msg: Any, **_: Any) -> None:
        client_id = msg.node_id
        if client_id in self._admitted or any(r["client_id"] == client_id for r in self.refused):
            return
        data = msg.data if isinstance(msg.data, dict) else {}
        if self.token and data.get("token") != self.token:
            self.refuse(client_id, "wrong run token")
        elif len(self._admitted) >= self.expected:
            self.refuse(client_id, f"{self.expected} workers expected and already joined")
        else:
            self._admitted.append(client_id)

    def settle(self, wait_s: float = HELLO_WAIT_S) -> list[str]:
        """At test start: wait for the hellos still on their way, refuse every connected
        worker that was not admitted, and return the admitted ones (sorted)."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self._undecided():
            gevent.sleep(0.05)
        for client_id in self._undecided():
            self.refuse(client_id, "no hello with the run token")
        return sorted(c for c in self._admitted if c in self.runner.clients)

    def _undecided(self) -> list[str]:
        return [c for c in list(self.runner.clients.keys()) if c not in self._admitted]

    def _sweep_loop(self) -> None:
        while True:
            gevent.sleep(0.25)
            now = time.monotonic()
            for client_id in self._undecided():
                if now - self._connected.setdefault(client_id, now) > HELLO_WAIT_S:
                    self.refuse(client_id, "no hello with the run token")

    def _rebalance(self) -> None:
        runner = self.runner
        # As Locust does after removing a dead worker: a fresh dispatcher over the workers
        # left (the old one still counts the stranger's users as placed). The stranger never
        # reports its spawn complete, so the master may still say "spawning".
        if runner.state in (STATE_RUNNING, STATE_SPAWNING):
            logger.info("shop-loadtest: handing the refused worker's users back")
            runner._users_dispatcher = None
            # At once, not at the shape's last spawn rate (1/s on a hold).
            users = runner.target_user_count
            runner.start(user_count=users, spawn_rate=max(runner.spawn_rate, 2.0 * users, 1.0))
        else:
            logger.info("shop-loadtest: no rebalance in state %s", runner.state)

    def refuse(self, client_id: str, why: str) -> None:
        runner = self.runner
        logger.warning("shop-loadtest: refusing worker %s: %s", client_id, why)
        try:
            runner.server.send_to_client(Message("quit", None, client_id))
        except Exception as exc:  # a worker already gone cannot be told; it is refused anyway
            logger.debug("shop-loadtest: cannot tell %s to quit: %s", client_id, exc)
        node = runner.clients.get(client_id)
        if node is not None:
            del runner.clients[client_id]
            dispatcher = getattr(runner, "_users_dispatcher", None)
            if dispatcher is not None:
                dispatcher.remove_worker(node)
                # Locust gave the stranger a share of the users when it connected mid-run:
                # hand them back to our workers.
                gevent.spawn(self._rebalance)
        record = {"client_id": client_id, "reason": why}
        self.refused.append(record)
        self._on_refused(record)
