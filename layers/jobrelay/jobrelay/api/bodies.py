"""Request bodies read as JSON, within bounds, before anything else (Powertools' validation,
pydantic, our services) walks them.

Python's json module reads a document by recursion (a body nested 100,000 deep is a RecursionError,
and one nested nearly as deep as the interpreter allows parses, then breaks whatever walks it
next), refuses an integer of more than 4,300 digits with a bare ValueError, and accepts NaN and
Infinity, which are not JSON and which no field of this API takes. So a body is refused, with a
reason a client can act on, when it is nested deeper than MAX_DEPTH (checked on the text, before
the parser recurses), holds a number Python cannot hold exactly (an integer over the interpreter's
digit limit, a float beyond the double range) or one of those non-JSON constants.
"""

import json
import math
import re
import sys
from itertools import accumulate
from typing import Any

# Deeper than any body the API takes (a job's params are a few levels), far from the interpreter's
# recursion limit, and DynamoDB's own limit for a stored item: nothing deeper could be kept anyway.
MAX_DEPTH = 32

_ESCAPE = re.compile(r"\\.", re.DOTALL)
# With escapes gone, a string is a quote to the next quote: linear, even when a string never ends.
_STRING = re.compile(r'"[^"]*"')
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class NotReadable(ValueError):
    """The body is not JSON we read; `reason` says why, for the client."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse(text: str) -> Any:
    """The body's JSON value; NotReadable when it is not JSON, or not JSON within our bounds. A
    reason completes "the request body ..."."""
    if nesting(text) > MAX_DEPTH:
        raise NotReadable(f"is nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(text, parse_int=_integer, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:  # says where, never what: the body is not echoed back
        raise NotReadable(f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def nesting(text: str) -> int:
    """How deep the arrays and objects of `text` go, read without parsing it (brackets inside
    strings do not count). For text that is not JSON the answer means little, but it is bounded
    by the text's length and found in linear time."""
    brackets = _NOT_A_BRACKET.sub("", _STRING.sub("", _ESCAPE.sub("", text)))
    return max(accumulate(map(_STEP.__getitem__, brackets), initial=0))


def _integer(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:  # over sys.get_int_max_str_digits(): int() refuses to read it
        raise NotReadable(f"holds an integer of more than {sys.get_int_max_str_digits()} digits") from None


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NotReadable("holds a number out of range (beyond ±1.8e308)")
    return number


def _no_constant(name: str) -> Any:
    raise NotReadable(f"holds {name}, which is not JSON")
