"""Cold start: what importing each handler module costs, against `import boto3` alone.

Budget (docs/DESIGN.md): at most 1.5x. Each figure is the median of fresh interpreter runs, measured
inside the process (interpreter start-up excluded, as it is the same for both).

Our modules are compiled first (compileall), so that they are imported from bytecode as boto3 is
(pip compiles what it installs): otherwise a module changed since its last import would be compiled
in every run (this machine sets PYTHONDONTWRITEBYTECODE), and the figures would depend on which
files were edited last. What an import costs when no bytecode ships with the code, as a `sam build`
of the functions' and the layer's own sources leaves it, is shown too: a copy without bytecode.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
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


def import_seconds(module: str, paths: list[str], env: dict[str, str] | None = None) -> float:
    return _median(_SNIPPET.format(paths=paths, module=module), env)


def _median(code: str, env: dict[str, str] | None = None) -> float:
    samples = [
        # The figure is the last line: a handler run may log before it (the API's request line).
        float(
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout.split()[-1]
        )
        for _ in range(RUNS)
    ]
    return statistics.median(samples)


def _without_bytecode(function: str) -> float:
    """Importing the function's handler from a copy of its sources and the layer's, with no bytecode
    there and none written: every module of ours compiled on the way, as in each cold start of a
    deployment that ships sources only."""
    with tempfile.TemporaryDirectory() as copy:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / "layers" / "jobrelay", Path(copy) / "layer", ignore=ignore)
        shutil.copytree(REPO / "functions" / function, Path(copy) / "function", ignore=ignore)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        return import_seconds("app", [str(Path(copy) / "layer"), str(Path(copy) / "function")], env)


def run() -> list[str]:
    sources = [str(REPO / "layers" / "jobrelay"), str(REPO / "functions")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True)
    baseline = import_seconds("boto3", [])
    lines = [f"import boto3 (baseline): {baseline * 1000:.0f} ms (median of {RUNS})"]
    measured = {}
    for function in sorted(p.name for p in (REPO / "functions").iterdir() if (p / "app.py").exists()):
        seconds = measured[function] = import_seconds(
            "app", [str(REPO / "layers" / "jobrelay"), str(REPO / "functions" / function)]
        )
        ratio = seconds / baseline
        verdict = "within" if ratio <= BUDGET else "OVER"
        lines.append(
            f"functions/{function}/app.py: {seconds * 1000:.0f} ms = {ratio:.2f}x boto3 ({verdict} the {BUDGET}x budget)"
        )
    slowest = max(measured, key=measured.__getitem__)
    compiling = _without_bytecode(slowest)
    lines.append(
        f"functions/{slowest}/app.py with no bytecode shipped (compiled on import): {compiling * 1000:.0f} ms = "
        f"{compiling / baseline:.2f}x boto3"
    )
    api_paths = [str(REPO / "layers" / "jobrelay"), str(REPO / "functions" / "api")]
    first = _median(_FIRST_REQUEST.format(paths=api_paths, event=str(REPO / "events" / "api_list_operations.json")))
    lines.append(f"functions/api: import + first request (GET /operations, no AWS call): {first * 1000:.0f} ms")
    return lines


if __name__ == "__main__":
    print("\n".join(run()))
