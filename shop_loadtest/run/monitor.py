"""Watch the target during a run: scrape its Prometheus metrics into monitor.jsonl.

The scraper is a thread of the runner process (never of a Locust process): every `interval`
it fetches each endpoint, parses the text with prometheus-client's own parser and appends one
line per endpoint to monitor.jsonl, flushed at once. A failed scrape is a line with
`ok: false` and the error, never an exception. Budgets over the recorded series
(`used(storage) < 80%`, `gauge_max(...)`, `rate(...)`) are in `shop_loadtest.judge.monitor_stats`.
See docs/monitoring.md.

"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Collection
from pathlib import Path
from typing import IO, Any

from shop_loadtest.limits import MAX_BUCKET_SAMPLES
from shop_loadtest.safety.hosts import REFUSED_KIND, Allowlist, HostNotAllowed, guarded_urlopen
from shop_loadtest.safety.mask import mask, mask_cut
from shop_loadtest.scenario.options import MonitorConfig, config_of

# --- scraping --------------------------------------------------------------------------------
Fetch = Callable[[str, float], str]


def fetch_text(url: str, timeout: float) -> str:
    """GET a metrics page; raises OSError/ValueError subclasses on failure."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode("utf-8", errors="replace"))


def guarded_fetch(allow: Allowlist) -> Fetch:
    """fetch_text through the allowlist: the URL and every redirect hop are checked first."""

    def fetch(url: str, timeout: float) -> str:
        with guarded_urlopen(url, allow=allow, where=f"monitor scrape of {url}",
                             timeout=timeout) as response:
            return str(response.read().decode("utf-8", errors="replace"))

    return fetch


