"""CloudFormation intrinsic functions, resolved the way CloudFormation resolves them for one stack.

Supported: Ref, Fn::GetAtt, Fn::Sub (both forms), Fn::If with the template's Conditions
(Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition), Fn::Join, Fn::Select, Fn::Split,
Fn::FindInMap, Fn::Base64 and AWS::NoValue. Anything else is an error that names where it was
found: a local stack that silently skips an intrinsic would run something the template never said.
"""

import base64
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any


class TemplateError(Exception):
    """The template cannot be run by the local stack; the message names the resource at fault."""


class _NoValue:
    """What `Ref: AWS::NoValue` resolves to: the enclosing key or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

# (logical id, attribute, where) -> value; attribute None means what `Ref` returns.
AttributeLookup = Callable[[str, str | None, str], Any]

_SUB_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition")


class Resolver:
    """Resolves intrinsics against parameter values, pseudo parameters, conditions and resources."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        pseudo_parameters: Mapping[str, Any],
        conditions: Mapping[str, Any],
        mappings: Mapping[str, Any],
        resource_attribute: AttributeLookup,
        resource_ids: Callable[[], Collection[str]],
    ):
        self._parameters = parameters
        self._pseudo = pseudo_parameters
        self._conditions = conditions
        self._mappings = mappings
        self._resource_attribute = resource_attribute
        self._resource_ids = resource_ids
        self._condition_values: dict[str, bool] = {}

    def resolve(self, value: Any, where: str) -> Any:
        """`value` with every intrinsic replaced; `where` names the spot for error messages."""
        if isinstance(value, list):
            items = (self.resolve(item, where) for item in value)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, argument)] = value.items()
            if key == "Ref":
                return self._ref(argument, where)
            if key.startswith("Fn::"):
                return self._function(key, argument, where)
        resolved = {key: self.resolve(item, f"{where}.{key}") for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def condition(self, name: str, where: str) -> bool:
        """The value of a named condition from the template's Conditions section."""
        if name not in self._conditions:
            raise TemplateError(f"{where}: unknown condition {name!r}")
        if name not in self._condition_values:
            self._condition_values[name] = self._truth(self._conditions[name], f"Conditions.{name}")
        return self._condition_values[name]

    # --- Ref and functions ------------------------------------------------------------------

    def _ref(self, name: Any, where: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self._parameters:
            return self._parameters[name]
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._resource_ids():
            return self._resource_attribute(name, None, where)
        raise TemplateError(f"{where}: Ref to unknown parameter or resource {name!r}")

    def _function(self, key: str, argument: Any, where: str) -> Any:
        match key:
            case "Fn::GetAtt":
                return self._get_att(argument, where)
            case "Fn::Sub":
                return self._sub(argument, where)
            case "Fn::If":
                condition, if_true, if_false = _expect_list(key, argument, 3, where)
                chosen = if_true if self.condition(condition, where) else if_false
                return self.resolve(chosen, where)
            case "Fn::Join":
                delimiter, items = _expect_list(key, argument, 2, where)
                return delimiter.join(as_text(item, where) for item in self._list(items, where))
            case "Fn::Select":
                index, items = _expect_list(key, argument, 2, where)
                return self._list(items, where)[int(self.resolve(index, where))]
            case "Fn::Split":
                delimiter, text = _expect_list(key, argument, 2, where)
                return as_text(self.resolve(text, where), where).split(delimiter)
            case "Fn::FindInMap":
                name, top, second = (self.resolve(part, where) for part in _expect_list(key, argument, 3, where))
                try:
                    return self._mappings[name][top][second]
                except KeyError:
                    raise TemplateError(f"{where}: Fn::FindInMap finds nothing at {name}/{top}/{second}") from None
            case "Fn::Base64":
                return base64.b64encode(as_text(self.resolve(argument, where), where).encode()).decode()
            case _:
                raise TemplateError(f"{where}: the local stack does not support the intrinsic {key}")

    def _get_att(self, argument: Any, where: str) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = _expect_list("Fn::GetAtt", argument, 2, where)
        if logical_id not in self._resource_ids():
            raise TemplateError(f"{where}: Fn::GetAtt of unknown resource {logical_id!r}")
        return self._resource_attribute(logical_id, self.resolve(attribute, where), where)

    def _sub(self, argument: Any, where: str) -> str:
        if isinstance(argument, str):
            template, variables = argument, {}
        else:
            template, variables = _expect_list("Fn::Sub", argument, 2, where)
            variables = self.resolve(variables, where)

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is how Fn::Sub writes a literal "${Literal}"
                return "${" + name[1:] + "}"
            if name in variables:
                return as_text(variables[name], where)
            if "." in name:
                return as_text(self._get_att(name, where), where)
            return as_text(self._ref(name, where), where)

        return _SUB_PLACEHOLDER.sub(replace, template)

    def _list(self, value: Any, where: str) -> list[Any]:
        resolved = self.resolve(value, where)
        if not isinstance(resolved, list):
            raise TemplateError(f"{where}: expected a list, got {resolved!r}")
        return resolved

    # --- conditions -------------------------------------------------------------------------

    def _truth(self, expression: Any, where: str) -> bool:
        if not (isinstance(expression, dict) and len(expression) == 1):
            raise TemplateError(f"{where}: a condition must be one of {', '.join(_CONDITION_FUNCTIONS)}")
        [(key, argument)] = expression.items()
        match key:
            case "Condition":
                return self.condition(argument, where)
            case "Fn::Equals":
                left, right = _expect_list(key, argument, 2, where)
                return self.resolve(left, where) == self.resolve(right, where)
            case "Fn::Not":
                (operand,) = _expect_list(key, argument, 1, where)
                return not self._truth(operand, where)
            case "Fn::And":
                return all(self._truth(operand, where) for operand in argument)
            case "Fn::Or":
                return any(self._truth(operand, where) for operand in argument)
            case _:
                raise TemplateError(f"{where}: {key} cannot be used in a condition")


def _expect_list(function: str, argument: Any, length: int, where: str) -> list[Any]:
    if not isinstance(argument, list) or len(argument) != length:
        raise TemplateError(f"{where}: {function} takes a list of {length}, got {argument!r}")
    return argument


def as_text(value: Any, where: str) -> str:
    """CloudFormation's view of a scalar inside a string: numbers and booleans as they read."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"{where}: expected a string, got {value!r}")
