"""`key=value` arguments read against an operation's params schema (GET /operations), so that a
mistake is reported, every one at once, before anything is sent.

- `key=value`: typed by the schema: whole numbers, numbers, true/false (also yes/no, on/off), text;
  a list as comma-separated items (`list=1,2,3`), by repeating the key (`list=1 list=2`) or as a
  JSON array; a JSON object as JSON.
- `key:=json`: the value as JSON, whatever the schema says (`match_value:=null`, `tag:='["7"]'`).
- `--params-file p.json`: a JSON object of params; a key given on the command line replaces the
  file's.
"""

import json
import math
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from jobrelay_cli.errors import UsageError
from jobrelay_cli.schemas import (
    TYPE_ORDER,
    Param,
    Schema,
    choice_rules,
    params_of,
    problem,
    takes_unknown_keys,
    types_of,
    variants_of,
)

ARGUMENT = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<op>:?=)(?P<value>.*)$", re.DOTALL)
TRUE_WORDS = {"true", "yes", "on"}
FALSE_WORDS = {"false", "no", "off"}


def parse_params(
    operation: str,
    params_schema: Schema,
    arguments: list[str],
    params_file: Path | None = None,
    supplied: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The params for `operation`, checked against its schema. `supplied` names params another
    option will fill in (`--file` fills `source` and `format`): they count as given. Raises a
    UsageError listing every problem."""
    params = params_of(params_schema)
    problems: list[str] = []
    merged = _read_params_file(params_file) if params_file else {}
    given_on_command_line: set[str] = set()
    merged.update(_read_arguments(arguments, params, params_schema, problems, given_on_command_line))

    if not takes_unknown_keys(params_schema):
        for key in merged:
            if key not in params:
                problems.append(_unknown(key, params))
    for key, value in merged.items():
        if key in params and (wrong := _value_problem(value, params[key], params_schema)):
            problems.append(f"{key}: {wrong}")
    for name in sorted(set(params) - set(merged) - given_on_command_line - supplied):
        if params[name].required:
            problems.append(f"{name}: required, not given")
    given = {**merged, **dict.fromkeys(supplied, "(supplied)")}
    for keyword, choices in choice_rules(params_schema):
        met = [choice for choice in choices if choice.met_by(given)]
        alternatives = "; ".join(str(choice) for choice in choices)
        if not met:
            problems.append(f"give {'exactly' if keyword == 'oneOf' else 'at least'} one of: {alternatives}")
        elif keyword == "oneOf" and len(met) > 1:
            problems.append(f"give only one of: {alternatives} (got {'; '.join(str(choice) for choice in met)})")

    if problems:
        raise UsageError(f"the params are not valid for {operation} (jobrelay operations {operation} lists them)", problems)
    return merged


def check_param(operation: str, params_schema: Schema, name: str, value: Any) -> None:
    """One param's value (filled in by an option, such as --format) checked as parse_params checks them."""
    param = params_of(params_schema).get(name)
    if param is not None and (wrong := _value_problem(value, param, params_schema)):
        raise UsageError(f"the params are not valid for {operation}", [f"{name}: {wrong}"])


def _read_params_file(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --params-file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"--params-file {path} is not JSON: {exc}") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"--params-file {path} must hold a JSON object of params")
    return loaded


def _read_arguments(
    arguments: list[str], params: dict[str, Param], root: Schema, problems: list[str], keys: set[str]
) -> dict[str, Any]:
    """The command line's params, each converted by its schema; a list param's repeats joined.
    `keys` collects every key given, a wrong one too (so it is not also reported missing)."""
    values: dict[str, Any] = {}
    for argument in arguments:
        match = ARGUMENT.match(argument)
        if not match:
            problems.append(f"{argument!r}: expected key=value (or key:=json)")
            continue
        key, raw = match["key"], match["op"] == ":="
        keys.add(key)
        param = params.get(key)
        try:
            value = _json(match["value"]) if raw else _from_text(match["value"], param, root)
        except ValueError as exc:
            problems.append(f"{key}: {exc}, got {match['value']!r}")
            continue
        if key not in values:
            values[key] = value
        elif param is not None and _is_list(param) and isinstance(values[key], list) and isinstance(value, list):
            values[key] = values[key] + value  # list=1 list=2
        else:
            problems.append(f"{key}: given more than once")
    return values


def _from_text(text: str, param: Param | None, root: Schema) -> Any:
    """The text as the first of the param's types it reads as and fits; text for an unknown param."""
    if param is None or not param.variants:
        return text
    allowed = {kind for variant in param.variants for kind in types_of(variant)}
    first_complaint = None
    for kind in TYPE_ORDER:
        if kind not in allowed:
            continue
        try:
            value = _convert(text, kind, param, root)
        except ValueError as exc:
            first_complaint = first_complaint or str(exc)
            continue
        complaint = problem(value, param.variants, root)
        if complaint is None:
            return value
        first_complaint = first_complaint or complaint
    raise ValueError(first_complaint or "not a value it takes")


def _convert(text: str, kind: str, param: Param, root: Schema) -> Any:
    word = text.strip()
    if kind == "boolean":
        if word.lower() in TRUE_WORDS | FALSE_WORDS:
            return word.lower() in TRUE_WORDS
        raise ValueError("expected true or false")
    if kind == "integer":
        if re.fullmatch(r"[+-]?\d+", word):
            return int(word)
        raise ValueError("expected a whole number")
    if kind == "number":
        if re.fullmatch(r"[+-]?\d+", word):
            return int(word)
        try:
            number = float(word)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError("expected a number")
        return number
    if kind == "array":
        if word.startswith("["):
            return _json(word)
        items = [item.strip() for item in word.split(",")] if word else []
        item_param = _item_param(param, root)
        return [_from_text(item, item_param, root) for item in items]
    if kind == "object":
        value = _json(word)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    return text  # string: as typed, spaces kept


def _item_param(param: Param, root: Schema) -> Param:
    """What a list param's items take, as a Param of their own (for converting each item's text)."""
    item_variants = [
        item
        for variant in param.variants
        if "array" in types_of(variant) and variant.get("items")
        for item in variants_of(variant["items"], root)
    ]
    return Param(f"{param.name} item", tuple(item_variants), True, False, "", None)


def _is_list(param: Param) -> bool:
    return any("array" in types_of(variant) for variant in param.variants)


def _value_problem(value: Any, param: Param, root: Schema) -> str | None:
    if value is None:
        return None if param.nullable or not param.variants else "cannot be null"
    return problem(value, param.variants, root)


def _unknown(key: str, params: dict[str, Param]) -> str:
    close = get_close_matches(key, list(params), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{key}: unknown param{hint}; it takes: {', '.join(params)}"


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError("not valid JSON") from None


DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


def parse_duration(text: str) -> int:
    """Seconds from `90`, `90s`, `15m`, `2h`, `1d`, `1h30m`. Raises ValueError."""
    match = DURATION.match(text.strip().lower())
    if not text.strip() or not match:
        raise ValueError(f"{text!r} is not a duration: use e.g. 90s, 15m, 2h, 1d or 1h30m")
    parts = {unit: int(match[unit] or 0) for unit in "dhms"}
    seconds = parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be more than 0 seconds")
    return seconds
