"""Where a load process spends its CPU: a py-spy sample of it, summed by module group.

`py-spy record --format raw --gil` gives one line per distinct stack with its sample count,
for samples holding the GIL only: the event loop's wait in epoll is left out. Each sample
is counted once, under the group of its innermost Python frame (self time): time in a system
call shows under the Python function that made it (gevent's socket methods, `select`).

    breakdown = profile_pid(pid, seconds=8)
    print(render(breakdown))

py-spy is a dev dependency (`make install`); without it the breakdown says so and the rest of
`make bench` runs on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# (group, test on the frame's file path and function) in order: the first that matches wins.
GROUPS: list[tuple[str, str, str]] = [
    ("syscalls: send", r"gevent/_socket", r"^(send|sendall|_sendall|__send_chunk)$"),
    ("syscalls: recv", r"gevent/_socket", r"^(recv|recv_into|recvfrom)$"),
    ("syscalls: select/poll (keep-alive check)", r"(gevent/select|shop_loadtest/runtime/client)",
     r"^(select|idle|_is_socket_alive)$"),
    ("syscalls: other socket calls", r"gevent/_socket", r""),
    ("geventhttpclient", r"geventhttpclient/", r""),
    ("Locust: FastHttpSession", r"locust/contrib/fasthttp", r""),
    ("Locust: stats", r"locust/stats", r""),
    ("Locust: events", r"locust/event", r""),
    ("Locust: task loop and runners", r"locust/", r""),
    ("arrival scheduler and queue", r"(shop_loadtest/runtime/arrivals|gevent/queue)", r""),
    ("shop-loadtest runtime", r"shop_loadtest/", r""),
    ("gevent hub, timers and greenlets", r"(gevent/|greenlet)", r""),
    ("cookies (stdlib)", r"http/cookiejar", r""),
    ("Python stdlib and others", r"", r""),
]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass
class Breakdown:
    samples: int = 0
    groups: Counter[str] = field(default_factory=Counter)
    leaves: Counter[str] = field(default_factory=Counter)
    # stacks with a frame of the open model's scheduler anywhere (inclusive)
    scheduler_inclusive: int = 0
    error: str | None = None

    def share(self, count: int) -> float:
        return 100.0 * count / self.samples if self.samples else 0.0

    def to_json(self) -> dict[str, object]:
        return {"samples": self.samples, "error": self.error,
                "groups_pct": {g: round(self.share(n), 1) for g, n in self.groups.most_common()},
                "top_pct": {f: round(self.share(n), 1) for f, n in self.leaves.most_common(12)},
                "scheduler_inclusive_pct": round(self.share(self.scheduler_inclusive), 1)}


def group_of(func: str, path: str) -> str:
    path = path.replace("\\", "/")
    for name, file_re, func_re in GROUPS:
        if re.search(file_re, path) and re.search(func_re, func):
            return name
    return GROUPS[-1][0]


def parse_raw(text: str) -> Breakdown:
    """py-spy's raw (collapsed) output -> the breakdown."""
    out = Breakdown()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        found = _FRAME.match(frames[-1])
        func, path = (found.group("func"), found.group("file")) if found else (frames[-1], "")
        out.samples += count
        out.groups[group_of(func, path)] += count
        short = "/".join(path.split("/")[-2:])
        out.leaves[f"{func} ({short})"] += count
        if any("runtime/arrivals" in f or "gevent/queue" in f for f in frames):
            out.scheduler_inclusive += count
    return out


def profile_pid(pid: int, seconds: float, rate: int = 250) -> Breakdown:
    """Sample process `pid` for `seconds` with py-spy (`--nonblocking`: the process is not
    paused to be read, so the profile costs it almost nothing; `--gil`: only samples holding
    the GIL, since gevent's loop waits in epoll without it, and py-spy's own idle test
    counted much of that wait as `Hub.run`)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return Breakdown(error="py-spy is not installed (`make install` adds it)")
    with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
        result = subprocess.run([spy, "record", "--pid", str(pid), "--duration",
                                 str(max(int(seconds), 1)), "--rate", str(rate), "--format",
                                 "raw", "--nonblocking", "--gil", "--output", raw.name],
                                capture_output=True, text=True, timeout=seconds + 60)
        text = Path(raw.name).read_text() if Path(raw.name).exists() else ""
    if result.returncode != 0 and not text:
        return Breakdown(error=f"py-spy failed: {result.stderr.strip()[-300:]}")
    return parse_raw(text)


def render(title: str, b: Breakdown, indent: str = "  ") -> list[str]:
    if b.error:
        return [f"{indent}{title}: {b.error}"]
    lines = [f"{indent}{title} ({b.samples} busy samples, self time by innermost frame):"]
    for name, n in b.groups.most_common():
        lines.append(f"{indent}  {b.share(n):5.1f}%  {name}")
    lines.append(f"{indent}  top functions:")
    for name, n in b.leaves.most_common(8):
        lines.append(f"{indent}  {b.share(n):5.1f}%  {name}")
    if b.scheduler_inclusive:
        lines.append(f"{indent}  {b.share(b.scheduler_inclusive):5.1f}%  of samples inside the "
                     "arrival scheduler or its queue (inclusive)")
    return lines
