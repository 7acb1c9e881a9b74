"""Cold start: what importing each handler module costs, against `import boto3` alone.

Budget (docs/DESIGN.md): at most 1.5x. Each figure is the median of fresh interpreter runs, measured
inside the process (interpreter start-up excluded, as it is the same for both).
"""

import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = 7
BUDGET = 1.5

_SNIPPET = """
import sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
import {module}
print(time.perf_counter() - started)
"""


# The API function defers its router (Powertools' validation and OpenAPI) to the first request;
# this shows what that first request costs on top, so nothing is hidden by the deferral.
_FIRST_REQUEST = """
import json, sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
import app
event = json.load(open({event!r}))
answer = app.handler(event, type("Context", (), {{"function_name": "api", "memory_limit_in_mb": 512,
    "invoked_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:api", "aws_request_id": "bench"}})())
assert answer["statusCode"] == 200, answer
print(time.perf_counter() - started)
"""


def import_seconds(module: str, paths: list[str]) -> float:
    return _median(_SNIPPET.format(paths=paths, module=module))


def _median(code: str) -> float:
    samples = [
        # The figure is the last line: a handler run may log before it (the API's request line).
        float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()[-1])
        for _ in range(RUNS)
    ]
    return statistics.median(samples)


def run() -> list[str]:
    baseline = import_seconds("boto3", [])
    lines = [f"import boto3 (baseline): {baseline * 1000:.0f} ms (median of {RUNS})"]
    for function in sorted(p.name for p in (REPO / "functions").iterdir() if (p / "app.py").exists()):
        seconds = import_seconds("app", [str(REPO / "layers" / "jobrelay"), str(REPO / "functions" / function)])
        ratio = seconds / baseline
        verdict = "within" if ratio <= BUDGET else "OVER"
        lines.append(
            f"functions/{function}/app.py: {seconds * 1000:.0f} ms = {ratio:.2f}x boto3 ({verdict} the {BUDGET}x budget)"
        )
    api_paths = [str(REPO / "layers" / "jobrelay"), str(REPO / "functions" / "api")]
    first = _median(_FIRST_REQUEST.format(paths=api_paths, event=str(REPO / "events" / "api_list_operations.json")))
    lines.append(f"functions/api: import + first request (GET /operations, no AWS call): {first * 1000:.0f} ms")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