def parse_samples(text: str, keep: Callable[[str], bool] = lambda _: True
                  ) -> list[dict[str, Any]]:
    """Prometheus text -> [{name, labels, value}], with prometheus-client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if keep(sample.name):
                value = float(sample.value)
                out.append({"name": sample.name, "labels": dict(sample.labels),
                            "value": value if math.isfinite(value) else None})
    return out


def cap_buckets(samples: list[dict[str, Any]], cap: int = MAX_BUCKET_SAMPLES
                ) -> tuple[list[dict[str, Any]], int]:
    """At most `cap` `_bucket` samples, whole series only (a histogram missing some `le` gives
    wrong percentiles), first come first kept: Prometheus writes series in a stable order, so
    every scrape keeps the same ones. Returns the samples and how many buckets were dropped."""
    def series(sample: dict[str, Any]) -> tuple[str, str]:
        labels = sample["labels"]
        return sample["name"], repr(sorted((k, v) for k, v in labels.items() if k != "le"))

    sizes = Counter(series(s) for s in samples if str(s["name"]).endswith("_bucket"))
    if sum(sizes.values()) <= cap:
        return samples, 0
    kept, used = set(), 0
    for key, size in sizes.items():  # in the order the shop wrote them
        if used + size <= cap:
            kept.add(key)
            used += size
    out = [s for s in samples if not str(s["name"]).endswith("_bucket") or series(s) in kept]
    return out, len(samples) - len(out)


def scrape(url: str, *, timeout: float, keep: Callable[[str], bool] = lambda _: True,
           fetch: Fetch = fetch_text,
           on_refused: Callable[[HostNotAllowed], None] | None = None,
           secrets: Collection[str] = ()) -> dict[str, Any]:
    """One scrape as a monitor.jsonl record without times: {endpoint, ok, error, samples}.
    A refused scrape (a host not allowed) is also handed to `on_refused`."""
    try:
        samples = parse_samples(fetch(url, timeout), keep)
    except HostNotAllowed as exc:
        if on_refused is not None:
            on_refused(exc)
        return {"endpoint": url, "ok": False, "error": f"{REFUSED_KIND}: {exc}",
                "samples": []}
    except urllib.error.HTTPError as exc:
        return {"endpoint": url, "ok": False, "error": f"HTTP {exc.code} {exc.reason}",
                "samples": []}
    except Exception as exc:  # any failure is recorded, never fatal
        reason = getattr(exc, "reason", None) or exc
        return {"endpoint": url, "ok": False,
                "error": mask_cut(f"{type(exc).__name__}: {reason}", secrets, 300),
                "samples": []}
    return {"endpoint": url, "ok": True, "error": None, "samples": samples}


class Monitor:
    """Scrapes `urls` every `interval_s` in a thread, appending to `path` until `stop()`.

    Lines carry `t`, seconds since the load started; `origin()` gives that instant (the
    runtime's start event) once known. Scrapes taken before it is known are held back, then
    written with negative `t` (the state before the load).
    """

    def __init__(self, urls: list[str], path: Path, *, interval_s: float, timeout_s: float,
                 origin: Callable[[], float | None], keep: Callable[[str], bool] = lambda _: True,
                 fetch: Fetch = fetch_text, clock: Callable[[], float] = time.time,
                 on_refused: Callable[[HostNotAllowed], None] | None = None,
                 secrets: Collection[str] = (), keep_bucket: Callable[[str], bool] | None = None,
                 buckets_every_s: float = 10.0) -> None:
        self.urls, self.path, self.interval_s, self.timeout_s = urls, path, interval_s, timeout_s
        self.keep_bucket, self.buckets_every_s = keep_bucket, buckets_every_s
        self._next_buckets = -math.inf
        self.origin, self.keep, self.fetch, self.clock = origin, keep, fetch, clock
        self.on_refused, self.secrets = on_refused, secrets
        self.scrapes = self.failures = 0
        self._held: list[dict[str, Any]] = []
        self._t0: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: IO[str] | None = None

    def start(self) -> Monitor:
        self._handle = self.path.open("a", encoding="utf-8")
        self._thread = threading.Thread(target=self._loop, name="shop-loadtest-monitor",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread, take one last scrape (the state after the load), close the file."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=self.timeout_s * len(self.urls) + 5.0)
        self._thread = None
        self.scrape_once(final=True)
        assert self._handle is not None
        self._handle.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self.scrape_once()
            self._stop.wait(max(self.interval_s - (time.monotonic() - began), 0.05))

    def _keep_now(self, final: bool) -> Callable[[str], bool]:
        """This scrape's filter: the kept histograms' buckets only once in `buckets_every_s`
        (and on the last scrape), so they cost a tenth of the file on a long run while every
        window still gives the server's percentiles."""
        keep, bucket = self.keep, self.keep_bucket
        now = self.clock()
        if bucket is None or not (final or now >= self._next_buckets):
            return keep
        self._next_buckets = now + self.buckets_every_s - self.interval_s / 2
        return lambda name: keep(name) or bucket(name)

    def scrape_once(self, *, final: bool = False) -> None:
        keep = self._keep_now(final)
        for url in self.urls:
            ts = self.clock()
            record = {"t": None, "ts": round(ts, 3),
                      **scrape(url, timeout=self.timeout_s, keep=keep, fetch=self.fetch,
                               on_refused=self.on_refused, secrets=self.secrets)}
            record["samples"], dropped = cap_buckets(record["samples"])
            if dropped:
                record["buckets_dropped"] = dropped
            self.scrapes += 1
            self.failures += not record["ok"]
            self._held.append(record)
        if self._t0 is None:
            self._t0 = self.origin()
            if self._t0 is None and final and self._held:
                self._t0 = self._held[0]["ts"]  # the load never started: time from the 1st
        if self._t0 is not None:
            self._flush()

    def _flush(self) -> None:
        assert self._handle is not None and self._t0 is not None
        for record in self._held:
            record["t"] = round(record["ts"] - self._t0, 3)
            line = json.dumps(record, separators=(",", ":"))
            self._handle.write(mask(line, self.secrets) + "\n")
        self._held = []
        self._handle.flush()


def run_meta(scenario: Any, *, demo_shop: bool) -> dict[str, Any]:
    """run.json keys `monitor` (the effective config, or null) and `forecast`.

    Monitoring is on when the scenario has a `monitor:` section, or when the runner started
    the demo shop itself (it is known to export /metrics).
    """
    config = scenario.monitor or (MonitorConfig() if demo_shop else None)
    forecast = scenario.forecast
    return {"monitor": config.model_dump(mode="json") if config else None,
            "forecast": forecast.model_dump(mode="json") if forecast else None}


def start_monitor(meta: dict[str, Any], host: str, run_dir: Path,
                  origin: Callable[[], float | None], *, allow: Allowlist | None = None,
                  on_refused: Callable[[HostNotAllowed], None] | None = None,
                  secrets: Collection[str] = ()) -> Monitor | None:
    """The runner's hook: start scraping when run.json asks for it, every scrape through the
    allowlist (default: the target host alone)."""
    config = config_of(meta)
    if config is None:
        return None
    allow = allow if allow is not None else Allowlist.of([host])
    return Monitor(config.urls(host), run_dir / "monitor.jsonl", interval_s=config.interval,
                   timeout_s=config.timeout, origin=origin, keep=config.keeps,
                   fetch=guarded_fetch(allow), on_refused=on_refused, secrets=secrets,
                   keep_bucket=config.keeps_bucket,
                   buckets_every_s=config.buckets_every_s(_planned_s(meta))).start()


def _planned_s(meta: dict[str, Any]) -> float:
    """The shape's length in wall seconds, from run.json's stages (0 when unknown)."""
    ends = []
    for stage in meta.get("stages") or []:
        try:
            ends.append(float(stage["end_s"]))
        except (KeyError, TypeError, ValueError):
            continue
    finite = [e for e in ends if math.isfinite(e)]
    return max(finite, default=0.0)
