"""A schedule's name is the last segment of its URL (/schedules/{name}): a name is accepted only if
it stays that one segment as clients send it, and EventBridge Scheduler can hold it."""

import posixpath
import re
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from jobrelay.api.models import ScheduleRequest
from jobrelay.domain.schedule import SCHEDULE_NAME_RULE, check_schedule_name

SCHEDULER_RULE = re.compile(r"[0-9a-zA-Z_.-]{1,64}")  # EventBridge Scheduler's own, for a schedule's Name
REQUEST = {"cron": "30 2 * * ? *", "operation": "pinpointe.newsletter_contact_data_summary", "params": {"stat": "4711"}}


def accepted(name: str) -> bool:
    try:
        check_schedule_name(name)
    except ValueError:
        return False
    return True


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=70) | st.from_regex(r"[A-Za-z0-9._/%-]{0,66}", fullmatch=True))
def test_an_accepted_name_is_one_url_segment_scheduler_can_hold(name):
    if accepted(name):
        url = f"/schedules/{name}"
        assert quote(name, safe="") == name  # nothing to escape: sent as written
        assert posixpath.normpath(url) == url  # no client or proxy resolves it away ('.', '..')
        assert SCHEDULER_RULE.fullmatch(name)


@pytest.mark.parametrize(
    "name",
    [".", "..", "...", ".hidden", "-x", "_x", "a/b", "../etc", "a%2Fb", "%2E%2E", "has space", "tab\tname", "new\nline",
     "trailing\n", "naïve", "", "x" * 65],
)  # fmt: skip
def test_names_that_are_not_path_safe_are_refused_naming_the_rule(name):
    with pytest.raises(ValidationError) as refused:
        ScheduleRequest.model_validate(REQUEST | {"name": name})

    (error,) = [error for error in refused.value.errors() if error["loc"] == ("name",)]
    assert SCHEDULE_NAME_RULE in error["msg"]


@pytest.mark.parametrize("name", ["a", "9", "nightly-contact-summary", "v1.2_export", "a..b", "x" * 64])
def test_ordinary_names_are_accepted(name):
    assert ScheduleRequest.model_validate(REQUEST | {"name": name}).name == name
