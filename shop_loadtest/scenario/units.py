"""Friendly units used in scenario files: durations, percentages, rates, sizes.

>>> parse_duration("1m30s"), parse_duration("400ms"), parse_duration(2)
(90.0, 0.4, 2.0)
>>> parse_percent("1%"), parse_rate("150/s"), parse_size("2MB")
(0.01, 150.0, 2000000.0)
"""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s|d)")
_DURATION_FULL = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|h|m|s|d))+$")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: str | int | float) -> float:
    """Seconds from `90`, `"90s"`, `"1m30s"`, `"400ms"`, `"2h"`; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 90s or 1m30s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip().replace(" ", "")
        if text.startswith("-") and _DURATION_FULL.match(text[1:]):
            raise ValueError(f"a duration cannot be negative, got {value!r}")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        elif _DURATION_FULL.match(text):
            seconds = sum(float(n) * _SECONDS[u] for n, u in _DURATION_PART.findall(text))
        else:
            raise ValueError(f"expected a duration such as 90s, 1m30s or 400ms, got {value!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def parse_percent(value: str | int | float) -> float:
    """A fraction from `"1%"` (0.01) or a plain number already a fraction (0.01)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            return float(text[:-1]) / 100.0
        except ValueError:
            pass
    raise ValueError(f"expected a percentage such as 1% or 0.5%, got {value!r}")


def parse_rate(value: str | int | float) -> float:
    """Per second from `"150/s"`, `"9000/m"`, `"150rps"` or a plain number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(?:/(s|m|h|min)|rps)?", text)
    if not m:
        raise ValueError(f"expected a rate such as 150/s or 9000/m, got {value!r}")
    per = {"s": 1.0, None: 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}[m.group(2)]
    return float(m.group(1)) / per


_SIZE = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 1024, "mib": 1024**2,
         "gib": 1024**3, "tib": 1024**4}


def parse_size(value: str | int | float) -> float:
    """Bytes from `"2MB"`, `"512KiB"`, `"1.5GB"` or a plain number of bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)", str(value).strip())
    if not m or m.group(2).lower() not in _SIZE | {"": 1}:
        raise ValueError(f"expected a size such as 500MB or 2GiB, got {value!r}")
    return float(m.group(1)) * (_SIZE.get(m.group(2).lower(), 1))


def format_duration(seconds: float) -> str:
    """`5400` -> `1h30m`; `90` -> `1m30s`; `0.4` -> `400ms`."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h}h" if h else "", f"{m}m" if m else "", f"{s}s" if s else ""]
    return "".join(parts) or "0s"
