"""`die_with_parent()`: the kernel SIGKILLs this process when its parent dies (Linux).

Used by the runner (`preexec_fn` of the Locust and demo-shop processes) and by the runtime
(Locust's `--processes` children: the setting does not survive a fork). Kept free of gevent and
locust so the CLI process can import it.
"""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask for SIGKILL at the parent's death; a no-op where prctl does not exist. Safe in
    `preexec_fn` (no locks, no allocation beyond ctypes' call)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
