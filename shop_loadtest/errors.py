"""The one exception tree of shop-loadtest; the CLI maps each branch to an exit code.

    ShopLoadtestError                 any error we raise on purpose (never a traceback)
    ├── InputError                    exit 2: the user's input is wrong
    │   ├── ScenarioError             a scenario file: carries file, line, col and field path
    │   │   └── ScenarioErrors        every error of one file, sorted by line (one a line)
    │   ├── BudgetSyntaxError         a budget expression that does not parse
    │   └── TargetNotAllowed          a host the scenario and command line do not allow
    └── RunError                      exit 3: the run could not be carried out or trusted
        ├── TargetUnreachable         the target did not answer before the load started
        ├── EngineError               Locust failed to start or died
        └── ResultsError              a results folder is missing or unreadable

Exit code 1 (a budget broke) is not an error: it is a verdict, decided in the CLI.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_BUDGET = 1
EXIT_INPUT = 2
EXIT_RUN = 3


class ShopLoadtestError(Exception):
    """Base of every error we raise deliberately; `str()` is the one-line message."""

    exit_code = EXIT_RUN


class InputError(ShopLoadtestError):
    exit_code = EXIT_INPUT


class ScenarioError(InputError):
    """An error located in a scenario file.

    >>> str(ScenarioError("bad", file="s.yaml", line=3, col=5, path="load.stages.0"))
    's.yaml:3:5: load.stages.0: bad'
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        col: int | None = None,
        path: str = "",
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.col = col
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        where = one_line(self.file or "<scenario>", 160)
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        field = f" {one_line(self.path, 80)}:" if self.path else ""
        prefix = f"{where}:{field}"
        return f"{prefix} {one_line(self.message, max(MAX_LINE - len(prefix) - 1, 80))}"

    def lines(self) -> list[str]:
        """The message as printed, one error a line."""
        return [str(self)]

    def sort_key(self) -> tuple[int, int]:
        return (self.line or 0, self.col or 0)


class ScenarioErrors(ScenarioError):
    """Every error found in one scenario file, sorted by line; `str()` has one a line.

    It is also the first of them (file, line, path, message), so code that reads one error
    keeps working.
    """

    def __init__(self, errors: list[ScenarioError]) -> None:
        self.errors = sorted(errors, key=ScenarioError.sort_key)
        first = self.errors[0]
        super().__init__(first.message, file=first.file, line=first.line, col=first.col,
                         path=first.path)
        Exception.__init__(self, "\n".join(str(e) for e in self.errors))

    def lines(self) -> list[str]:
        shown = [str(e) for e in self.errors[:MAX_LISTED]]
        if len(self.errors) > MAX_LISTED:
            shown.append(f"{self.file or '<scenario>'}: ... and {len(self.errors) - MAX_LISTED} "
                         f"more errors")
        return shown


MAX_LINE = 400  # characters of one error line: a 5,000-character value is cut, not printed
MAX_LISTED = 20  # errors printed for one file


def one_line(text: str, limit: int) -> str:
    """`text` on one line and at most `limit` characters: control characters escaped."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BudgetSyntaxError(InputError):
    """A budget expression that does not parse; the scenario loader adds the location."""


class TargetNotAllowed(InputError):
    pass


class RunError(ShopLoadtestError):
    exit_code = EXIT_RUN


class TargetUnreachable(RunError):
    pass


class EngineError(RunError):
    pass


class ResultsError(RunError):
    pass


def shown(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters: a message quotes a value, never floods."""
    try:
        text = repr(value)
    except ValueError:  # an int past Python's 4,300-digit conversion limit
        return "<a number of thousands of digits>"
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """` (did you mean X?)` for the closest of `options`, or nothing."""
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def dotted(loc: Iterable[Any]) -> str:
    """A field path as the user reads it: `load.stages.0.target`."""
    return ".".join(str(p) for p in loc)
