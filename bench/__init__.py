"""Benchmarks for the budgets in docs/DESIGN.md: `make bench` runs them all and prints the figures.
They measure and report; they never assert timings (that is not what tests are for)."""

import sys
from pathlib import Path

# The layer imports as it does in Lambda.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "jobrelay"))
