"""README's examples run as written: every ```sh block that talks to the local stack
(`localhost:3000`) is executed with bash against the stack the suite started, so an example that
stops working fails the suite instead of a new user.

Two substitutions only, both of what cannot be the same here as on a user's machine: the stack's
ports (free ones, chosen by the suite) and `curl -s` made `curl -sSf`, so that any answer that is
not 2xx fails the block. A block whose last line's comment promises `"status": "SUCCEEDED"` must
print a job with that status.
"""

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DEFAULT_PORTS = {"api_url": 3000, "pinpointe_url": 3100, "mypreferences_url": 3200, "which50_url": 3300}
SUCCEEDED = re.compile(r'"status":\s*"SUCCEEDED"')


def readme_blocks() -> list[tuple[int, str]]:
    """(line number, text) of every sh block that calls the local stack's API."""
    text = README.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(r"^```sh\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE):
        if "localhost:3000" in match.group(1):
            blocks.append((text[: match.start()].count("\n") + 1, match.group(1)))
    return blocks


BLOCKS = readme_blocks()


def test_the_readme_has_examples_to_run():
    assert len(BLOCKS) >= 3, BLOCKS


@pytest.mark.parametrize(("line", "block"), BLOCKS, ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_a_readme_example_works_as_written(line, block, stack):
    script = block.replace("curl -s ", "curl -sSf ")
    for key, port in DEFAULT_PORTS.items():
        script = script.replace(f"localhost:{port}", stack[key].removeprefix("http://"))
    run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=180)

    assert run.returncode == 0, f"README.md:{line} failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    last_line = block.strip().splitlines()[-1]
    if SUCCEEDED.search(last_line.partition("#")[2]):
        assert SUCCEEDED.search(run.stdout), f"README.md:{line} promises a SUCCEEDED job:\n{run.stdout[-3000:]}"
