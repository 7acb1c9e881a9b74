"""`python -m devstack` (make run): start the local stack, say where everything is and what to try
against it, run until Ctrl-C or SIGTERM. With --ready-file, the stack's addresses are written there
as JSON once it is ready (the end-to-end tests wait for that file).

Every port is an option (`make run ARGS='--port 3001'`) and an environment variable (JOBRELAY_PORT,
JOBRELAY_MOTO_PORT, JOBRELAY_<VENDOR>_PORT); 0 picks a free one. A port that is taken ends the start
with one line naming it and how to change it (exit code 2, as for a template the stack cannot run)."""

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.metrics import DEFAULT_FILE as METRICS_FILE
from devstack.metrics import emf_documents, summary
from devstack.samples import SAMPLES
from devstack.stack import PROFILES, VENDORS, LocalStack, PortUnavailable, SandboxFactory, describe_role
from devstack.template import DEFAULT_TEMPLATE, TemplateError

EXIT_CANNOT_START = 2  # a template the stack cannot run, a port it cannot bind


@dataclass(frozen=True)
class PortOption:
    """How a user sets the port of one of the stack's servers (a `PortUnavailable.role`)."""

    flags: list[str]  # the first is the one messages name
    destination: str
    variable: str  # the environment variable giving its default
    default: int


def port_option_table() -> dict[str, PortOption]:
    return {
        "api": PortOption(["--port"], "port", "JOBRELAY_PORT", 3000),
        "moto": PortOption(["--moto-port"], "moto_port", "JOBRELAY_MOTO_PORT", 5000),
        **{
            name: PortOption(
                # The vendor's own name first: clearer than Pinpointe's older --sandbox-port.
                sorted(port_options(name), key=lambda flag: flag != f"--{name}-port"),
                port_destination(name),
                f"JOBRELAY_{name.upper()}_PORT",
                vendor.default_port,
            )
            for name, vendor in VENDORS.items()
        },
    }


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address every server binds (default: %(default)s)")
    for role, option in port_option_table().items():
        parser.add_argument(
            *option.flags,
            dest=option.destination,
            type=int,
            default=_port_from_environment(parser, option),
            metavar="PORT",
            help=f"the port of {describe_role(role)}, 0 picks a free one (default: %(default)s; "
            f"${option.variable} sets the default)",
        )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="run",
        help="timings: run (make run) or test (default: %(default)s)",
    )
    parser.add_argument(
        "--time-scale", type=float, help="1.0 is real time, 0.05 makes waits 20 times shorter (default: the profile's)"
    )
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="the SAM template (default: the repository's)")
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as with sam deploy --parameter-overrides",
    )
    parser.add_argument("--ready-file", type=Path, help="write the stack's addresses here, as JSON, once it is ready")
    parser.add_argument(
        "--metrics-file",
        type=Path,
        default=METRICS_FILE,
        help="where the functions' metrics (the EMF lines CloudWatch would get) are kept; summed up at Ctrl-C "
        "(default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="also log every request moto serves")
    arguments = parser.parse_args(argv)
    try:
        arguments.parameter_overrides = dict(item.split("=", 1) for item in arguments.parameter_overrides)
    except ValueError:
        parser.error("--parameter-overrides takes KEY=VALUE pairs")
    return arguments


def _port_from_environment(parser: argparse.ArgumentParser, option: PortOption) -> int:
    value = os.environ.get(option.variable, "").strip()
    if not value:
        return option.default
    if not value.isdigit() or int(value) > 65535:
        parser.error(f"{option.variable}={value!r} is not a port number (0 picks a free one)")
    return int(value)


def port_advice(error: PortUnavailable) -> str:
    """One line: which port, for what, and how to start with another."""
    option = port_option_table()[error.role]
    flag = option.flags[0]
    return f"devstack: {error}; start with {flag} N, or make run ARGS='{flag} N' (or {option.variable}=N; 0 picks a free port)"


def port_options(vendor: str) -> list[str]:
    """--<vendor>-port; Pinpointe's is also --sandbox-port, from when it was the only sandbox."""
    return ["--sandbox-port", "--pinpointe-port"] if vendor == "pinpointe" else [f"--{vendor}-port"]


def port_destination(vendor: str) -> str:
    return f"{vendor}_port"


def free_port_arguments() -> list[str]:
    """Every port of the stack picked free (tests use it, so they never collide with `make run`)."""
    return ["--port", "0", "--moto-port", "0", *(arg for name in VENDORS for arg in (port_options(name)[0], "0"))]


def configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("devstack").setLevel(logging.INFO)  # the front door's access log
    # werkzeug logs every request moto serves at INFO (it sets INFO itself only if no level is set).
    logging.getLogger("werkzeug").setLevel(level)
    if not verbose:
        # moto's interpreter logs every failure inside an execution, caught and retried ones too,
        # as an ERROR with the whole state's repr; the execution history says the same, readably.
        logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)


def aws_exports(info: Mapping[str, Any]) -> str:
    """The shell line that points the AWS CLI and boto3 at moto: the endpoint, the region under both
    names (boto3 and CLI v1 read AWS_DEFAULT_REGION, CLI v2 and the other SDKs AWS_REGION) and the
    fake credentials (without any, both refuse to send a request; these are the ones the stack's
    presigned URLs are checked with)."""
    credentials = info["credentials"]
    variables = {
        "AWS_ENDPOINT_URL": info["moto_url"],
        "AWS_DEFAULT_REGION": info["region"],
        "AWS_REGION": info["region"],
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
    }
    return "export " + " ".join(f"{name}={shlex.quote(str(value))}" for name, value in variables.items())


