"""Every bound on user input, in one place (docs/limits.md lists them for users).

A scenario beyond these is refused by `validate` with a one-line error, never left to hang or
crash a run: a 10^11-day stage, a billion-laughs YAML or `target: 1e308` are typos or attacks,
not campaigns. Raise a bound here (and in docs/limits.md) when a real campaign needs it.
"""

from __future__ import annotations

# --- the scenario file, as YAML -----------------------------------------------------------------
MAX_FILE_BYTES = 1_000_000  # a scenario file (scenarios are a few KB; data goes in CSV files)
MAX_DEPTH = 64  # mappings and lists nested in one another, aliases followed
MAX_NODES = 100_000  # YAML values once every alias is expanded (defeats "billion laughs")
MAX_INT_DIGITS = 1_000  # digits of an integer (Python refuses to read past 4,300)

MAX_DATA_BYTES = 100_000_000  # a CSV a scenario names (data:, replay)

# --- values -----------------------------------------------------------------------------------
MAX_DURATION_S = 366 * 86400.0  # any one duration: a stage, a think time, a window
MAX_SHAPE_S = 366 * 86400.0  # the whole shape, in campaign time and in wall time
MIN_STAGE_S = 0.001  # a shape must last at least this (a 0 s shape sends nothing)
MAX_STAGES = 100_000  # stages once a template is expanded (wave, email_blast, step, replay)
MAX_TARGET = 1_000_000.0  # users, or journeys per second, at any point of the shape
MAX_TIME_SCALE = 1_000_000.0  # campaign seconds per wall second
MIN_TIME_SCALE = 1e-6
MAX_SPEEDUP = 10_000_000.0  # --speedup: a year-long shape in 3 s (a rehearsal of the shape)
MAX_WEIGHT = 1_000_000.0  # a journey's weight
MAX_NAME = 200  # characters of a name: scenario, journey, step (endpoint), stage
MAX_USERS = 1_000_000  # load.max_users
STATUS_RANGE = (100, 599)  # an HTTP status code in expect/check

# --- templates --------------------------------------------------------------------------------
MAX_POWER_DIGITS = 1_000  # `a ** b` in a template may not produce a number longer than this
MAX_REPEAT = 1_000_000  # `"x" * n` in a template may not build a string or list longer

# --- results folders (read back by report, compare) ---------------------------------------------
MAX_COUNT = 10**12  # requests, failures, bytes, arrivals in one interval of one process

# --- the monitor ----------------------------------------------------------------------------------
MAX_BUCKET_SAMPLES = 2_000  # histogram buckets kept per scrape (monitor.buckets): whole series
