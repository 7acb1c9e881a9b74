"""The errors the CLI reports, and the one place that turns them into a message and an exit code.

Exit codes: 1 for an error talking to the API or an API error answer, 2 for a usage error (as Click
gives its own), 130 after Ctrl-C; `watch` adds its own for a job's final status (watching.py).
"""

import functools
import json
import traceback
from collections.abc import Callable
from typing import Any

import typer

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """Something the user is told in one message (and `details`), then the command exits."""

    def __init__(self, message: str, details: Any = None, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.message = message
        self.details = details
        self.exit_code = exit_code


class UsageError(CliError):
    """Arguments that cannot be right, found before anything was sent."""

    def __init__(self, message: str, details: Any = None):
        super().__init__(message, details, exit_code=EXIT_USAGE)


class ApiError(CliError):
    """The API answered with an error: its status and its `{"error": {code, message, details}}`."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message, details)
        self.status = status
        self.code = code


def describe(error: CliError) -> list[str]:
    """The lines that report `error`: its message, then one line per detail."""
    head = f"error: {error.message}"
    if isinstance(error, ApiError):
        head += f" (HTTP {error.status} {error.code})"
    return [head, *_detail_lines(error.details)]


def _detail_lines(details: Any) -> list[str]:
    if details is None or details == [] or details == {}:
        return []
    if isinstance(details, list) and all(isinstance(item, dict) and "message" in item for item in details):
        # The API's 422 shape: one {field, message} per problem.
        return [f"  - {item.get('field') or 'request'}: {item['message']}" for item in details]
    if isinstance(details, list) and all(isinstance(item, str) for item in details):
        return [f"  - {item}" for item in details]
    if isinstance(details, dict):
        return [f"  {key}: {json.dumps(value, default=str)}" for key, value in details.items()]
    return [f"  {json.dumps(details, default=str)}"]


def reports_errors[**P, R](command: Callable[P, R]) -> Callable[P, R]:
    """Wraps a command: a CliError is printed to stderr as its message and details (never a
    traceback) and becomes the command's exit code; Ctrl-C exits 130 quietly. Anything else is a
    bug of ours: one line too, and its traceback only with --debug."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as error:
            for line in describe(error):
                typer.echo(line, err=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise  # Typer's own ways out
        except Exception as exc:
            context = kwargs.get("ctx")
            if getattr(getattr(context, "obj", None), "debug", False):
                traceback.print_exc()
            typer.echo(f"error: unexpected {type(exc).__name__} in jobrelay: {exc} (--debug shows where)", err=True)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper
