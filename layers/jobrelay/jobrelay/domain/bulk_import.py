"""The values of a bulk import: the vendor's batch limits, a record that did not make it, what a
stage request got back, and our own totals when the import ends."""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BatchLimits:
    """How a vendor wants records cut into stage requests."""

    max_bytes: int  # encoded size of one stage request body
    max_records: int | None = None  # records in one stage request, if the vendor caps it
    max_total_records: int | None = None  # records in one import, if the vendor caps it


@dataclass
class RecordFailure:
    """One record that did not make it, as the user sees it in failed_records.jsonl."""

    line: int | None  # 1-based line of the source file (the CSV header is line 1)
    key: str | None  # the record's identifying value (email, alternate id, ...), when it has one
    stage: str  # "validation": refused by us, never sent; "vendor": refused by the vendor (staging or run)
    reasons: list[str]


@dataclass
class StagedBatch:
    """What the vendor said after one stage request: its running counters (if it keeps any), and
    its warnings about single records: (0-based position in the batch, warnings)."""

    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[tuple[int, list[str]]] = field(default_factory=list)


@dataclass(frozen=True)
class ImportTotals:
    """Our own counts of an import when it ends."""

    read: int  # records read from the file
    refused: int  # refused by our checks, or over the vendor's per-import limit: never sent
    sent: int  # records staged at the vendor
    listed_failures: int  # records the vendor listed as failed (VendorImports.failures)
    warnings: int  # the vendor's per-record warnings
