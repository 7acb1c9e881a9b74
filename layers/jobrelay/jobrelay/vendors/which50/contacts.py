"""One record of the user's file checked and turned into a Which50 Contact (docs/VENDORS.md 3.3 step 2).

A record is a flat object: field name -> value, plus an optional `EncContactId` (an update of a
known contact). The rules depend on the job (its field names, and which of them identify a
contact, learned from the list when the import was opened), so they are plain checks over a small
frozen rule set rather than a pydantic model per job; they run once per record of files that may
hold millions.
"""

import json
from dataclasses import dataclass
from typing import Any

from jobrelay.domain.bulk_import import BatchFormat
from jobrelay.vendors.which50.api import ENC_CONTACT_ID

_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)
SCALARS = (str, int, float, bool)
MAX_VALUE_CHARS = 4000  # ours: a longer value is a misplaced blob, not a contact field


@dataclass(frozen=True, slots=True)
class ContactRules:
    list_id: int
    field_names: frozenset[str]
    identifiers: tuple[str, ...]  # the fields that identify a contact, in the user's order


@dataclass(frozen=True, slots=True)
class Contact:
    list_id: int
    values: dict[str, Any]
    enc_contact_id: str | None
    key: str  # what identifies it in reports: its first identifying value, else its EncContactId

    def wire(self) -> dict[str, Any]:
        contact: dict[str, Any] = {"ListId": self.list_id, "Values": self.values}
        if self.enc_contact_id:
            contact = {ENC_CONTACT_ID: self.enc_contact_id, **contact}
        return contact


def check_contact(record: dict[str, Any], rules: ContactRules) -> Contact:
    """The Contact to send, or ValueError saying every
    problem of the record. Empty values (null, "") are left out rather than sent: in a CSV an
    empty cell means "no value", and sending "" would blank the contact's field."""
    problems: list[str] = []
    enc_contact_id = record.get(ENC_CONTACT_ID)
    if enc_contact_id in (None, ""):
        enc_contact_id = None
    elif not isinstance(enc_contact_id, str):
        problems.append(f"{ENC_CONTACT_ID} must be text")
    unknown = sorted(k for k in record if k != ENC_CONTACT_ID and k not in rules.field_names)
    if unknown:
        problems.append(f"not among the import's field_names: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name == ENC_CONTACT_ID or name not in rules.field_names or value is None or value == "":
            continue
        if not isinstance(value, SCALARS):
            problems.append(f"{name} must be text, a number or true/false")
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            problems.append(f"{name} is longer than {MAX_VALUE_CHARS} characters")
        else:
            values[name] = value
    key = next((str(values[name]) for name in rules.identifiers if name in values), None) or enc_contact_id
    if key is None:
        wanted = ", ".join(rules.identifiers) or "(none among the field_names)"
        problems.append(f"no identifier: give {ENC_CONTACT_ID} or a value in one of {wanted}")
    if problems or key is None:
        raise ValueError("; ".join(problems))
    return Contact(rules.list_id, values, enc_contact_id, key)


def encode_contact(contact: Contact) -> bytes:
    return _COMPACT_JSON.encode(contact.wire()).encode()


# The batch body: a compact JSON array of Contacts.
CONTACTS_FORMAT = BatchFormat.json_array(encode_contact)


def encode_contacts(contacts: list[Contact]) -> bytes:
    return CONTACTS_FORMAT.encode(contacts)
