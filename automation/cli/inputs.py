"""What the domain CLIs share about their input: exit code 2 for bad input, the engine's errors shown one
line each, YAML files read with a clear error, and the list under a document's key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from automation.errors import AutomationError, InvalidFieldsError, NotFoundError

__all__ = ["InputProblem", "fail", "items_of", "load_yaml"]


class InputProblem(click.ClickException):
    exit_code = 2


def fail(exc: AutomationError) -> None:
    """Bad input (fields, an unknown name): exit 2, one line per field; anything else: exit 1."""
    if isinstance(exc, InvalidFieldsError):
        raise InputProblem("; ".join(f"{path}: {reason}" for path, reason in exc.errors))
    if isinstance(exc, NotFoundError):
        raise InputProblem(str(exc))
    raise click.ClickException(str(exc))


def load_yaml(path: str) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise InputProblem(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        raise InputProblem(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None


def items_of(document: Any, key: str, path: str) -> list[Any]:
    """The list under `key` (`rules:`, `targets:`), or the document itself when it is a list."""
    if isinstance(document, dict) and key in document:
        document = document[key]
    if not isinstance(document, list):
        raise InputProblem(f"{path}: expected a list of {key}, or a mapping with `{key}:`")
    return document