def banner(stack: LocalStack) -> str:
    """What `make run` prints once the stack is up: where everything is, and what to try."""
    info = stack.ready_info()
    api = info["api_url"]
    secret_name, signing_secret = stack.callback_secret
    rows = [
        ("HTTP API", api),
        ("moto (AWS APIs)", info["moto_url"]),
        *(
            (f"{VENDORS[name].title} sandbox", f"{url}   (faults: {url}/_sandbox/config)")
            for name, url in info["sandboxes"].items()
        ),
        ("results bucket", info["bucket"]),
        ("jobs table", info["table"]),
        ("state machine", info["state_machine_arn"]),
        *(
            [("metrics (EMF)", f"{_shown_path(Path(info['metrics_file']))}   (summed up: python -m devstack.metrics)")]
            if info.get("metrics_file")
            else []
        ),
    ]
    width = max(len(label) for label, _ in rows)
    fixtures = [(VENDORS[name].title, line) for name, lines in stack.sandbox_fixtures().items() for line in lines]
    fixture_width = max((len(title) for title, _ in fixtures), default=0)
    sample_width = max(len(_shown_path(sample.path)) for sample in SAMPLES)
    submission = json.dumps({"operation": "pinpointe.newsletter_contact_data_summary", "params": {"stat": "4711"}})
    example = SAMPLES[-1]
    return "\n".join(
        [
            "",
            f"jobrelay local stack is ready (template {stack.template_path}, time scale {stack.time_scale})",
            "",
            *(f"  {label:<{width}}  {value}" for label, value in rows),
            "",
            "The AWS CLI and boto3 against moto (fake credentials; paste into your shell):",
            f"  {aws_exports(info)}",
            f"  aws secretsmanager get-secret-value --secret-id {secret_name} --query SecretString --output text",
            "",
            f"Callbacks are signed with the secret {secret_name} (a local fake, new at every start):",
            f"  {signing_secret}",
            "",
            *(["What the sandboxes hold:"] if fixtures else []),
            *(f"  {title:<{fixture_width}}  {line}" for title, line in fixtures),
            *([""] if fixtures else []),
            "Submit a job:",
            f"  curl -s -X POST {api}/jobs -H 'content-type: application/json' -d {shlex.quote(submission)}",
            "Read it (job_id from the answer):",
            f"  curl -s {api}/jobs/JOB_ID",
            "",
            "Sample records files, and the job that imports each once uploaded (its s3_uri as source):",
            *(f"  {_shown_path(sample.path):<{sample_width}}  {json.dumps(sample.job('<s3_uri>'))}" for sample in SAMPLES),
            "Upload one: POST /uploads, then PUT the file to upload_url with exactly the answer's headers",
            "(the URL is signed with them: without them the PUT is refused, here as on S3):",
            f"  curl -s -X POST {api}/uploads -H 'content-type: application/json' "
            f"-d {shlex.quote(json.dumps({'filename': example.path.name}))}",
            f"  curl -s -X PUT 'UPLOAD_URL' -H 'Content-Type: CONTENT_TYPE' --data-binary @{_shown_path(example.path)}",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def _shown_path(path: Path) -> str:
    """`path` as a user types it from here: relative when it is under the current folder."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def write_ready_file(path: Path, info: dict[str, object]) -> None:
    """Write whole or not at all: a reader polling for the file never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=2), encoding="utf-8")
    os.replace(partial, path)


def print_metrics_summary(path: Path | None) -> None:
    """What would have reached CloudWatch while the stack ran."""
    if path is None or not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        print(f"devstack: metrics emitted (EMF lines in {_shown_path(path)}):\n{summary(emf_documents(lines))}", file=sys.stderr)


def serve(stack: LocalStack, ready_file: Path | None = None) -> int:
    """Run `stack` until SIGINT or SIGTERM; 2 if the template cannot run locally."""
    stopping = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopping.set())
    try:
        stack.start()
    except TemplateError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return EXIT_CANNOT_START
    except PortUnavailable as error:
        print(port_advice(error), file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        print(banner(stack), flush=True)
        if ready_file is not None:
            write_ready_file(ready_file, stack.ready_info())
        stopping.wait()
        print("devstack: stopping", file=sys.stderr, flush=True)
        print_metrics_summary(stack.metrics_file)
    finally:
        stack.stop()
    return 0


def main(argv: list[str] | None = None, sandbox_factories: Mapping[str, SandboxFactory] | None = None) -> int:
    """`sandbox_factories`: stand-ins for some of `VENDORS`' sandboxes, by name (the tests')."""
    arguments = parse_arguments(argv)
    configure_logging(arguments.verbose)
    stack = LocalStack(
        template_path=arguments.template,
        profile=arguments.profile,
        host=arguments.host,
        api_port=arguments.port,
        moto_port=arguments.moto_port,
        sandbox_ports={name: getattr(arguments, port_destination(name)) for name in VENDORS},
        time_scale=arguments.time_scale,
        parameter_overrides=arguments.parameter_overrides,
        sandbox_factories=sandbox_factories,
        metrics_file=arguments.metrics_file,
    )
    return serve(stack, arguments.ready_file)


if __name__ == "__main__":
    sys.exit(main())
