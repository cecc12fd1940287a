"""Typed errors of forecasting and scaling: each names the file, line, column or option at fault."""

from __future__ import annotations

from pathlib import Path

from automation.errors import AutomationError


class ForecastingError(AutomationError):
    """Base of the errors raised by `automation.forecasting` and `automation.scaling`."""


class TraceFormatError(ForecastingError):
    """A trace file is malformed; `line` is 1-based (the header is line 1), `column` a column name."""

    def __init__(self, file: str | Path, line: int | None, column: str | None, reason: str) -> None:
        self.file = str(file)
        self.line = line
        self.column = column
        self.reason = reason
        where = self.file
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {reason}")


class DurationError(ForecastingError):
    """A duration such as `10m` could not be parsed; `text` is what was given."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid duration {text!r}: {reason}")


class ForecastConfigError(ForecastingError):
    """A forecaster or policy option is invalid; `option` names it."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")
