"""What the commands print: `--output table` (Rich tables for people) or `--output json` (the API's
JSON as it came, for scripts). Errors and hints go to stderr, so stdout stays parseable."""

import json
import sys
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobrelay_cli.models import Job
from jobrelay_cli.schemas import Schema, choice_rules, label, params_of

WIDE_ENOUGH = 200  # columns when stdout is not a terminal: Rich's default 80 would wrap job ids


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def console() -> Console:
    """A console on the current stdout (made per use: tests swap sys.stdout). No markup: the API's
    notes and params may hold brackets."""
    return Console(width=None if stdout_is_terminal() else WIDE_ENOUGH, highlight=False, markup=False)


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def print_json_line(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))


def note(message: str) -> None:
    """A line for people, on stderr."""
    typer.echo(message, err=True)


# --- operations ------------------------------------------------------------------------------------


def operations_table(operations: list[dict[str, Any]]) -> None:
    table = Table("operation", "vendor", "params (* required)", "description", box=None, pad_edge=False)
    for op in operations:
        params = params_of(op.get("params_schema") or {})
        names = ", ".join(name + ("*" if param.required else "") for name, param in params.items())
        table.add_row(op["name"], op.get("vendor", ""), names, _first_line(op.get("description", "")))
    console().print(table)


def operation_detail(op: dict[str, Any]) -> None:
    out = console()
    schema: Schema = op.get("params_schema") or {}
    out.print(Text(op["name"], style="bold") + Text(f" ({op.get('vendor', '')})"))
    out.print(op.get("description", ""))
    table = Table("param", "type", "required", "default", "description", box=None, pad_edge=False)
    for name, param in params_of(schema).items():
        kind = " or ".join(label(variant, schema) for variant in param.variants) or "any"
        default = "" if param.required or param.default is None else json.dumps(param.default)
        table.add_row(name, kind, "yes" if param.required else "", default, param.description)
    out.print(table)
    for keyword, choices in choice_rules(schema):
        rule = "exactly one of" if keyword == "oneOf" else "at least one of"
        out.print(f"give {rule}: " + "; ".join(str(choice) for choice in choices))


# --- jobs ------------------------------------------------------------------------------------------


def jobs_table(jobs: list[Job]) -> None:
    table = Table("job_id", "status", "operation", "account", "created", "percent", "note", box=None, pad_edge=False)
    for job in jobs:
        percent = "" if job.progress.percent is None else f"{job.progress.percent:g}%"
        table.add_row(job.job_id, job.status, job.operation, job.account, _time(job.created_at), percent, job.progress.note or "")
    console().print(table)


def job_detail(job: Job, payload: dict[str, Any]) -> None:
    out = console()
    facts = Table.grid(padding=(0, 2))
    facts.add_row("job", job.job_id)
    facts.add_row("operation", f"{job.operation} (account {job.account})")
    facts.add_row("status", job.status + (f" ({job.progress.phase})" if job.progress.phase else ""))
    facts.add_row("created", _time(job.created_at))
    if job.progress.percent is not None:
        facts.add_row("percent", f"{job.progress.percent:g}%")
    if job.progress.note:
        facts.add_row("note", job.progress.note)
    for name in ("counts", "records"):
        if numbers := getattr(job.progress, name):
            facts.add_row(name, ", ".join(f"{key} {value}" for key, value in numbers.items()))
    if job.error:
        facts.add_row("error", f"{job.error.code}: {job.error.message}")
    reconciliation = payload.get("reconciliation") or {}
    if reconciliation:
        reconciled = reconciliation.get("reconciled")
        facts.add_row("reconciled", "yes" if reconciled is True else "no" if reconciled is False else "no vendor count to check")
        for sentence in reconciliation.get("shortfall") or []:
            facts.add_row("shortfall", str(sentence))
    if schedule := payload.get("schedule"):
        facts.add_row("schedule", f"{schedule.get('name')} (run of {schedule.get('scheduled_time')})")
    out.print(facts)
    if job.result:
        files = Table("file", "size", "sha256", box=None, pad_edge=False, title="result", title_justify="left")
        for file in job.result.all_files():
            files.add_row(file.name, f"{file.size:,}", file.sha256)
        out.print(files)


def timeline_table(job: Job) -> None:
    table = Table("at", "event", "detail", box=None, pad_edge=False)
    for event in job.timeline or []:
        detail = json.dumps(event.detail, ensure_ascii=False) if event.detail else ""
        table.add_row(_time(event.at), event.event, detail)
    console().print(table)


# --- schedules -------------------------------------------------------------------------------------


def schedules_table(schedules: list[dict[str, Any]]) -> None:
    table = Table("name", "enabled", "expression", "timezone", "operation", "next run", box=None, pad_edge=False)
    for schedule in schedules:
        next_runs = schedule.get("next_run_at") or []
        table.add_row(
            schedule["name"],
            "yes" if schedule.get("enabled") else "no (paused)",
            schedule.get("expression", ""),
            schedule.get("timezone", ""),
            schedule.get("operation", ""),
            str(next_runs[0]) if next_runs else "",
        )
    console().print(table)


def schedule_detail(schedule: dict[str, Any]) -> None:
    out = console()
    facts = Table.grid(padding=(0, 2))
    for key in ("name", "expression", "timezone", "operation", "account", "description", "callback_url"):
        if schedule.get(key) is not None:
            facts.add_row(key, str(schedule[key]))
    facts.add_row("enabled", "yes" if schedule.get("enabled") else "no (paused)")
    facts.add_row("params", json.dumps(schedule.get("params") or {}, ensure_ascii=False))
    if schedule.get("timeout_seconds") is not None:
        facts.add_row("timeout_seconds", str(schedule["timeout_seconds"]))
    for when in schedule.get("next_run_at") or []:
        facts.add_row("next run", str(when))
    out.print(facts)
    runs = schedule.get("last_runs")
    if runs:
        table = Table("scheduled", "job_id", "status", "error", box=None, pad_edge=False, title="last runs", title_justify="left")
        for run in runs:
            error = run.get("error") or {}
            table.add_row(
                str(run.get("scheduled_time")),
                run.get("job_id") or "",
                run.get("status") or "",
                f"{error.get('code')}: {error.get('message')}" if error else "",
            )
        out.print(table)


# --- failed records, streamed: one line each as it arrives, in fixed columns --------------------------


def failure_header() -> None:
    typer.echo(f"{'file':<26} {'line':>7}  {'stage':<10}  {'key':<20}  reasons")


def failure_row(file_name: str, record: dict[str, Any]) -> None:
    reasons = record.get("reasons") or record.get("warnings") or []
    text = "; ".join(str(reason) for reason in reasons) if isinstance(reasons, list) else str(reasons)
    stage = record.get("stage") or ("warning" if "warnings" in record else "")
    key = "" if record.get("key") is None else str(record["key"])
    typer.echo(f"{file_name:<26} {record.get('line', ''):>7}  {stage:<10}  {key:<20}  {text}")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
