"""What would reach CloudWatch: the functions' metrics, as the Embedded Metric Format lines they print
(jobrelay.adapters.emf_metrics), kept in a file by the local stack (`make run` names it in its
banner) and summed up here.

    python -m devstack.metrics [.devstack/metrics.emf.jsonl]

prints one line per metric and dimension values: how many values, their sum, and for times their
average and maximum. `make run` prints the same when it stops.
"""

import json
import sys
from collections.abc import Iterable
from pathlib import Path

DEFAULT_FILE = Path(".devstack/metrics.emf.jsonl")
_TIMES = {"Seconds", "Milliseconds"}


def emf_documents(lines: Iterable[str]) -> list[dict]:
    """The EMF documents among `lines` (a Lambda's log: EMF and log lines mixed)."""
    documents = []
    for line in lines:
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict) and isinstance(document.get("_aws"), dict):
                documents.append(document)
    return documents


def summary(documents: Iterable[dict]) -> str:
    totals: dict[tuple[str, str, str], list[float]] = {}
    for document in documents:
        for directive in document["_aws"].get("CloudWatchMetrics", []):
            names = sorted({name for names in directive.get("Dimensions", []) for name in names} - {"service"})
            dimensions = " ".join(f"{name}={document.get(name)}" for name in names)
            for metric in directive.get("Metrics", []):
                values = document.get(metric["Name"], [])
                key = (metric["Name"], metric.get("Unit", ""), dimensions)
                totals.setdefault(key, []).extend(values if isinstance(values, list) else [values])
    if not totals:
        return "no metrics emitted"
    rows = []
    for (name, unit, dimensions), values in sorted(totals.items()):
        figures = f"n={len(values)} sum={sum(values):g}"
        if unit in _TIMES:
            figures = f"n={len(values)} avg={sum(values) / len(values):.1f} max={max(values):.1f} {unit.lower()}"
        rows.append((f"{name} {dimensions}".strip(), figures))
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {figures}" for label, figures in rows)


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    path = Path(arguments[0]) if arguments else DEFAULT_FILE
    if not path.exists():
        print(f"devstack: no metrics file at {path} (make run writes it)", file=sys.stderr)
        return 1
    with path.open(encoding="utf-8") as lines:
        print(summary(emf_documents(lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
