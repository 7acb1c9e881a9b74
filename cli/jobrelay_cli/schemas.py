"""Reading an operation's params schema (the JSON Schema GET /operations gives, as pydantic writes
it): each param's allowed types, and a check of a value against them.

Only what a person gets wrong on a command line is checked here: the JSON type, enums and consts,
numeric bounds, required params, unknown ones and the "exactly one of" rules. Lengths, patterns and
formats are left to the API, whose 422 names the field.
"""

import json
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

# The order in which a command-line text is tried against a param's types: the most particular
# first, so `true` is a boolean and `12` a number where the param takes one, and text otherwise.
TYPE_ORDER = ("boolean", "integer", "number", "array", "object", "string")


@dataclass(frozen=True)
class Param:
    name: str
    variants: tuple[Schema, ...]  # the schemas a value may match ($ref resolved, null left out)
    required: bool
    nullable: bool
    description: str
    default: Any


def params_of(params_schema: Schema) -> dict[str, Param]:
    required = set(params_schema.get("required") or ())
    params = {}
    for name, schema in (params_schema.get("properties") or {}).items():
        variants = variants_of(schema, params_schema)
        params[name] = Param(
            name=name,
            variants=tuple(v for v in variants if v.get("type") != "null"),
            required=name in required,
            nullable=any(v.get("type") == "null" for v in variants),
            description=str(schema.get("description") or next((v["description"] for v in variants if "description" in v), "")),
            default=schema.get("default"),
        )
    return params


def takes_unknown_keys(params_schema: Schema) -> bool:
    return params_schema.get("additionalProperties", True) is not False


def variants_of(schema: Schema, root: Schema) -> list[Schema]:
    """The alternatives a value may match: anyOf/oneOf flattened, $ref resolved against `root`."""
    if "$ref" in schema:
        return variants_of(resolve_ref(schema["$ref"], root), root)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives and "type" not in schema:
        return [variant for alternative in alternatives for variant in variants_of(alternative, root)]
    return [schema]


def resolve_ref(ref: str, root: Schema) -> Schema:
    if not ref.startswith("#/"):
        return {}  # a remote reference: nothing to check against here
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def types_of(variant: Schema) -> list[str]:
    if "const" in variant:
        return [json_type(variant["const"])]
    if "enum" in variant:
        return sorted({json_type(value) for value in variant["enum"]}, key=_type_rank)
    declared = variant.get("type")
    if declared is None:
        return list(TYPE_ORDER)  # unconstrained
    return [declared] if isinstance(declared, str) else list(declared)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def problem(value: Any, variants: tuple[Schema, ...] | list[Schema], root: Schema) -> str | None:
    """None when `value` matches one of `variants`, else what is wrong with it (the first variant's
    complaint, which for a single-type param is the only one)."""
    complaints = [_complaint(value, variant, root) for variant in variants]
    if not variants or any(complaint is None for complaint in complaints):
        return None
    return complaints[0] if len(complaints) == 1 else "expected " + " or ".join(label(v, root) for v in variants)


def _complaint(value: Any, variant: Schema, root: Schema) -> str | None:
    if "const" in variant:
        return None if value == variant["const"] else f"must be {json.dumps(variant['const'])}"
    if "enum" in variant:
        return None if value in variant["enum"] else "must be one of: " + ", ".join(str(v) for v in variant["enum"])
    kind = json_type(value)
    allowed = types_of(variant)
    if kind not in allowed and not (kind == "integer" and "number" in allowed):
        return "expected " + label(variant, root)
    if kind in ("integer", "number"):
        return _out_of_bounds(value, variant)
    if kind == "array" and "items" in variant:
        items = variants_of(variant["items"], root)
        for position, item in enumerate(value, start=1):
            if (wrong := problem(item, items, root)) is not None:
                return f"item {position}: {wrong}"
    return None


def _out_of_bounds(number: float, variant: Schema) -> str | None:
    # pydantic writes minimum/maximum; a Field's json_schema_extra may say ge/le.
    low = variant.get("minimum", variant.get("ge"))
    high = variant.get("maximum", variant.get("le"))
    if low is not None and number < low:
        return f"must be at least {low}"
    if high is not None and number > high:
        return f"must be at most {high}"
    if (above := variant.get("exclusiveMinimum", variant.get("gt"))) is not None and number <= above:
        return f"must be more than {above}"
    if (below := variant.get("exclusiveMaximum", variant.get("lt"))) is not None and number >= below:
        return f"must be less than {below}"
    return None


def label(variant: Schema, root: Schema) -> str:
    """A type as a person reads it: `whole number (1 to 10000)`, `list of text`, `one of: a, b`."""
    if "const" in variant:
        return json.dumps(variant["const"])
    if "enum" in variant:
        return "one of: " + ", ".join(str(v) for v in variant["enum"])
    words = []
    for kind in types_of(variant):
        if kind == "array":
            items = variants_of(variant.get("items") or {}, root) if variant.get("items") else []
            words.append("list of " + " or ".join(label(item, root) for item in items) if items else "list")
        else:
            words.append(_TYPE_WORDS.get(kind, kind))
    text = " or ".join(words)
    if fmt := variant.get("format"):
        text += f" ({fmt})"
    low = variant.get("minimum", variant.get("ge"))
    high = variant.get("maximum", variant.get("le"))
    above = variant.get("exclusiveMinimum", variant.get("gt"))
    if low is not None and high is not None:
        text += f" ({low} to {high})"
    elif low is not None:
        text += f" (at least {low})"
    elif high is not None:
        text += f" (at most {high})"
    elif above is not None:
        text += f" (over {above})"
    return text


_TYPE_WORDS = {
    "boolean": "true/false",
    "integer": "whole number",
    "number": "number",
    "string": "text",
    "object": "JSON object",
    "null": "null",
}


def _type_rank(kind: str) -> int:
    return TYPE_ORDER.index(kind) if kind in TYPE_ORDER else len(TYPE_ORDER)


@dataclass(frozen=True)
class Choice:
    """One branch of a top-level oneOf/anyOf: the params it needs (and the values some must have)."""

    required: tuple[str, ...]
    consts: tuple[tuple[str, Any], ...]

    def met_by(self, params: dict[str, Any]) -> bool:
        return all(params.get(name) is not None for name in self.required) and all(
            params.get(name) == value for name, value in self.consts
        )

    def __str__(self) -> str:
        consts = dict(self.consts)
        return " and ".join(f"{name}={json.dumps(consts[name])}" if name in consts else name for name in self.required)


def choice_rules(params_schema: Schema) -> list[tuple[str, list[Choice]]]:
    """The schema's "exactly one of" (oneOf) and "at least one of" (anyOf) rules on which params are given."""
    rules = []
    for keyword in ("oneOf", "anyOf"):
        branches = params_schema.get(keyword) or []
        choices = [
            Choice(
                required=tuple(branch.get("required") or ()),
                consts=tuple((name, prop["const"]) for name, prop in (branch.get("properties") or {}).items() if "const" in prop),
            )
            for branch in branches
            if isinstance(branch, dict) and branch.get("required")
        ]
        if choices:
            rules.append((keyword, choices))
    return rules
