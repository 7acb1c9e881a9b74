"""What users send as `params` for `which50.contact_import` (docs/VENDORS.md 3.3).

`contact_list_id`, `field_names`, `custom_events` and `match` are Which50's own (`FieldNames`,
`customevents`, `match`); `source`, `format` and `batch_size` are ours: where the contacts are and
how many go in one batch request.
"""

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from jobrelay.bulk_import.params import RecordsFileParams
from jobrelay.vendors.which50.limits import ENC_CONTACT_ID, MAX_CONTACTS_PER_BATCH

# A name travels in a comma-separated query list (customevents, match): no commas, no padding.
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^,]+$", strip_whitespace=True)]


class ContactImportParams(RecordsFileParams):
    """Import the contacts of a records file into one Which50 contact list."""

    contact_list_id: int = Field(gt=0, description="the Which50 contact list to import into")
    field_names: list[Name] = Field(
        min_length=1, max_length=500, description="the list's fields the records carry (Which50's FieldNames)"
    )
    custom_events: list[Name] | None = Field(
        default=None, min_length=1, max_length=50, description="Custom Events to run for each contact imported"
    )
    match: list[Name] | None = Field(
        default=None, min_length=1, max_length=20, description="fields to match existing contacts on (some of field_names)"
    )
    batch_size: int = Field(
        default=MAX_CONTACTS_PER_BATCH,
        ge=1,
        le=MAX_CONTACTS_PER_BATCH,
        description=f"contacts per batch request (Which50 takes at most {MAX_CONTACTS_PER_BATCH:,})",
    )

    @model_validator(mode="after")
    def _names_are_consistent(self) -> "ContactImportParams":
        duplicates = sorted({n for n in self.field_names if self.field_names.count(n) > 1})
        if duplicates:
            raise ValueError(f"field_names repeats {', '.join(duplicates)}")
        if ENC_CONTACT_ID in self.field_names:
            raise ValueError(f"{ENC_CONTACT_ID} is not a field: give it as a column/key of the records instead")
        outside = [n for n in self.match or () if n not in self.field_names]
        if outside:
            raise ValueError(f"match names fields that are not in field_names: {', '.join(outside)}")
        return self
