"""What users send as `params` for `mypreferences.bulk_import` (docs/VENDORS.md 2.3.1).

The import's options keep MyPreferences' meaning under snake_case names (`refresh_contacts` is the
vendor's `RefreshContacts`), so a user reading the vendor docs recognises them. `source`, `format`
and `batch_bytes` are ours: where the records are and how they are cut into stage requests.
"""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from jobrelay.bulk_import.params import RecordsFileParams
from jobrelay.vendors.mypreferences.limits import STAGE_BYTES_DEFAULT, STAGE_BYTES_MAX, STAGE_BYTES_MIN


class BulkImportParams(RecordsFileParams):
    """Import the profiles in a records file (one JSON object per line, or CSV with a header row)."""

    name: Annotated[str, Field(min_length=1, max_length=100, description="the import's name at MyPreferences")]
    import_action: Literal["Add", "Delete"] = Field(default="Add", description="Delete: bulk profile deletion")
    match_criteria: Literal["AlternateIdType"] | None = Field(
        default=None, description="match profiles on an alternate id instead of ProfileId"
    )
    match_value: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="the name of the AlternateIdType to match on (with match_criteria)"
    )
    refresh_alternate_ids: bool = Field(default=False, description="deactivate alternate ids not in the import")
    refresh_contacts: bool = Field(default=False, description="deactivate emails, phones, addresses not in the import")
    refresh_custom_fields: bool = Field(default=False, description="delete custom fields not in the import")
    refresh_groups: bool = Field(default=False, description="deactivate groups not in the import")
    refresh_tags: bool = Field(default=False, description="delete tags not in the import")
    allow_prior_consents: bool = Field(default=False, description="allow an older consent version if no newer one")
    data_stage_duration: int = Field(default=3, ge=0, le=10, description="days MyPreferences keeps the staged data")
    batch_bytes: int = Field(
        default=STAGE_BYTES_DEFAULT,
        ge=STAGE_BYTES_MIN,
        le=STAGE_BYTES_MAX,
        description="the most bytes in one stage request (MyPreferences allows 28 MB)",
    )

    @model_validator(mode="after")
    def _match_criteria_and_value_together(self) -> "BulkImportParams":
        if (self.match_criteria is None) != (self.match_value is None):
            raise ValueError("match_criteria and match_value go together: give both or neither")
        return self
