"""The one exception tree of shop-loadtest; the CLI maps each branch to an exit code.

    ShopLoadtestError                 any error we raise on purpose (never a traceback)
    ├── InputError                    exit 2: the user's input is wrong
    │   ├── ScenarioError             a scenario file: carries file, line, col and field path
    │   ├── BudgetSyntaxError         a budget expression that does not parse
    │   └── TargetNotAllowed          a host the scenario and command line do not allow
    └── RunError                      exit 3: the run could not be carried out or trusted
        ├── TargetUnreachable         the target did not answer before the load started
        ├── EngineError               Locust failed to start or died
        └── ResultsError              a results folder is missing or unreadable

Exit code 1 (a budget broke) is not an error: it is a verdict, decided in the CLI.
"""

from __future__ import annotations

from pathlib import Path

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
        where = self.file or "<scenario>"
        if self.line is not None:
            where += f":{self.line}"
            if self.col is not None:
                where += f":{self.col}"
        field = f" {self.path}:" if self.path else ""
        return f"{where}:{field} {self.message}"


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
