"""Which50's side of a contact-list import (the VendorImports port): check the list and its fields,
create the import job, post contacts in batches, run it once, follow its progress, and reconcile
what was sent with Which50's final counts.

Which50 keeps no count of the contacts it has received before the run (docs/VENDORS.md 3.3), so a batch
whose answer was lost cannot be settled by asking; ImportSteps then opens a new import job and
stages again, which is safe because an import job that is never run imports nothing.
"""

import logging
from collections.abc import Iterator
from typing import Any

import httpx

from jobrelay.domain.bulk_import import BatchFormat, BatchLimits, ImportTotals, StagedBatch
from jobrelay.domain.errors import VendorOutcomeUnknown, VendorRejected
from jobrelay.domain.job import Job, Progress
from jobrelay.domain.operation import stored_params
from jobrelay.domain.reconciliation import Reconciler
from jobrelay.domain.vendor_outcomes import PollOutcome, VendorState
from jobrelay.domain.vendor_ref import VendorRef
from jobrelay.vendors.http import shared_http_client
from jobrelay.vendors.which50.api import MAX_BATCH_BYTES, StatusWord, identifier_fields, read_status
from jobrelay.vendors.which50.client import Which50Account, Which50Client
from jobrelay.vendors.which50.contacts import CONTACTS_FORMAT, Contact, ContactRules, check_contact
from jobrelay.vendors.which50.params import ContactImportParams

__all__ = ["Which50Account", "Which50Imports", "which50_imports"]

log = logging.getLogger(__name__)


class ImportJobRef(VendorRef):
    """A Which50 import job: its contact list and id, the fields that identify a contact, and the
    last status and times Which50 gave."""

    contact_list_id: int
    contact_list_name: str | None = None
    import_job_id: int
    identifier_fields: list[str]
    status: str | None = None
    start_date: str | None = None
    finish_date: str | None = None
    started_at: str | None = None
    finished_at: str | None = None


