"""Every error gisgate raises on purpose, and the exit code each one means.

    GisgateError                      exit 1   (anything unexpected but understood)
    ├── ConfigError                   exit 2   bad option, config file or mapping
    ├── InputError                    exit 3   an input file (or some of its rows) was rejected;
    │                                          carries the list of Problems
    ├── DeliveryError                 exit 4   outputs stay queued; re-running is safe
    │   ├── TransientDeliveryError             retry later (network down, 5xx, timeout)
    │   └── PermanentDeliveryError             retrying cannot help (auth refused, 4xx, host key)
    └── FetchError                    exit 4   a platform API did not give what a source asked for;
                                               `transient` (retry later), `retry_after` (seconds it asked)

Messages say what is wrong, where, and what to do next. They never contain secrets.
`cli.py` is the only place that turns these into exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, at a place a person can find: `file:line: column: reason`."""

    file: str
    line: int  # 1-based physical line; 0 when the problem concerns the whole file
    column: str  # column or field name; "" when not about one column
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        parts = [p for p in (where, self.column, self.reason) if p]
        return ": ".join(parts)


class GisgateError(Exception):
    exit_code = 1


class ConfigError(GisgateError):
    """A command-line option, the config file or a mapping table is wrong."""

    exit_code = 2


class InputError(GisgateError):
    """An input was rejected. `problems` lists every reason found (not just the first)."""

    exit_code = 3
    shown = 20  # how many problems the message spells out before counting the rest

    def __init__(self, problems: list[Problem] | Problem | str, file: str = ""):
        if isinstance(problems, str):
            problems = [Problem(file, 0, "", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        self.hint = ""
        super().__init__(self._message())

    def hinted(self, hint: str) -> InputError:
        """This error, saying where to find every problem when there are more than `shown` (the
        command that raises it knows: `--rejects FILE`, a report page, ...)."""
        self.hint = hint
        self.args = (self._message(),)
        return self

    def _message(self) -> str:
        lines = [str(p) for p in self.problems[: self.shown]]
        rest = len(self.problems) - self.shown
        if rest > 0:
            lines.append(f"... and {rest} more problem(s)" + (f" ({self.hint})" if self.hint else ""))
        return "\n".join(lines)


class DeliveryError(GisgateError):
    exit_code = 4


class TransientDeliveryError(DeliveryError):
    """The target may accept the same delivery later."""


class PermanentDeliveryError(DeliveryError):
    """The target refused in a way a retry cannot fix; a human must act."""


class FetchError(GisgateError):
    """A source's platform API failed a call; the cursor did not move, so the next poll asks again."""

    exit_code = 4

    def __init__(self, message: str, transient: bool = True, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after
