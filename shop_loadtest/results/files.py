"""Files of a run folder are written whole: next to the target, then renamed over it.

A reader (the live view, a report rebuilt while the run goes on, a CI step) sees the old file
or the new one, never half of one; a crash leaves at most a hidden `.NAME.tmp` behind.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` in one rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
