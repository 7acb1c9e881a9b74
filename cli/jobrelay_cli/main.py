"""The `jobrelay` command: a thin Typer layer over the modules beside it.

Global options come before the command (`jobrelay --api-url URL get JOB`); `--output` may also
follow it (`jobrelay get JOB --output json`). Exit codes: 0 ok; 1 an error talking to the API or an
API error answer; 2 a usage error; `watch` (and `submit --watch`): 3 PARTIAL, 4 FAILED, 5 TIMED_OUT,
6 CANCELLED; 130 after Ctrl-C.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from jobrelay_cli import files, output
from jobrelay_cli.client import segment
from jobrelay_cli.errors import CliError, UsageError, reports_errors
from jobrelay_cli.models import read_job
from jobrelay_cli.options import DEFAULT_INTERVAL, OUTPUT_HELP, Interval, JobId, OutputOverride, Timeout, session_for
from jobrelay_cli.params import check_param, parse_params
from jobrelay_cli.schedules import schedules
from jobrelay_cli.session import OutputFormat, Session
from jobrelay_cli.watching import View, watch

app = typer.Typer(
    name="jobrelay",
    help="Submit, follow and collect jobrelay jobs over its HTTP API. "
    "Exit codes: 0 ok, 1 API or network error, 2 usage error; watch: 3 PARTIAL, 4 FAILED, 5 TIMED_OUT, 6 CANCELLED; "
    "130 Ctrl-C.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a local may hold a credential
)
app.add_typer(schedules, name="schedules")


def run() -> None:
    """The console script's entry point."""
    app()


@app.callback()
def main(
    ctx: typer.Context,
    output_format: Annotated[OutputFormat, typer.Option("--output", "-o", help=OUTPUT_HELP)] = OutputFormat.table,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="the API's base URL; else $JOBRELAY_API_URL; else http://127.0.0.1:3000 (make run). "
            "Requests to any host but this machine are SigV4-signed",
            show_default=False,
        ),
    ] = None,
    stack: Annotated[
        str | None, typer.Option("--stack", help="read the API URL from this CloudFormation stack's ApiUrl output")
    ] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile, as the AWS CLI takes it")] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region, as the AWS CLI takes it")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="request lines on stderr (never credentials)")] = False,
) -> None:
    session = Session(output=output_format, api_url=api_url, stack=stack, profile=profile, region=region, debug=debug)
    ctx.obj = session
    ctx.call_on_close(session.close)


# --- the catalogue ---------------------------------------------------------------------------------


@app.command()
@reports_errors
def operations(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(metavar="NAME", help="one operation: its params, their types and which are required")
    ] = None,
    output_format: OutputOverride = None,
) -> None:
    """The operations the API runs, each with its params (GET /operations)."""
    session = session_for(ctx, output_format)
    catalogue = session.client().get("/operations")
    if name is None:
        output.print_json(catalogue) if session.json else output.operations_table(catalogue["operations"])
        return
    operation = _find_operation(catalogue, name)
    output.print_json(operation) if session.json else output.operation_detail(operation)


def _find_operation(catalogue: dict[str, Any], name: str) -> dict[str, Any]:
    known = {op["name"]: op for op in catalogue.get("operations") or []}
    if name not in known:
        raise UsageError(f"unknown operation {name!r}", {"known operations": sorted(known)})
    return known[name]


# --- jobs ------------------------------------------------------------------------------------------


