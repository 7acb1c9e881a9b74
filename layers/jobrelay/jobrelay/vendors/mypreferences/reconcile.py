"""A finished MyPreferences import checked against its own counts (docs/VENDORS.md 2.3.4, 2.5: "compare
ValidationFailed, Exceptions and NotHonored with the totals").

The counts are the vendor's final BulkImportStatus counters, under the names of
BulkImportStatus.counts(), from the poll that found the import done. Each check that can be made
is made; each reason records did not make it is one shortfall sentence. Where the docs leave a
reading open (NotHonored, see api.py's ASSUMPTIONS), either reading is accepted only when the
counts fit it, and the check's note says which one they fit.
"""

from collections.abc import Mapping

from jobrelay.domain.bulk_import import ImportTotals
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.vendor_outcomes import VendorState
from jobrelay.vendors.mypreferences.api import STATUS_TABLE, read_status
from jobrelay.vendors.reading import fold


def reconcile_import(counts: Mapping[str, int], status_word: str | None, totals: ImportTotals, rec: Reconciler) -> None:
    received = counts.get("received")
    passed = counts.get("validation_ok")
    refused = counts.get("validation_failed")
    processed = counts.get("processed")
    pending = counts.get("pending")
    exceptions = counts.get("exceptions")
    not_honored = counts.get("not_honored") or 0

    rec.check(
        "records staged vs MyPreferences' TotalRecordsReceived",
        totals.sent,
        received,
        explain=f"we staged {totals.sent} records but MyPreferences counts {received} received",
    )
    rec.check(
        "TotalRecordsReceived vs ValidationSuccessful + ValidationFailed",
        received,
        _sum(passed, refused),
        explain=f"MyPreferences received {received} records but counts {_sum(passed, refused)} as validated "
        f"({passed} passed, {refused} failed)",
    )
    listed = _either_reading(
        rec,
        "records listed as failed vs ValidationFailed + Exceptions (+ NotHonored)",
        totals.listed_failures,
        _sum(refused, exceptions),
        not_honored,
        counted_as="listed among the exceptions",
        left_out_as="not listed among the exceptions",
        explain=lambda expected: (
            f"MyPreferences listed {totals.listed_failures} failed records but its counts "
            f"make {expected} ({refused} failed validation, {exceptions} exceptions, {not_honored} not honoured)"
        ),
    )
    _either_reading(
        rec,
        "ValidationSuccessful vs Processed + Exceptions (+ NotHonored)",
        passed,
        _sum(processed, exceptions),
        not_honored,
        counted_as="counted apart from Processed",
        left_out_as="counted among Processed",
        explain=lambda expected: (
            f"{passed} records passed MyPreferences' validation but only {expected} are "
            f"accounted for ({processed} processed, {exceptions} exceptions, {not_honored} not honoured)"
        ),
    )
    rec.check(
        "records still Pending once MyPreferences said the import ended",
        0,
        pending,
        explain=f"MyPreferences says the import ended but still counts {pending} records pending: its counts are not final",
    )

    if refused:
        rec.short(
            f"{refused} records failed MyPreferences' validation at staging and were not imported (see failed_records.jsonl)"
        )
    if exceptions:
        rec.short(f"{exceptions} records became exceptions while MyPreferences imported them (see failed_records.jsonl)")
    if not_honored:
        where = "" if listed is None else " (see failed_records.jsonl)" if listed else "; MyPreferences does not list which ones"
        rec.short(f"{not_honored} records were not honoured by MyPreferences during the import{where}")
    _qualified_status(status_word, processed or 0, rec)


def _qualified_status(status_word: str | None, processed: int, rec: Reconciler) -> None:
    """A done status that is not plainly "completed" (see api.py's STATUS_TABLE) is a shortfall of
    its own, whatever the counts say."""
    reading = read_status(status_word, processed)
    if reading.state is not VendorState.DONE or not reading.qualified:
        return
    if STATUS_TABLE.get(fold(status_word or "")) is VendorState.FAILED:
        rec.short(
            f"MyPreferences reports the import as {status_word!r} (by its docs: nothing added) yet counts {processed} "
            "records processed: those were imported, so do not run the whole import again"
        )
    else:
        rec.short(f"MyPreferences ended the import as {status_word!r}, not plainly completed")


def _either_reading(
    rec: Reconciler,
    what: str,
    ours: int | None,
    without: int | None,
    not_honored: int,
    *,
    counted_as: str,
    left_out_as: str,
    explain,
) -> bool | None:
    """Check `ours` against `without` (the vendor's count leaving not-honoured records out) or
    `without + not_honored`. With no not-honoured record there is one reading. Otherwise the one
    the counts fit passes, its note naming it; if neither fits the check fails against the count
    with them. Returns True (they were counted in), False (left out), None (no reading fits, or
    nothing to tell)."""
    if without is None:
        return None
    if not not_honored:
        rec.check(what, ours, without, explain=explain(without))
        return None
    with_them = without + not_honored
    if ours == with_them:
        rec.check(what, ours, with_them, note=f"the {not_honored} not-honoured records are {counted_as}")
        return True
    if ours == without:
        rec.check(what, ours, without, note=f"the {not_honored} not-honoured records are {left_out_as}")
        return False
    rec.check(
        what,
        ours,
        with_them,
        explain=explain(f"{with_them} (or {without} without the not-honoured records)"),
        note="the counts fit neither reading of NotHonored",
    )
    return None


def _sum(*counts: int | None) -> int | None:
    return None if any(count is None for count in counts) else sum(counts)  # type: ignore[arg-type]
