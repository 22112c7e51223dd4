"""`die_with_parent()`: the kernel SIGKILLs this process when its parent dies (Linux).

Used by the runner as `preexec_fn` of the Locust and demo-shop processes. The runtime has its
twin in runtime/lifeline.py (Locust's `--processes` children need their own: the setting does
not survive a fork), since run/ must not import the runtime package (it imports locust).
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