@app.command()
@reports_errors
def submit(
    ctx: typer.Context,
    operation: Annotated[
        str, typer.Argument(metavar="OPERATION", help="the operation (jobrelay operations lists them)", show_default=False)
    ],
    params: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE",
            help="params, typed by the operation's schema: lists as a,b,c or a repeated key, "
            "JSON objects as JSON; key:=json for a raw JSON value",
            show_default=False,
        ),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params-file", exists=True, dir_okay=False, help="a JSON object of params")
    ] = None,
    records: Annotated[
        Path | None,
        typer.Option("--file", exists=True, dir_okay=False, help="a records file to upload; fills the source and format params"),
    ] = None,
    records_format: Annotated[
        str | None, typer.Option("--format", help="the records file's format (csv or jsonl); else from its extension")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="the vendor account (default: default)")] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="the same key and params within 24 h give the same job")
    ] = None,
    callback_url: Annotated[str | None, typer.Option("--callback-url", help="POSTed the job's summary when it ends")] = None,
    timeout: Timeout = None,
    then_watch: Annotated[bool, typer.Option("--watch", help="then watch the job until it ends (exit code as watch)")] = False,
    interval: Interval = DEFAULT_INTERVAL,
    output_format: OutputOverride = None,
) -> None:
    """Submit a job (POST /jobs), its params checked against the operation's schema before anything is sent."""
    session = session_for(ctx, output_format)
    client = session.client()
    schema = _find_operation(client.get("/operations"), operation)["params_schema"]
    supplied: frozenset[str] = frozenset()
    if records is not None:
        if "source" not in (schema.get("properties") or {}):
            raise UsageError(f"{operation} takes no records file (--file is for imports)")
        supplied = frozenset({"source", "format"})
    checked = parse_params(operation, schema, params or [], params_file, supplied)
    if records is not None:
        if "source" in checked:
            raise UsageError("give the records as --file or as source=, not both")
        checked["format"] = files.records_format(records, records_format or checked.get("format"))
        check_param(operation, schema, "format", checked["format"])  # all checked before the upload
        checked["source"] = files.upload_records(client, records, output.stdout_is_terminal() and not session.json)

    body: dict[str, Any] = {"operation": operation, "params": checked}
    optional = {"account": account, "callback_url": callback_url, "timeout_seconds": timeout}
    body.update({key: value for key, value in optional.items() if value is not None})
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    job = client.call("POST", "/jobs", body=body, headers=headers)
    if session.json and not then_watch:
        output.print_json(job)
    elif not session.json:
        typer.echo(f"submitted {job['job_id']} ({job['status']})")
        if not then_watch:
            output.note(f"follow it with: {session.command('watch', job['job_id'])}")
    if then_watch:
        _watch(session, job["job_id"], interval)


@app.command("watch")
@reports_errors
def watch_command(
    ctx: typer.Context, job_id: JobId, interval: Interval = DEFAULT_INTERVAL, output_format: OutputOverride = None
) -> None:
    """Follow a job until it ends: exit 0 SUCCEEDED, 3 PARTIAL, 4 FAILED, 5 TIMED_OUT, 6 CANCELLED (Ctrl-C: 130, the job goes on)."""
    _watch(session_for(ctx, output_format), job_id, interval)


def _watch(session: Session, job_id: str, interval: float) -> None:
    if session.json:
        view = View.QUIET
    else:
        view = View.LIVE if output.stdout_is_terminal() else View.LINES
    outcome = watch(session.client(), job_id, interval=interval, view=view, resume_command=session.command("watch", job_id))
    if session.json and outcome.job is not None:
        output.print_json(outcome.job)
    raise typer.Exit(outcome.exit_code)


@app.command("get")
@reports_errors
def get_job(ctx: typer.Context, job_id: JobId, output_format: OutputOverride = None) -> None:
    """A job: status, progress, result files, error (GET /jobs/{id})."""
    session = session_for(ctx, output_format)
    payload = session.client().get(f"/jobs/{segment(job_id)}")
    output.print_json(payload) if session.json else output.job_detail(read_job(payload), payload)


