"""Options and arguments shared by several commands."""

from typing import Annotated

import typer

from jobrelay_cli.params import parse_duration
from jobrelay_cli.session import OutputFormat, Session, session_of
from jobrelay_cli.watching import DEFAULT_INTERVAL_SECONDS


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


OUTPUT_HELP = "table (for people) or json (the API's JSON, for scripts)"

# `--output` after the command too (`jobrelay get JOB -o json`): it overrides the global one.
OutputOverride = Annotated[OutputFormat | None, typer.Option("--output", "-o", help=OUTPUT_HELP, show_default=False)]
JobId = Annotated[str, typer.Argument(metavar="JOB_ID", help="the job's id (job_...)", show_default=False)]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="seconds between two reads of the job while watching")]
Timeout = Annotated[
    int | None,
    typer.Option("--timeout", parser=_duration, metavar="DURATION", help="the job's deadline: 90s, 15m, 2h, 1d, 1h30m"),
]
DEFAULT_INTERVAL = DEFAULT_INTERVAL_SECONDS


def session_for(ctx: typer.Context, output_format: OutputFormat | None) -> Session:
    """The command's session, with its own `--output` if it was given one."""
    session = session_of(ctx)
    if output_format is not None:
        session.output = output_format
    return session
