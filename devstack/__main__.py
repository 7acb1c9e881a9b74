"""`python -m devstack` (make run): start the local stack, say where everything is, run until
Ctrl-C or SIGTERM. With --ready-file, the stack's addresses are written there as JSON once it
is ready (the end-to-end tests wait for that file)."""

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from devstack.stack import PROFILES, VENDORS, LocalStack, SandboxFactory
from devstack.template import DEFAULT_TEMPLATE, TemplateError


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address every server binds (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=3000, help="HTTP API port, 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--moto-port", type=int, default=5000, help="moto's port, 0 picks a free one (default: %(default)s)"
    )
    for name, vendor in VENDORS.items():
        parser.add_argument(
            *port_options(name),
            dest=port_destination(name),
            type=int,
            default=vendor.default_port,
            metavar="PORT",
            help=f"the {vendor.title} sandbox's port, 0 picks a free one (default: %(default)s)",
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
    parser.add_argument(
        "--template", type=Path, default=DEFAULT_TEMPLATE, help="the SAM template (default: the repository's)"
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as with sam deploy --parameter-overrides",
    )
    parser.add_argument("--ready-file", type=Path, help="write the stack's addresses here, as JSON, once it is ready")
    parser.add_argument("--verbose", action="store_true", help="also log every request moto serves")
    arguments = parser.parse_args(argv)
    try:
        arguments.parameter_overrides = dict(item.split("=", 1) for item in arguments.parameter_overrides)
    except ValueError:
        parser.error("--parameter-overrides takes KEY=VALUE pairs")
    return arguments


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


def banner(stack: LocalStack) -> str:
    info = stack.ready_info()
    aws_environment = (
        f"AWS_ENDPOINT_URL={info['moto_url']} AWS_REGION={info['region']} "
        "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    )
    rows = [
        ("HTTP API", info["api_url"]),
        ("moto (AWS APIs)", info["moto_url"]),
        ("", f"export {aws_environment}"),
        *(
            (f"{VENDORS[name].title} sandbox", f"{url}   (faults: {url}/_sandbox/config)")
            for name, url in info["sandboxes"].items()
        ),
        ("results bucket", info["bucket"]),
        ("jobs table", info["table"]),
        ("state machine", info["state_machine_arn"]),
    ]
    width = max(len(label) for label, _ in rows)
    submission = json.dumps({"operation": "pinpointe.newsletter_contact_data_summary", "params": {"stat": "4711"}})
    return "\n".join(
        [
            "",
            f"jobrelay local stack is ready (template {stack.template_path}, time scale {stack.time_scale})",
            "",
            *(f"  {label:<{width}}  {value}" for label, value in rows),
            "",
            "Submit a job:",
            f"  curl -s -X POST {info['api_url']}/jobs -H 'content-type: application/json' -d {shlex.quote(submission)}",
            "Read it (job_id from the answer):",
            f"  curl -s {info['api_url']}/jobs/JOB_ID",
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def write_ready_file(path: Path, info: dict[str, object]) -> None:
    """Write whole or not at all: a reader polling for the file never sees half of it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=2), encoding="utf-8")
    os.replace(partial, path)


def serve(stack: LocalStack, ready_file: Path | None = None) -> int:
    """Run `stack` until SIGINT or SIGTERM; 2 if the template cannot run locally."""
    stopping = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stopping.set())
    try:
        stack.start()
    except TemplateError as error:
        print(f"devstack: {error}", file=sys.stderr)
        return 2
    try:
        print(banner(stack), flush=True)
        if ready_file is not None:
            write_ready_file(ready_file, stack.ready_info())
        stopping.wait()
        print("devstack: stopping", file=sys.stderr, flush=True)
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
    )
    return serve(stack, arguments.ready_file)


if __name__ == "__main__":
    sys.exit(main())
