"""A Which50 simulator: the contact-list import jobs as docs/VENDORS.md section 3 describes them, over real
sockets.

Routes, under the inferred application root `/Which50API` (docs/VENDORS.md 3.1, Unknown 17) that the
jobrelay Which50 adapter assumes; the call kind `fault_methods` names is on the right:

    GET  /Which50API/contactLists                                        lists
    GET  /Which50API/contactLists/<listId>                               list
    GET  /Which50API/contactLists/<listId>/fields                        fields
    POST /Which50API/contactLists/<listId>/import                        create   {"FieldNames": [...]}
    POST /Which50API/contactLists/<listId>/import/<jobId>                batch    [Contact, ...]
    POST /Which50API/contactLists/<listId>/import/<jobId>/run?customevents=&match=   run
    GET  /Which50API/contactLists/<listId>/import/<jobId>                status

Every API call needs `Authorization: ApiKey <key>` (the assumed scheme, docs/VENDORS.md 3.2); errors are
the ASP.NET default `{"Message": ...}` (3.5). A batch answers an echo of its contacts with their
ValidationWarnings (the assumed answer, Unknown 19). `run` moves a job to Running, its
ProgressPercent rising with time over `process_seconds`, then to Completed (or Failed), when its
contacts are applied to the list and the counters become final: invalid emails and SMS numbers are
counted (an invalid email without a valid SMS number is not imported); a contact naming an
EncContactId updates it, or is not updated when the list does not know it; one whose identity
(lower-cased email, else SMS number) the list already holds, seeded, imported before or earlier in
the job, is updated; the others are inserted; one with nothing to identify it is not updated. A
second `run` answers the job as it is but is counted; a batch after `run` is a 409 (Unknown 20).
Per contact only its identity and three flags are kept, never its Values.

Doc-consistent variants, switched in the config (the defaults keep the behaviour above), for the
shapes the docs leave open (Unknowns 18, 19, 20):

- `percent_before_status_seconds`: once processed, ProgressPercent reads 100 for that long while
  CurrentStatus still says "Processing", FinishDate is empty and the counters are half the final
  ones; then the status flips to Completed with the final counts;
- `finish_with_errors`: the job ends "CompletedWithErrors" (or the given word), one in every
  REFUSED_EVERY contacts it would have inserted or updated counted as NotUpdated instead;
- `fail_after_inserting`: the job ends "Failed" (or the given word) at APPLIED_BEFORE_FAILING
  percent, the contacts before that point applied and counted, the rest in no counter;
- `status_words`: the status words answered instead of the sandbox's own ({"Completed":
  "COMPLETED", "Running": "Importing"}), for casings and synonyms;
- `camel_case`: every key of every answer in camelCase (`currentStatus`), contact Values aside;
- `create_answer`: "no_id" answers the created job without its Id, "not_json" with an HTML error
  page (echoing the request's headers, as a debugging server might): the job is created either way.

Extra control route: GET /_sandbox/imports (every job with its counters, every list with its count,
and the most jobs running at once). Run it alone with `python -m devstack.sandbox.which50 --port 3300`.
"""

import argparse
import itertools
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field

from devstack.sandbox.http import (
    LOOPBACK,
    AspNetRefusal,
    FaultConfig,
    Request,
    Response,
    SandboxServer,
    iso_utc,
    serve_until_interrupted,
)

API_ROOT = "/Which50API"
API_KEY_SCHEME = "ApiKey"
DENIED = "Authorization has been denied for this request."
FORBIDDEN = "The API key lacks permission for this resource."
FIRST_JOB_ID = 345
FAILED_AT_PERCENT = 40  # where the ProgressPercent of a job made to fail stays
REFUSED_EVERY = 4  # finish_with_errors: every 4th contact that would be applied is not updated
APPLIED_BEFORE_FAILING = 80  # fail_after_inserting: the percent of contacts applied before it fails
STATUSES = ("Created", "Running", "Processing", "Completed", "CompletedWithErrors", "Failed")
EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
SMS = re.compile(r"\+?(\d{8,15})")

