"""`jobrelay schedules ...`: the API's schedule routes (README.md, Recurring jobs)."""

from pathlib import Path
from typing import Annotated, Any

import typer

from jobrelay_cli import output
from jobrelay_cli.client import segment
from jobrelay_cli.errors import UsageError, reports_errors
from jobrelay_cli.options import OutputOverride, Timeout, session_for
from jobrelay_cli.params import parse_params
from jobrelay_cli.session import Session, session_of

schedules = typer.Typer(help="Recurring jobs: list, get, create, delete, pause, resume, run now.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(metavar="NAME", help="the schedule's name", show_default=False)]


def _show(session: Session, schedule: dict[str, Any]) -> None:
    output.print_json(schedule) if session.json else output.schedule_detail(schedule)


@schedules.command("list")
@reports_errors
def list_schedules(ctx: typer.Context, output_format: OutputOverride = None) -> None:
    """Every schedule, with its next run."""
    session = session_for(ctx, output_format)
    payload = session.client().get("/schedules")
    output.print_json(payload) if session.json else output.schedules_table(payload.get("schedules") or [])


@schedules.command("get")
@reports_errors
def get_schedule(ctx: typer.Context, name: Name, output_format: OutputOverride = None) -> None:
    """One schedule, its next runs and its last 10 runs."""
    session = session_for(ctx, output_format)
    _show(session, session.client().get(f"/schedules/{segment(name)}"))


@schedules.command("create")
@reports_errors
def create_schedule(
    ctx: typer.Context,
    name: Name,
    operation: Annotated[
        str, typer.Argument(metavar="OPERATION", help="the operation (jobrelay operations lists them)", show_default=False)
    ],
    params: Annotated[
        list[str] | None,
        typer.Argument(metavar="KEY=VALUE", help="params, as for submit; text may hold {{yesterday}} and the other placeholders"),
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="EventBridge cron, e.g. '30 2 * * ? *'")] = None,
    rate: Annotated[str | None, typer.Option("--rate", help="e.g. '15 minutes', '1 day'")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="an IANA name (default UTC)")] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params-file", exists=True, dir_okay=False, help="a JSON object of params")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="the vendor account (default: default)")] = None,
    callback_url: Annotated[str | None, typer.Option("--callback-url", help="POSTed each job's summary when it ends")] = None,
    timeout: Timeout = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="create it paused (enabled: false)")] = False,
    output_format: OutputOverride = None,
) -> None:
    """Create a schedule that submits a job at every time of --cron or --rate (POST /schedules)."""
    if (cron is None) == (rate is None):
        raise UsageError("give exactly one of --cron and --rate")
    session = session_for(ctx, output_format)
    client = session.client()
    catalogue = {op["name"]: op for op in client.get("/operations").get("operations") or []}
    if operation not in catalogue:
        raise UsageError(f"unknown operation {operation!r}", {"known operations": sorted(catalogue)})
    body: dict[str, Any] = {
        "name": name,
        "operation": operation,
        "params": parse_params(operation, catalogue[operation]["params_schema"], params or [], params_file),
        "enabled": not paused,
    }
    optional = {
        "cron": cron,
        "rate": rate,
        "timezone": timezone,
        "account": account,
        "callback_url": callback_url,
        "timeout_seconds": timeout,
        "description": description,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    _show(session, client.call("POST", "/schedules", body=body))


@schedules.command("delete")
@reports_errors
def delete_schedule(ctx: typer.Context, name: Name) -> None:
    """Delete a schedule (its jobs are kept)."""
    session_of(ctx).client().call("DELETE", f"/schedules/{segment(name)}")
    output.note(f"deleted schedule {name}")


@schedules.command("pause")
@reports_errors
def pause_schedule(ctx: typer.Context, name: Name, output_format: OutputOverride = None) -> None:
    """Stop a schedule firing (PATCH enabled: false); it stays listed."""
    session = session_for(ctx, output_format)
    _show(session, session.client().call("PATCH", f"/schedules/{segment(name)}", body={"enabled": False}))


@schedules.command("resume")
@reports_errors
def resume_schedule(ctx: typer.Context, name: Name, output_format: OutputOverride = None) -> None:
    """Let a paused schedule fire again (PATCH enabled: true)."""
    session = session_for(ctx, output_format)
    _show(session, session.client().call("PATCH", f"/schedules/{segment(name)}", body={"enabled": True}))


@schedules.command("run")
@reports_errors
def run_schedule(ctx: typer.Context, name: Name, output_format: OutputOverride = None) -> None:
    """Submit the schedule's job now, even when paused (POST /schedules/{name}/run)."""
    session = session_for(ctx, output_format)
    job = session.client().call("POST", f"/schedules/{segment(name)}/run")
    if session.json:
        output.print_json(job)
        return
    typer.echo(f"submitted {job['job_id']} ({job['status']})")
    output.note(f"follow it with: {session.command('watch', job['job_id'])}")
