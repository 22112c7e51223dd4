"""Names and messages made safe for where they are shown.

A scenario's names and a shop's error messages are the user's (or the shop's) text: they can
hold ANSI/OSC escape sequences (`\\x1b]0;TITLE\\x07` retitles a terminal, others move the
cursor or hide lines) and characters XML 1.0 forbids. Terminals get them shown escaped;
XML files get the forbidden ones written as visible escapes.

    >>> terminal_safe("GET /x\\x1b]0;owned\\x07")
    'GET /x\\\\x1b]0;owned\\\\x07'
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional overrides that
# can make a terminal line read differently from what it holds.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Everything XML 1.0 does not allow in a document (section 2.2, Char).
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` with control and bidi-override characters shown as `\\xNN` / `\\uNNNN`."""
    return _TERMINAL_UNSAFE.sub(_escaped, text)


def xml_safe(text: str) -> str:
    """`text` with the characters XML 1.0 forbids written as visible escapes (`\\x1b`)."""
    return _XML_FORBIDDEN.sub(_escaped, text)