class Which50Imports:
    """The VendorImports port for one Which50 account."""

    def __init__(self, account: Which50Account, *, http: httpx.Client | None = None):
        self.max_concurrent_jobs = account.max_concurrent_jobs  # read by the Start step
        self._stage_concurrency = account.stage_concurrency
        self._client = Which50Client(account, http=http or httpx.Client())
        self._rules: tuple[str, ContactRules] | None = None  # of the job whose records are being checked

    def limits_for(self, job: Job) -> BatchLimits:
        return BatchLimits(max_bytes=MAX_BATCH_BYTES, max_records=stored_params(job, ContactImportParams).batch_size)

    # --- records ------------------------------------------------------------------------------------

    def validate(self, job: Job, record: dict[str, Any]) -> Contact:
        return check_contact(record, self._rules_for(job))

    def record_key(self, record: Contact) -> str | None:
        return record.key

    def batch_format(self, job: Job) -> BatchFormat:
        return CONTACTS_FORMAT

    def _rules_for(self, job: Job) -> ContactRules:
        """The job's record rules, built once per job (validate runs for every record)."""
        if self._rules is None or self._rules[0] != job.job_id:
            params = stored_params(job, ContactImportParams)
            identifiers = ImportJobRef.of(job).identifier_fields
            rules = ContactRules(params.contact_list_id, frozenset(params.field_names), tuple(identifiers))
            self._rules = (job.job_id, rules)
        return self._rules[1]

    # --- the import ---------------------------------------------------------------------------------

    def open(self, job: Job) -> "ImportJobRef":
        """Check the list and the field names, then create the import job."""
        params = stored_params(job, ContactImportParams)
        list_id = params.contact_list_id
        contact_list = self._client.contact_list(list_id)
        fields = self._client.fields(list_id)
        known = [f.Name for f in fields]
        unknown = [name for name in params.field_names if name not in known]
        if unknown:
            raise VendorRejected(
                f"contact list {list_id} has no field {', '.join(map(repr, unknown))}; "
                f"its fields are {', '.join(known) or '(none)'}"
            )
        identifiers = identifier_fields(fields, params.field_names, params.match or [])
        created = self._client.create_import(list_id, params.field_names)
        log.info("Which50 import job %s created on contact list %s", created.Id, list_id)
        return ImportJobRef(
            contact_list_id=list_id,
            contact_list_name=contact_list.Name,
            import_job_id=created.Id,
            identifier_fields=identifiers,
            status=created.CurrentStatus,
        )

    def usable_until(self, job: Job) -> None:
        return None  # a Which50 import job does not expire (docs/VENDORS.md 3)

    def stage_concurrency(self, job: Job) -> int:
        return self._stage_concurrency

    def stage(self, job: Job, body: bytes, records: int) -> StagedBatch:
        list_id, job_id = _import_ids(job)
        warnings = self._client.add_batch(list_id, job_id, body)
        log.info("Which50 took a batch of %d contacts (%d bytes) with %d warnings", records, len(body), len(warnings))
        return StagedBatch(warnings=warnings)

    def run_started(self, job: Job) -> bool:
        """Whether a run sent earlier reached Which50: the job says so (see api.py,
        ImportJob.has_started). A status word we do not know, with no other sign, cannot say, and
        the job fails with it rather than running twice."""
        list_id, job_id = _import_ids(job)
        current = self._client.import_job(list_id, job_id)
        if current.has_started:
            log.info("Which50 import job %s has started already (%r); run is not sent again", job_id, current.CurrentStatus)
            return True
        if current.status_word is StatusWord.UNKNOWN:
            raise VendorOutcomeUnknown(
                f"a run sent earlier got no answer, and Which50's status {current.CurrentStatus!r} for import job "
                f"{job_id} is not one we know, so it cannot tell whether the job runs: run is not sent again",
                answer=current.excerpt(),
            )
        return False

    def execute(self, job: Job) -> None:
        list_id, job_id = _import_ids(job)
        params = stored_params(job, ContactImportParams)
        self._client.run(list_id, job_id, custom_events=params.custom_events, match=params.match)

    def poll(self, job: Job) -> PollOutcome:
        list_id, job_id = _import_ids(job)
        current = self._client.import_job(list_id, job_id)
        state, word = current.state, current.status_word
        log.info("Which50 import job %s is %s (%r: %s, %d%%)", job_id, state, current.CurrentStatus, word, current.percent)
        # 100 % is ours to say only once Which50 says the job is done: a server may reach 100 while
        # it is still applying the contacts (api.py, ASSUMPTIONS).
        percent = current.percent if state is not VendorState.RUNNING else min(current.percent, 99)
        status = current.CurrentStatus or "no status"
        return PollOutcome(
            state=state,
            raw_status=current.CurrentStatus,
            progress=Progress(percent=percent, counts=current.counts(), note=f"Which50: {status} ({current.percent}%)"),
            message=(
                f"Which50 reports import job {job_id} as {status!r} at {current.percent}% with no contact inserted or updated"
                if state is VendorState.FAILED
                else None
            ),
            vendor_ref=ImportJobRef.of(job).model_copy(update={"status": current.CurrentStatus, **current.times()}),
            unknown_status_answer=current.excerpt() if word is StatusWord.UNKNOWN else None,
        )

    def reconcile(self, job: Job, totals: ImportTotals, rec: Reconciler) -> None:
        """The contacts sent against Which50's final counts (job.progress.counts, named as in
        ImportJob.counts). The engine adds the records we refused before sending; this adds:

        - TotalContacts against InsertedContacts + UpdatedContacts (the docs' definition);
        - the contacts sent against those Which50 accounts for (inserted, updated, not updated,
          invalid): without `match` every contact sent must be in one of its counts. With `match` one
          record may update several contacts (every one whose fields match), so Which50 may apply
          more than we sent: there is no equality to check, and only fewer than sent is a shortfall;
        - for contacts not applied, a shortfall saying how many, and how many of them no counter
          explains;
        - a shortfall for each counter that explains one (not updated, invalid email or SMS,
          dropped), also when everything was applied (an invalid email beside a valid SMS number
          is imported, its email is not);
        - a shortfall for a status word that says "with errors" or failure (api.py, ASSUMPTIONS)."""
        counts = job.progress.counts
        inserted, updated, total = counts.get("inserted"), counts.get("updated"), counts.get("total")
        matching = bool(stored_params(job, ContactImportParams).match)
        if inserted is None and updated is None:
            rec.short("Which50 gave no count of contacts inserted or updated: the import cannot be checked")
        else:
            applied = (inserted or 0) + (updated or 0)
            rec.check(
                "Which50's TotalContacts = InsertedContacts + UpdatedContacts",
                applied,
                total,
                explain=f"Which50's counts do not add up: TotalContacts is {total}, but it inserted {inserted or 0} and updated {updated or 0}",
                note="both counts are Which50's; the docs define the total as inserted + updated",
            )
            if not matching:
                _check_accounted_for(rec, totals.sent, applied, counts)
            if applied < totals.sent:
                rec.short(_applied_sentence(totals.sent, applied, counts, matching=matching))
        for name, (singular, plural) in PROBLEM_COUNTERS.items():
            if (number := counts.get(name, 0)) > 0:
                rec.short(f"Which50 counted {number} {singular if number == 1 else plural}")
        status = job.vendor_status
        word = read_status(status)
        if word is StatusWord.DONE_WITH_ERRORS:
            rec.short(f"Which50 finished the import with errors (status {status!r})")
        elif word is StatusWord.FAILED:
            rec.short(f"Which50 reports the import as failed (status {status!r}) after applying some contacts")

    def failures(self, job: Job) -> Iterator[tuple[int, list[str], str | None]]:
        """None: Which50 reports failures only as counts (docs/VENDORS.md 3.6); the per-contact
        warnings of each batch answer are collected as the batches go."""
        return iter(())

    def cancel(self, job: Job) -> bool:
        """Which50 documents no way to stop an import job (docs/VENDORS.md Unknown 20). One never run
        imports nothing; one running goes on to its end."""
        return False