# The account's lists as the sandbox starts (and resets to). Contacts are (EncContactId, email,
# SMS number); the mobile-only one is known by its number.
SEED_LISTS: Mapping[int, Mapping[str, Any]] = {
    12: {
        "Name": "Newsletter",
        "Fields": [("Email", "Email", None), ("FirstName", "Text", None), ("LastName", "Text", None),
                   ("Mobile", "Sms", None), ("Country", "Text", "IE")],
        "Contacts": [("W50-12-0001", "ada@example.org", None), ("W50-12-0002", "bob@example.org", "+447700900123"),
                     ("W50-12-0003", None, "353871234567")],
    },
    31: {
        "Name": "Customers",
        "Fields": [("Email", "Email", None), ("CustomerId", "Text", None), ("Tier", "Text", "Standard")],
        "Contacts": [],
    },
}  # fmt: skip

Kind = Literal["lists", "list", "fields", "create", "batch", "run", "status"]


class Which50Config(FaultConfig):
    """What tests switch through POST /_sandbox/config. A job's duration and failure are fixed when
    it is run; faults (`fault_methods` names the call kinds above) apply to the calls that come next.
    A `timeouts` fault is carried out first and answered after the hang, so a batch that times out
    is recorded, as one whose answer is lost (`lost_answers`); a 5xx is answered before anything is
    done."""

    process_seconds: float = Field(default=1.0, ge=0, description="from run to Completed/Failed")
    max_batch_contacts: int = Field(default=10_000, ge=1, description="a larger batch answers 400")
    fail_jobs: bool | str = Field(default=False, description="jobs run end Failed (a string: that CurrentStatus)")
    forbidden: bool = Field(default=False, description="every call with the right key answers 403")
    slow_seconds: float = Field(default=0.0, ge=0, description="every call waits this long before answering")
    percent_before_status_seconds: float = Field(
        default=0.0, ge=0, description="100 % while still Processing (half the counts, no FinishDate) for this long"
    )
    finish_with_errors: bool | str = Field(
        default=False, description="jobs run end CompletedWithErrors (a string: that CurrentStatus), some contacts not updated"
    )
    fail_after_inserting: bool | str = Field(
        default=False, description="jobs run end Failed (a string: that CurrentStatus) after applying most contacts"
    )
    status_words: dict[str, str] = Field(
        default_factory=dict, description=f"the word answered for each of the sandbox's statuses {', '.join(STATUSES)}"
    )
    camel_case: bool = Field(default=False, description="every answer's keys in camelCase")
    create_answer: Literal["ok", "no_id", "not_json"] = Field(
        default="ok", description="how create answers: the job, the job without its Id, or an HTML page"
    )


@dataclass(frozen=True)
class Route:
    kind: Kind
    list_id: int | None = None
    job_id: int | None = None


def route_of(method: str, path: str) -> Route | None:
    """The API route of a request; raises AspNetRefusal(405) for a known path with another method."""
    # ASP.NET matches routes case-insensitively, and its ids are int-constrained: "x" is no route.
    if not path.lower().startswith(API_ROOT.lower() + "/"):
        return None
    segments = path[len(API_ROOT) + 1 :].strip("/").lower().split("/")
    methods: dict[str, Kind] = {}
    ids: list[int] = []
    match segments:
        case ["contactlists"]:
            methods = {"GET": "lists"}
        case ["contactlists", list_id] if list_id.isdigit():
            methods, ids = {"GET": "list"}, [int(list_id)]
        case ["contactlists", list_id, "fields"] if list_id.isdigit():
            methods, ids = {"GET": "fields"}, [int(list_id)]
        case ["contactlists", list_id, "import"] if list_id.isdigit():
            methods, ids = {"POST": "create"}, [int(list_id)]
        case ["contactlists", list_id, "import", job_id] if list_id.isdigit() and job_id.isdigit():
            methods, ids = {"POST": "batch", "GET": "status"}, [int(list_id), int(job_id)]
        case ["contactlists", list_id, "import", job_id, "run"] if list_id.isdigit() and job_id.isdigit():
            methods, ids = {"POST": "run"}, [int(list_id), int(job_id)]
        case _:
            return None
    if method not in methods:
        raise AspNetRefusal(405, f"The requested resource does not support http method '{method}'.")
    return Route(methods[method], *ids)


# --- lists and contacts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaField:
    id: int
    name: str
    map_type: str
    default: str | None
    position: int

    def answer(self) -> dict[str, Any]:
        return {"Id": self.id, "Name": self.name, "DefaultValue": self.default, "MapType": self.map_type,
                "Position": self.position, "ContactSchemaFieldValues": []}  # fmt: skip