@app.command("list")
@reports_errors
def list_jobs(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option("--status", help="e.g. running, succeeded (any casing)")] = None,
    operation: Annotated[str | None, typer.Option("--operation", help="an operation's name")] = None,
    account: Annotated[str | None, typer.Option("--account", help="the vendor account")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="jobs per page")] = 20,
    every_page: Annotated[bool, typer.Option("--all", help="follow `next` to the last page")] = False,
    output_format: OutputOverride = None,
) -> None:
    """Jobs, newest first (GET /jobs)."""
    session = session_for(ctx, output_format)
    client = session.client()
    filters = {"status": status, "operation": operation, "account": account, "limit": limit}
    page = client.get("/jobs", **filters)
    jobs = list(page.get("jobs") or [])
    while every_page and page.get("next"):
        page = client.get("/jobs", **filters, next=page["next"])
        jobs.extend(page.get("jobs") or [])
    if session.json:
        output.print_json({"jobs": jobs, "next": page.get("next")})
        return
    output.jobs_table([read_job(job) for job in jobs])
    if page.get("next"):
        output.note("more jobs: --all lists every page")


@app.command()
@reports_errors
def cancel(ctx: typer.Context, job_id: JobId, output_format: OutputOverride = None) -> None:
    """Cancel a job (POST /jobs/{id}/cancel); cancelling a cancelled job is fine, a finished one is an error."""
    session = session_for(ctx, output_format)
    payload = session.client().call("POST", f"/jobs/{segment(job_id)}/cancel")
    output.print_json(payload) if session.json else typer.echo(f"{payload['job_id']} {payload['status']}")


@app.command()
@reports_errors
def timeline(ctx: typer.Context, job_id: JobId, output_format: OutputOverride = None) -> None:
    """A job's timeline: what happened to it, when."""
    session = session_for(ctx, output_format)
    payload = session.client().get(f"/jobs/{segment(job_id)}")
    output.print_json(payload.get("timeline") or []) if session.json else output.timeline_table(read_job(payload))


@app.command()
@reports_errors
def download(
    ctx: typer.Context,
    job_id: JobId,
    out: Annotated[Path, typer.Option("--out", file_okay=False, help="the folder to write the files to")] = Path("."),
    only: Annotated[str | None, typer.Option("--file", help="only this result file (by name)")] = None,
    output_format: OutputOverride = None,
) -> None:
    """Download a job's result files, each checked against its size and SHA-256 before it takes its name."""
    session = session_for(ctx, output_format)
    client = session.client()
    job = read_job(client.get(f"/jobs/{segment(job_id)}"))
    if job.result is None:
        raise CliError(f"{job_id} has no result to download (status {job.status})")
    chosen = job.result.all_files()
    if only is not None:
        chosen = [file for file in chosen if file.name == only]
        if not chosen:
            raise UsageError(f"{job_id} has no result file {only!r}", [file.name for file in job.result.all_files()])
    show_progress = output.stdout_is_terminal() and not session.json
    written = [(file, files.download_verified(client, file, out, show_progress)) for file in chosen]
    if session.json:
        output.print_json(
            {
                "job_id": job_id,
                "files": [{"name": f.name, "path": str(p), "size": f.size, "sha256": f.sha256} for f, p in written],
            }
        )
        return
    for file, path in written:
        typer.echo(f"{path}  {file.size:,} bytes  sha256 {file.sha256} (verified)")


FAILURE_FILES = ("failed_records.jsonl", "validation_warnings.jsonl")


@app.command()
@reports_errors
def failures(ctx: typer.Context, job_id: JobId, output_format: OutputOverride = None) -> None:
    """The records that did not make it (failed_records.jsonl, and validation_warnings.jsonl), streamed:
    a table, or with --output json one JSON object per line as the API stored it."""
    session = session_for(ctx, output_format)
    client = session.client()
    job = read_job(client.get(f"/jobs/{segment(job_id)}"))
    listed = [file for file in (job.result.all_files() if job.result else []) if file.name in FAILURE_FILES]
    if not listed:
        output.note(f"{job_id} ({job.status}) has no failed records")
        return
    if not session.json:
        output.failure_header()
    for file in listed:
        for record in files.stream_records(client, file):
            output.print_json_line(record) if session.json else output.failure_row(file.name, record)