def _import_ids(job: Job) -> tuple[int, int]:
    ref = ImportJobRef.of(job)
    return ref.contact_list_id, ref.import_job_id


# Which50's counters that mean some contact, or some value of one, did not make it.
PROBLEM_COUNTERS = {
    "not_updated": ("existing contact not updated", "existing contacts not updated"),
    "invalid_email": ("invalid email address", "invalid email addresses"),
    "invalid_sms": ("invalid SMS number", "invalid SMS numbers"),
    "dropped": ("contact dropped", "contacts dropped"),
}


def _check_accounted_for(rec: Reconciler, sent: int, applied: int, counts: dict[str, int]) -> None:
    """Every contact sent is inserted, updated, not updated, or refused for an invalid email or SMS
    number. Whether a contact with an invalid value is also counted as inserted (without that value)
    is not documented (see api.py, ASSUMPTIONS): the reading the counts fit passes, its note naming
    it; counts that fit neither leave contacts in no count, and the check fails."""
    not_updated = counts.get("not_updated", 0)
    invalid = counts.get("invalid_email", 0) + counts.get("invalid_sms", 0)
    what = "contacts sent = contacts Which50 inserted, updated, did not update or found invalid"
    readings = [(applied + not_updated + invalid, "contacts with an invalid value were not imported")]
    if invalid:
        readings.append((applied + not_updated, "contacts with an invalid value were imported without it"))
    for accounted, reading in readings:
        if accounted == sent:
            rec.check(what, sent, accounted, note=reading if invalid else None)
            return
    accounted = readings[0][0]
    explain = (
        _applied_sentence(sent, applied, counts, matching=False)
        if applied < sent
        else f"Which50 accounts for {accounted} contacts but {sent} were sent"
    )
    rec.check(
        what, sent, accounted, explain=explain, note="the counts fit neither reading of the invalid counters" if invalid else None
    )


def _applied_sentence(sent: int, applied: int, counts: dict[str, int], *, matching: bool) -> str:
    """Why the contacts Which50 applied differ from those sent (each counter that explains it is a
    shortfall of its own; this says how many none explains)."""
    if applied > sent:
        return (
            f"Which50 inserted or updated {applied} contacts but {sent} were sent "
            "(another run of the import, or another import, may have been counted)"
        )
    missing = sent - applied
    sentence = f"Which50 inserted or updated {applied} of the {sent} {'records' if matching else 'contacts'} sent: {missing} did not make it"
    unexplained = missing - sum(counts.get(name, 0) for name in PROBLEM_COUNTERS)
    if unexplained > 0:
        sentence += f", {unexplained} of them counted by no Which50 counter"
    return sentence


def which50_imports(secret: dict[str, Any], *, not_found_grace_seconds: int = 0) -> Which50Imports:
    """The adapter for the account whose secret is `secret` (raises VendorRejected if it is invalid).
    `not_found_grace_seconds` keeps the registry's one factory signature; a 404 from Which50 is final."""
    return Which50Imports(Which50Account.from_secret(secret), http=shared_http_client())
