"""Reconciliation: a result checked against the vendor's own counts before a job settles.

Every collect step builds one `Reconciliation` with a `Reconciler`: our own counts (records read,
refused, sent, written, failed), the vendor's counts as it reported them, one `Check` per pair that
must agree, and a `shortfall` sentence for each reason the result is not complete. The job is
`SUCCEEDED` only when no check disagrees and no shortfall was found (`complete`); anything else is
`PARTIAL`, with the sentences saying what is missing and why. A vendor that gives no count to check
against leaves `reconciled` as None ("nothing to compare"), never True.
"""

from pydantic import BaseModel, Field


class Check(BaseModel):
    """One of our counts against the vendor's count of the same thing."""

    check: str = Field(description="what is compared, in words")
    ours: int | None
    vendor: int | None
    agree: bool
    note: str | None = None


class Reconciliation(BaseModel):
    ours: dict[str, int] = Field(default_factory=dict, description="our own counts (read, refused, sent, written, failed)")
    vendor: dict[str, int] = Field(default_factory=dict, description="the vendor's counts, as it reported them")
    checks: list[Check] = Field(default_factory=list)
    reconciled: bool | None = Field(
        default=None, description="true: every check agrees; false: one does not; null: the vendor gave no count to check"
    )
    shortfall: list[str] = Field(default_factory=list, description="why the result is not complete, one reason each")

    @property
    def complete(self) -> bool:
        """Whether the job may say SUCCEEDED: nothing disagrees and nothing is missing."""
        return self.reconciled is not False and not self.shortfall

    def summary(self) -> str:
        """One line for a job's progress note."""
        if self.complete:
            if self.reconciled is None:
                return "result stored; the vendor gave no count to check it against"
            return "result stored and reconciled with the vendor's counts"
        return "; ".join(self.shortfall) or "the result does not match the vendor's counts"


class Reconciler:
    """Builds a Reconciliation: `check` each pair of counts, say each `short`fall, then `result`."""

    def __init__(self, ours: dict[str, int] | None = None, vendor: dict[str, int] | None = None):
        self.ours = dict(ours or {})
        self.vendor = dict(vendor or {})
        self._checks: list[Check] = []
        self._shortfall: list[str] = []

    def check(
        self, what: str, ours: int | None, vendor: int | None, *, explain: str | None = None, note: str | None = None
    ) -> bool:
        """Compare one of our counts with the vendor's. A vendor count of None (not given) is no
        check at all. A disagreement adds `explain` (or a sentence naming both counts) to the
        shortfall. Returns whether they agree."""
        if vendor is None:
            return True
        agree = ours == vendor
        self._checks.append(Check(check=what, ours=ours, vendor=vendor, agree=agree, note=note))
        if not agree:
            self.short(explain or f"{what}: we have {ours}, the vendor counts {vendor}")
        return agree

    def short(self, reason: str) -> None:
        """A reason the result is not complete (records failed, refused, not honoured, ...)."""
        if reason not in self._shortfall:
            self._shortfall.append(reason)

    def result(self) -> Reconciliation:
        reconciled = all(c.agree for c in self._checks) if self._checks else None
        return Reconciliation(
            ours=self.ours, vendor=self.vendor, checks=list(self._checks), reconciled=reconciled, shortfall=list(self._shortfall)
        )