@dataclass
class ContactList:
    id: int
    name: str
    fields: dict[str, SchemaField]
    known_ids: frozenset[str]  # the EncContactIds an update may name (imported contacts get none we show)
    keys: set[str]  # the identity keys of its contacts
    count: int

    @classmethod
    def seeded(cls, list_id: int, seed: Mapping[str, Any]) -> "ContactList":
        fields = {
            name: SchemaField(list_id * 100 + position, name, map_type, default, position)
            for position, (name, map_type, default) in enumerate(seed["Fields"], start=1)
        }
        keys = set()
        for enc_id, email, sms in seed["Contacts"]:
            keys.add(f"i:{enc_id}")
            if email:
                keys.add(f"e:{email.lower()}")
            if sms:
                keys.add(f"s:{sms.removeprefix('+')}")
        enc_ids = frozenset(enc_id for enc_id, _, _ in seed["Contacts"])
        return cls(list_id, seed["Name"], fields, enc_ids, keys, len(seed["Contacts"]))

    def answer(self) -> dict[str, Any]:
        return {"Id": self.id, "Name": self.name, "Count": self.count}


@dataclass(frozen=True, slots=True)
class StagedContact:
    """What the sandbox keeps of one posted contact: enough to count it when its job completes.

    `key` is None when the contact cannot be imported (an invalid email and no valid SMS number,
    an unknown EncContactId, nothing that identifies it)."""

    key: str | None  # "e:<email>" | "s:<digits>" | "i:<EncContactId>"
    invalid_email: bool
    invalid_sms: bool
    not_updatable: bool  # counts in NotUpdatedContacts


def stage_contact(contact: Any, contact_list: ContactList, field_names: tuple[str, ...]) -> tuple[StagedContact, dict[str, Any]]:
    """Check one contact of a batch: what the sandbox keeps of it, and its echo with warnings."""
    if not isinstance(contact, dict):
        raise AspNetRefusal(400, "The request is invalid: every contact must be an object")
    values = contact.get("Values")
    values = {} if values is None else values
    enc_id = contact.get("EncContactId")
    list_id = contact.get("ListId", 0)  # a missing int binds as 0 in ASP.NET
    if not isinstance(values, dict):
        raise AspNetRefusal(400, "The request is invalid: Values must be an object")
    if enc_id is not None and not isinstance(enc_id, str):
        raise AspNetRefusal(400, "The request is invalid: EncContactId must be a string")
    if not isinstance(list_id, int) or isinstance(list_id, bool):
        raise AspNetRefusal(400, "The request is invalid: ListId must be a number")
    warnings = [f"Unknown field '{name}'" for name in values if name not in field_names]
    if list_id != contact_list.id:
        warnings.append(f"ListId {list_id} does not match ContactList {contact_list.id}")
    email, invalid_email = _first_valid(values, field_names, contact_list, "Email", warnings)
    sms, invalid_sms = _first_valid(values, field_names, contact_list, "Sms", warnings)
    key, not_updatable = None, False
    if invalid_email and sms is None:
        pass  # counted as an invalid email, not imported
    elif enc_id:
        known = enc_id in contact_list.known_ids
        key, not_updatable = (f"i:{enc_id}" if known else None), not known
    elif email is not None:
        key = f"e:{email.lower()}"
    elif sms is not None:
        key = f"s:{sms}"
    elif not invalid_sms:
        not_updatable = True
        warnings.append("No email address, SMS number or EncContactId identifies the contact")
    echo = {"EncContactId": enc_id, "ListId": list_id, "Values": values, "ValidationWarnings": warnings}
    return StagedContact(key, invalid_email, invalid_sms, not_updatable), echo


