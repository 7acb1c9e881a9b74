"""What users send as `params` for the Pinpointe operations: the async exports (docs/VENDORS.md 1.5) and the
paginated GetAutoresponderResults (1.10).

Field names follow Pinpointe's own `details` names so a user reading the vendor docs recognises them.
Ids may be given as strings or numbers (Pinpointe writes numbers as strings). Dates may be given as
`YYYY-MM-DD` or Pinpointe's `YYYYMMDD`; each means midnight UTC at the start of that day (1.4).
"""

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _to_id(value: object) -> object:
    if isinstance(value, bool):
        return value  # let the str check reject it
    if isinstance(value, int):
        return str(value)
    return value


def _to_date(value: object) -> object:
    if isinstance(value, str) and re.fullmatch(r"\d{8}", value):
        try:
            return datetime.strptime(value, "%Y%m%d").date()
        except ValueError:
            raise ValueError(f"{value!r} is not a real date (YYYYMMDD)") from None
    return value


def _not_a_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


VendorId = Annotated[
    str,
    BeforeValidator(_to_id),
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="a Pinpointe id"),
]
Day = Annotated[
    date,
    BeforeValidator(_to_date),
    Field(description="YYYY-MM-DD or YYYYMMDD; midnight UTC at the start of the day"),
]
AutoresponderId = Annotated[
    str,
    BeforeValidator(_to_id),
    Field(min_length=1, max_length=20, pattern=r"^[0-9]+$", description="an autoresponder id (a whole number)"),
]
SubscriberStatus = Literal["any", "active", "inactive", "bounced", "unsubscribed"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@dataclass(frozen=True)
class AsyncMethod:
    """The Pinpointe call an async export makes (docs/VENDORS.md 1.5.1-1.5.4)."""

    requesttype: str
    requestmethod: str


class AsyncExportParams(_Params):
    """The params of an async export; each declares the call it makes."""

    async_method: ClassVar[AsyncMethod]


class _DateRange(AsyncExportParams):
    startdate: Day | None = None
    enddate: Day | None = Field(default=None, description="exclusive: midnight at the start of this day")

    @model_validator(mode="after")
    def _ordered(self):
        if self.startdate and self.enddate and self.enddate <= self.startdate:
            raise ValueError("enddate must be after startdate (each date is midnight at the start of that day)")
        return self


class _SubscriberOptions(AsyncExportParams):
    status: SubscriberStatus = "any"
    include_membership: bool = False
    customfields: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=500, description='custom field names, or ["all"]'
    )


class NewsletterContactDataSummaryParams(_DateRange):
    """Contact-level detail for every open and click of one campaign send."""

    async_method = AsyncMethod("Newsletters", "GetNewsletterContactDataSummaryAsync")

    stat: VendorId = Field(description="stat id of the campaign send (Stats/GetNewsletterStatIds)")


class ListSubscribersParams(_DateRange, _SubscriberOptions):
    """Subscribers of one or more lists; the dates filter on when a subscriber was added."""

    async_method = AsyncMethod("Lists", "GetListSubscribersAsync")

    list: Annotated[list[VendorId], Field(min_length=1, max_length=1000, description="list ids")]


class SegmentSubscribersParams(_SubscriberOptions):
    """Subscribers of one or more segments."""

    async_method = AsyncMethod("Segments", "GetSegmentSubscribersAsync")

    segmentid: Annotated[list[VendorId], Field(min_length=1, max_length=1000, description="segment ids")]


class TagSubscribersParams(_SubscriberOptions):
    """Subscribers carrying one or more tags (give `tag` ids or a `tagname`, not both: which of the
    two Pinpointe would follow is not documented)."""

    async_method = AsyncMethod("Tags", "GetTagSubscribersAsync")

    # The rule of _one_selector, in the JSON Schema too (GET /operations, the OpenAPI document).
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["tag"]}, {"required": ["tagname"]}]})

    tag: Annotated[list[VendorId], Field(min_length=1, max_length=1000)] | None = None
    tagname: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    extag: Annotated[list[VendorId], Field(max_length=1000)] | None = None
    emailonly: bool = False

    @model_validator(mode="after")
    def _one_selector(self):
        if not self.tag and not self.tagname:
            raise ValueError("give either 'tag' (a list of tag ids) or 'tagname'")
        if self.tag and self.tagname:
            raise ValueError("give either 'tag' or 'tagname', not both")
        return self


class AutoresponderResultsParams(_Params):
    """Summary engagement stats of autoresponder sends (GetAutoresponderResults, docs/VENDORS.md 1.10), for one
    autoresponder (`autoresponderid` or `autorespondername`) or every one (`all: true`).

    Pinpointe itself returns every autoresponder when neither id nor name is given, and uses "the
    first one found" when both are. We ask for exactly one choice instead, so that a forgotten field
    never turns into a read of everything and a request never depends on the vendor's key order."""

    # The rule of _one_choice, in the JSON Schema too (GET /operations, the OpenAPI document).
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["autoresponderid"]},
                {"required": ["autorespondername"]},
                {"required": ["all"], "properties": {"all": {"const": True}}},
            ]
        }
    )

    autoresponderid: AutoresponderId | None = None
    autorespondername: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="the autoresponder's name, as Pinpointe shows it"
    )
    all: bool = Field(default=False, description="every autoresponder (instead of an id or a name)")
    grouping: Literal["autoresponder", "send"] = Field(
        default="autoresponder",
        description="autoresponder: one record adding up every send of an autoresponder; send: one record per send",
    )
    limit: Annotated[int, BeforeValidator(_not_a_bool), Field(ge=1, le=10_000)] = Field(
        default=1000, description="records per page asked of Pinpointe (its pagination.limit); every page is read"
    )

    @model_validator(mode="after")
    def _one_choice(self):
        chosen = [name for name in ("autoresponderid", "autorespondername") if getattr(self, name) is not None]
        chosen += ["all"] if self.all else []
        if len(chosen) != 1:
            given = f" (got {' and '.join(chosen)})" if chosen else ""
            raise ValueError(f"give exactly one of 'autoresponderid', 'autorespondername' or 'all': true{given}")
        return self
