"""The one secret mask every output passes: `mask(text, secrets)`.

A secret is masked in every form the runtime and its outputs produce: as it is; percent-
encoded with `%20` or `+` for a space, in upper or lower case hex, whole or in part (as a
path, a query or a form encodes it); JSON- and Python-escaped (`\\"`, `\\/`, `\\u0040`);
HTML- and XML-escaped (`&quot;`, `&#34;`, `&amp;`); any mix of those; and base64 (as in a
basic-auth header `user:secret`, whatever comes before or after it). Mask first, cut after:
`mask_cut` is the only way messages are shortened, so no prefix of a secret survives a cut.

    >>> mask('GET /x?t=p%40ss%26w+rd and "p@ss&w rd"', ["p@ss&w rd"])
    'GET /x?t=*** and "***"'
"""

from __future__ import annotations

import base64
import re
from collections.abc import Collection, Iterable, Mapping
from functools import lru_cache
from typing import Any

MASK = "***"
# Shorter values are not masked: they could not be told from ordinary text.
MIN_SECRET_LENGTH = 3
_ENV_NAME = re.compile(
    r"""\benv\s*\.\s*(?:get\s*\)?\s*\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]|([A-Za-z_][A-Za-z0-9_]*))""")
_HTML_NAMED = {"&": ("amp",), "<": ("lt",), ">": ("gt",), '"': ("quot",), "'": ("apos",)}
_BACKSLASHED = {'"': '"', "\\": "\\", "/": "/", "'": "'", "\n": "n", "\r": "r", "\t": "t"}


def _hex(value: int, width: int) -> str:
    """`0x2f` -> `2[fF]`: a hex number that matches in either case."""
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in f"{value:0{width}x}")


def _html(c: str) -> list[str]:
    code = ord(c)
    return [rf"&#0*{code};", rf"&#[xX]0*{_hex(code, 1)};",
            *(f"&{name};" for name in _HTML_NAMED.get(c, ()))]


def _char(c: str) -> str:
    """A regex for one character of a secret, in each form it may be written."""
    code = ord(c)
    forms = [re.escape(c), *_html(c)]
    forms.append("".join(f"%{_hex(b, 2)}" for b in c.encode("utf-8")))
    if c == " ":
        forms.append(r"\+")
    # JSON or Python escaped (once, or again when JSON is embedded in JSON), and that
    # HTML-escaped again
    if c in _BACKSLASHED:
        escaped = _BACKSLASHED[c]
        forms += [r"\\+" + re.escape(escaped)] + [r"\\+" + f for f in _html(escaped)]
    if code < 0x10000:
        forms.append(rf"\\+[uU]{_hex(code, 4)}")
    else:  # JSON writes it as a surrogate pair
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        forms.append(rf"\\+[uU]{_hex(high, 4)}\\+[uU]{_hex(low, 4)}")
    return "(?:" + "|".join(forms) + ")"


def _base64_cores(secret: str) -> list[str]:
    """The base64 characters that depend on the secret's bytes alone, at each of the three
    alignments it can have after a prefix (`user:` in basic auth), standard and URL-safe."""
    data = secret.encode("utf-8")
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii")
        start = -(-8 * offset // 6)
        end = 8 * (offset + len(data)) // 6
        core = encoded[start:end]
        if len(core) >= 4:
            cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


@lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    alternatives = []
    for secret in sorted(secrets, key=len, reverse=True):
        alternatives.append("".join(_char(c) for c in secret))
        alternatives += [re.escape(core) for core in _base64_cores(secret)]
    return re.compile("|".join(alternatives)) if alternatives else None


def _usable(secrets: Iterable[str]) -> frozenset[str]:
    return frozenset(s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LENGTH)


def mask(text: str, secrets: Collection[str]) -> str:
    """`text` with every form of every secret replaced by `***`."""
    if not secrets or not text:
        return text
    pattern = _pattern(_usable(secrets))
    return pattern.sub(MASK, text) if pattern is not None else text


def mask_cut(text: str, secrets: Collection[str], limit: int) -> str:
    """Mask, then cut to `limit` characters: never the other way round."""
    return mask(text, secrets)[:limit]


def env_names(text: str) -> set[str]:
    """The environment variables a scenario reads (`env.NAME`; validate allows no other use
    of `env`)."""
    return {a or b for a, b in _ENV_NAME.findall(text)} - {"get"}


def env_secrets(text: str, environ: Mapping[str, str]) -> set[str]:
    """The values of the environment variables `text` (a scenario) reads, where set."""
    return {environ[name] for name in env_names(text) if environ.get(name)}


def mask_data(value: Any, secrets: Collection[str]) -> Any:
    """`mask` over every string (keys included) of JSON-like data."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask(value, secrets)
    if isinstance(value, dict):
        return {mask_data(k, secrets): mask_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v, secrets) for v in value]
    return value