def _first_valid(
    values: dict[str, Any], field_names: tuple[str, ...], contact_list: ContactList, map_type: str, warnings: list[str]
) -> tuple[str | None, bool]:
    """The first valid value among the job's fields of `map_type` (an SMS number without its +), and
    whether an invalid one was found (each noted in `warnings`)."""
    valid, invalid = None, False
    for name in field_names:
        schema_field = contact_list.fields[name]
        value = values.get(name)
        if schema_field.map_type != map_type or value is None or value == "":
            continue
        if map_type == "Sms" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a number sent as a JSON number
        if map_type == "Email":
            checked = value if isinstance(value, str) and EMAIL.fullmatch(value) else None
        else:
            found = SMS.fullmatch(value) if isinstance(value, str) else None
            checked = found.group(1) if found else None
        if checked is None:
            invalid = True
            label = "email address" if map_type == "Email" else "SMS number"
            warnings.append(f"Invalid {label}: '{value}'")
        elif valid is None:
            valid = checked
    return valid, invalid


# --- import jobs --------------------------------------------------------------------------------------


@dataclass
class SandboxJob:
    id: int
    list_id: int
    field_names: tuple[str, ...]
    created: float
    contacts: list[StagedContact] = field(default_factory=list)
    batches: int = 0
    run_calls: int = 0
    started: float | None = None
    process_seconds: float = 0.0
    failure: str | None = None  # the CurrentStatus a job made to fail ends with (nothing applied)
    # How a job that is not made to fail ends: "Completed", or a status with errors (finish_with_errors)
    # or of failure after applying most contacts (fail_after_inserting); `outcome` says which.
    final_status: str = "Completed"
    outcome: Literal["clean", "with_errors", "fail_after"] = "clean"
    status_lag: float = 0.0  # percent_before_status_seconds, fixed at run
    customevents: list[str] | None = None
    match: list[str] | None = None
    counts: dict[str, int] | None = None  # the final counters, once completed

    @property
    def ends(self) -> float | None:
        """When its contacts are applied, or it fails (None before run)."""
        if self.started is None:
            return None
        share = FAILED_AT_PERCENT / 100 if self.failure else 1.0
        return self.started + self.process_seconds * share

    @property
    def settles(self) -> float | None:
        """When its status says it has ended: `status_lag` after `ends` (None before run)."""
        return None if self.ends is None else self.ends + (0.0 if self.failure else self.status_lag)

    def progress_at(self, now: float) -> tuple[str, int]:
        """(CurrentStatus, ProgressPercent) in the sandbox's own words: rising linearly from run to
        the end of processing, then 100 while still "Processing" for `status_lag`, then final."""
        if self.started is None:
            return "Created", 0
        ends, settles = self.ends, self.settles
        assert ends is not None and settles is not None
        if self.failure and now >= ends:
            return self.failure, FAILED_AT_PERCENT
        if now >= settles:
            return self.final_status, APPLIED_BEFORE_FAILING if self.outcome == "fail_after" else 100
        if now >= ends:
            return "Processing", 100
        return "Running", min(99, int(100 * (now - self.started) / self.process_seconds)) if self.process_seconds else 99

    def answer(self, now: float, words: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ImportJob model; counters are 0 until the job is processed (Which50 reports none
        sooner), half the final ones while its status lags, final once it has ended. `words`
        replaces the sandbox's status words."""
        status, percent = self.progress_at(now)
        counts = self.counts or {}
        if status == "Processing":
            counts = {name: number // 2 for name, number in counts.items()}
        elif self.failure or self.settles is None or now < self.settles:
            counts = {}
        inserted, updated = counts.get("inserted", 0), counts.get("updated", 0)
        ended_at = self.ends if self.failure else self.settles  # None before the job is run
        finished = ended_at if ended_at is not None and now >= ended_at else None
        return {
            "Id": self.id,
            "ContactListId": self.list_id,
            "InvalidEmailCount": counts.get("invalid_email", 0),
            "InvalidSmsCount": counts.get("invalid_sms", 0),
            "ProgressPercent": percent,
            "CurrentStatus": (words or {}).get(status, status),
            "StartDate": _vendor_time(self.started) if self.started is not None else None,
            "FinishDate": _vendor_time(finished) if finished is not None else None,
            "InsertedContacts": inserted,
            "UpdatedContacts": updated,
            "DroppedContacts": 0,
            "NotUpdatedContacts": counts.get("not_updated", 0),
            "TotalContacts": inserted + updated,
        }

    def summary(self, now: float) -> dict[str, Any]:
        status, percent = self.progress_at(now)
        return {
            "id": self.id,
            "list_id": self.list_id,
            "field_names": list(self.field_names),
            "batches": self.batches,
            "contacts_received": len(self.contacts),
            "run_calls": self.run_calls,
            "customevents": self.customevents,
            "match": self.match,
            "status": status,
            "progress_percent": percent,
            "created_at": iso_utc(self.created),
        }


def apply_contacts(job: SandboxJob, contact_list: ContactList) -> dict[str, int]:
    """Import a processed job's contacts into its list, in the order they were posted; its counters.
    A job that ends with errors refuses every REFUSED_EVERY-th contact it would apply (NotUpdated);
    one that fails after inserting applies only the first APPLIED_BEFORE_FAILING percent."""
    counts = dict.fromkeys(("inserted", "updated", "not_updated", "invalid_email", "invalid_sms"), 0)
    contacts = job.contacts
    if job.outcome == "fail_after":
        contacts = contacts[: len(contacts) * APPLIED_BEFORE_FAILING // 100]
    applicable = 0
    for contact in contacts:
        counts["invalid_email"] += contact.invalid_email
        counts["invalid_sms"] += contact.invalid_sms
        if contact.not_updatable:
            counts["not_updated"] += 1
            continue
        if contact.key is None:
            continue
        applicable += 1
        if job.outcome == "with_errors" and applicable % REFUSED_EVERY == 0:
            counts["not_updated"] += 1
        elif contact.key in contact_list.keys:  # seeded, imported before, or earlier in this job
            counts["updated"] += 1
        else:
            contact_list.keys.add(contact.key)
            contact_list.count += 1
            counts["inserted"] += 1
    return counts


def _vendor_time(timestamp: float) -> str:
    """UTC without an offset, to the second (the assumed .NET date, docs/VENDORS.md 3.6)."""
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def _failure_status(fail_jobs: bool | str, default: str = "Failed") -> str | None:
    if isinstance(fail_jobs, str):
        return fail_jobs or None
    return default if fail_jobs else None


def camel_case(payload: Any) -> Any:
    """Every key of a JSON answer with its first letter lower-cased (`CurrentStatus` →
    `currentStatus`), except inside a contact's Values: those keys are the list's field names."""
    if isinstance(payload, list):
        return [camel_case(item) for item in payload]
    if isinstance(payload, dict):
        return {(key[:1].lower() + key[1:]): (value if key == "Values" else camel_case(value)) for key, value in payload.items()}
    return payload


def _names(request: Request, name: str) -> list[str] | None:
    """A comma-separated query parameter (customevents=A,B) as a list; None when not given."""
    given = request.query.get(name)
    if given is None:
        return None
    return [part.strip() for value in given for part in value.split(",") if part.strip()]


# --- the sandbox ----------------------------------------------------------------------------------


class Which50Sandbox(SandboxServer[Which50Config]):
    config_model = Which50Config

    def __init__(self, host: str = LOOPBACK, port: int = 0, *, process_seconds: float = 1.0, **config: Any):
        super().__init__(host, port, process_seconds=process_seconds, **config)
        self._api_key = secrets.token_urlsafe(32)
        self._job_ids = itertools.count(FIRST_JOB_ID)  # never reset: a stale job id must not match
        self._lists: dict[int, ContactList] = {}
        self._jobs: dict[int, SandboxJob] = {}
        self._max_concurrent_running = 0
        self.on_reset()

    def account_secret(self) -> dict[str, Any]:
        """The secret a Which50 account holds to reach this sandbox (over http: allowed for it)."""
        return {"base_url": self.base_url + API_ROOT, "api_key": self._api_key, "allow_http": True}

    def fixtures(self) -> list[str]:
        """The lists a user can import into, read from the seed the sandbox starts with (the local
        stack's banner): each list's fields (email and SMS ones marked: a contact needs one of them
        or an EncContactId) and the EncContactIds an update may name."""
        lines = []
        for list_id, seed in SEED_LISTS.items():
            fields = ", ".join(f"{name} ({map_type.lower()})" if map_type in ("Email", "Sms") else name
                               for name, map_type, _ in seed["Fields"])  # fmt: skip
            known = ", ".join(enc_id for enc_id, _, _ in seed["Contacts"]) or "none"
            lines.append(f'list {list_id} "{seed["Name"]}": fields {fields}; EncContactIds {known}')
        return lines

    def on_reset(self) -> None:
        self._lists = {list_id: ContactList.seeded(list_id, seed) for list_id, seed in SEED_LISTS.items()}
        self._jobs.clear()
        self._max_concurrent_running = 0

    # --- routes ------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            route = route_of(request.method, request.path)
        except AspNetRefusal as refused:
            return refused.answer().noted(method=request.method)
        kind = route.kind if route else None
        note = {"method": request.method, "kind": kind, "list_id": route and route.list_id,
                "job_id": route and route.job_id}  # fmt: skip
        # The faults of the base, in its order, except that a timeout hangs after the work is done.
        if self.take("http_5xx", kind):
            return Response(503, b"Service Unavailable", "text/plain").noted(**note, fault="http_5xx")
        hang = self.take("timeouts", kind)
        if not hang and self.take("malformed", kind):
            malformed = Response(200, b"<html><body>Runtime Error</body></html>", "text/html")
            return malformed.noted(**note, fault="malformed")
        if self.config.slow_seconds and self.faults_apply_to(kind):
            self.pause(self.config.slow_seconds)
        try:
            if route is None:
                raise AspNetRefusal(404, f"No HTTP resource was found that matches the request URI '{request.path}'.")
            self._authorise(request)
            answer = self._api(request, route)
        except AspNetRefusal as refused:
            answer = refused.answer()
        if hang:
            self.pause(self.config.timeout_hang_seconds)  # done, but the client has given up by now
        if self.config.camel_case and answer.content_type == "application/json" and isinstance(answer.body, bytes):
            answer = replace(answer, body=json.dumps(camel_case(json.loads(answer.body))).encode())
        return answer.noted(**note, fault="timeouts" if hang else None)

    def control(self, request: Request) -> Response | None:
        if (request.method, request.path) == ("GET", "/_sandbox/imports"):
            with self.lock:
                now = self._settle()
                return Response.json(
                    {
                        "jobs": [job.summary(now) for job in self._jobs.values()],
                        "lists": [{"id": lst.id, "name": lst.name, "count": lst.count} for lst in self._lists.values()],
                        "max_concurrent_running": self._max_concurrent_running,
                    }
                )
        return None

    def _authorise(self, request: Request) -> None:
        scheme, _, key = request.headers.get("Authorization", "").strip().partition(" ")
        if scheme != API_KEY_SCHEME or not secrets.compare_digest(key.strip().encode(), self._api_key.encode()):
            raise AspNetRefusal(401, DENIED)
        if self.config.forbidden:  # a known key without the permission: 401 comes first
            raise AspNetRefusal(403, FORBIDDEN)

    def _api(self, request: Request, route: Route) -> Response:
        if route.kind == "batch":
            return self._batch(request, route)  # parses its body outside the lock
        with self.lock:
            now = self._settle()
            if route.kind == "lists":
                return Response.json([lst.answer() for lst in self._lists.values()])
            contact_list = self._list(route.list_id)
            if route.kind == "list":
                return Response.json(contact_list.answer())
            if route.kind == "fields":
                return Response.json([f.answer() for f in contact_list.fields.values()])
            if route.kind == "create":
                return self._create(request, contact_list, now)
            job = self._job(contact_list, route.job_id)
            if route.kind == "run":
                return self._run(request, job, now)
            return Response.json(job.answer(now, self.config.status_words))

    # --- state, under the lock -------------------------------------------------------------------

    def _settle(self) -> float:
        """Apply every job that has completed by now to its list, in the order they completed (a
        contact two jobs import is inserted by the first); the time it settled to."""
        now = time.time()
        done = [job for job in self._jobs.values() if job.counts is None and job.ends is not None and job.ends <= now]
        for job in sorted(done, key=lambda job: (job.ends, job.id)):
            if job.failure:
                job.counts = {}  # a failed job imports nothing
            else:
                job.counts = apply_contacts(job, self._lists[job.list_id])
        return now

    def _list(self, list_id: int | None) -> ContactList:
        contact_list = self._lists.get(list_id) if list_id is not None else None
        if contact_list is None:
            raise AspNetRefusal(404, f"ContactList {list_id} was not found.")
        return contact_list

    def _job(self, contact_list: ContactList, job_id: int | None) -> SandboxJob:
        job = self._jobs.get(job_id) if job_id is not None else None
        if job is None or job.list_id != contact_list.id:
            raise AspNetRefusal(404, f"ImportJob {job_id} was not found.")
        return job

    # --- the import calls --------------------------------------------------------------------------

    def _create(self, request: Request, contact_list: ContactList, now: float) -> Response:
        body = _json(request)
        names = body.get("FieldNames") if isinstance(body, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
            raise AspNetRefusal(400, "FieldNames must be a non-empty array of field names")
        unknown = [name for name in names if name not in contact_list.fields]
        if unknown:
            raise AspNetRefusal(400, f"Unknown field(s) for ContactList {contact_list.id}: {', '.join(unknown)}")
        job = SandboxJob(next(self._job_ids), contact_list.id, tuple(dict.fromkeys(names)), now)
        self._jobs[job.id] = job
        answer = job.answer(now, self.config.status_words)
        if self.config.create_answer == "no_id":
            del answer["Id"]
        elif self.config.create_answer == "not_json":
            # A debugging server's error page, echoing what it was sent: the key must never reach a job.
            headers = "".join(f"<tr><td>{name}</td><td>{value}</td></tr>" for name, value in request.headers.items())
            page = f"<html><body><h1>Server Error in '/Which50API' Application.</h1><table>{headers}</table></body></html>"
            return Response(200, page.encode(), "text/html").noted(job_id=job.id, create_answer="not_json")
        return Response.json(answer).noted(job_id=job.id, create_answer=None if self.config.create_answer == "ok" else "no_id")

    def _batch(self, request: Request, route: Route) -> Response:
        with self.lock:
            self._settle()
            contact_list = self._list(route.list_id)
            job = self._not_run(self._job(contact_list, route.job_id))
        contacts = _json(request)
        if not isinstance(contacts, list):
            raise AspNetRefusal(400, "The request is invalid: the body must be an array of contacts")
        limit = self.config.max_batch_contacts
        if len(contacts) > limit:
            raise AspNetRefusal(400, f"A batch holds at most {limit} contacts")
        staged, echoes = [], []
        for contact in contacts:
            kept, echo = stage_contact(contact, contact_list, job.field_names)
            staged.append(kept)
            echoes.append(echo)
        with self.lock:
            self._not_run(job)  # again: a run may have come in while this batch was checked
            job.contacts += staged
            job.batches += 1
        return Response.json(echoes).noted(contacts=len(staged))

    @staticmethod
    def _not_run(job: SandboxJob) -> SandboxJob:
        if job.started is not None:
            raise AspNetRefusal(409, f"ImportJob {job.id} has already been run")
        return job

    def _run(self, request: Request, job: SandboxJob, now: float) -> Response:
        job.run_calls += 1  # every call, so that tests see a second run
        if job.started is None:
            job.started = now
            job.process_seconds = self.config.process_seconds
            job.failure = _failure_status(self.config.fail_jobs)
            job.status_lag = self.config.percent_before_status_seconds
            if with_errors := _failure_status(self.config.finish_with_errors, "CompletedWithErrors"):
                job.final_status, job.outcome = with_errors, "with_errors"
            if failed_after := _failure_status(self.config.fail_after_inserting):
                job.final_status, job.outcome = failed_after, "fail_after"
            job.customevents, job.match = _names(request, "customevents"), _names(request, "match")
            # The most jobs running at once is reached when one starts: count them now. There is
            # one API key per sandbox, so this is the most of one key's jobs.
            running = sum(other.progress_at(now)[0] == "Running" for other in self._jobs.values())
            self._max_concurrent_running = max(self._max_concurrent_running, running)
        return Response.json(job.answer(now, self.config.status_words)).noted(run_calls=job.run_calls)


def _json(request: Request) -> Any:
    try:
        return request.json()
    except ValueError:
        raise AspNetRefusal(400, "The request is invalid: the body is not JSON") from None


# --- standalone -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Which50 sandbox on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=3300, help="0 picks a free port")
    parser.add_argument("--process-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    sandbox = Which50Sandbox(port=args.port, process_seconds=args.process_seconds).start()
    serve_until_interrupted(
        sandbox,
        f"Which50 sandbox on {sandbox.base_url}",
        f"account secret: {json.dumps(sandbox.account_secret())}",
    )


if __name__ == "__main__":
    main()
