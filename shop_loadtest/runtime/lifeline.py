"""A load process never outlives what started it.

When the CLI is killed (a CI job cancelled, `kill -9`), the Locust it started must not go on
sending load for the rest of the shape. Two guards, because neither covers every case:
- Linux: `PR_SET_PDEATHSIG` makes the kernel SIGKILL this process the moment its parent dies
  (the runner also sets it through `preexec_fn`; Locust's `--processes` children need their
  own, since it does not survive a fork);
- everywhere: a greenlet that watches the parent pid (re-parented means the parent is gone)
  and, on a worker, the master's heartbeat (a worker started by hand whose master is gone).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time
from typing import Any

import gevent

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
POLL_S = 0.25
MASTER_SILENT_S = 6.0  # heartbeats come every second; Locust itself waits 60 s


def die_with_parent() -> None:
    """SIGKILL at the parent's death (Linux). The runner has its twin in run/parentdeath.py:
    the runtime cannot import run/, and run/ must not import this package (it imports
    locust)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def watch_lifeline(worker_runner: Any | None = None, *, parent: bool = True
                   ) -> gevent.Greenlet:
    """Start the watchdog for this process: its parent (`parent`), and with `worker_runner`
    the master's heartbeat."""
    if parent:
        die_with_parent()
    parent_pid = os.getppid()

    def watch() -> None:
        while True:
            gevent.sleep(POLL_S)
            if parent and os.getppid() != parent_pid:
                _end(f"its parent process {parent_pid} is gone")
            last = getattr(worker_runner, "last_heartbeat_timestamp", None)
            if last and time.time() - last > MASTER_SILENT_S:
                _end(f"no heartbeat from the master for {MASTER_SILENT_S:g} s")

    return gevent.spawn(watch)


def _end(why: str) -> None:
    # No graceful shutdown: nobody is left to read its results, and every second it lives it
    # sends load nobody controls.
    logger.error("shop-loadtest: stopping the load now: %s", why)
    logging.shutdown()
    os._exit(3)
