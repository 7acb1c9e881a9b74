"""template.yaml, read the way `sam deploy` would deploy it as one stack, without deploying anything.

`resolve_template` loads the YAML (CloudFormation short tags included), applies parameter
overrides with the template's own checks, merges SAM Globals, resolves every intrinsic and turns
the result into what the local stack runs: functions, layers, HTTP routes, state machines and
schedules. Whatever it cannot run faithfully is a `TemplateError` naming the resource: an
unknown resource type or event type, a missing code folder, handler file or definition file, a
definition placeholder without a substitution.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devstack.intrinsics import Resolver, TemplateError, as_text
from devstack.local_scheduler import Schedule, parse_expression
from devstack.naming import ATTRIBUTES, Attributes, Naming

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
DEFAULT_STACK_NAME = "jobrelay-local"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account


# --- loading -------------------------------------------------------------------------------------


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags: `!Ref X` is {"Ref": X}, `!Sub s` is {"Fn::Sub": s}, ..."""


def _short_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    key = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    return {key: value}


_CloudFormationLoader.add_multi_constructor("!", _short_tag)


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_CloudFormationLoader)  # a SafeLoader subclass: no arbitrary objects


# --- what the local stack runs ------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict[str, Any]  # resolved
    attributes: Attributes  # what Ref (key None) and Fn::GetAtt return

    @property
    def ref(self) -> str:
        return self.attributes[None]


@dataclass(frozen=True)
class Layer:
    logical_id: str
    name: str
    arn: str
    content_dir: Path


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str  # "app.handler"
    handler_file: Path  # <code_dir>/app.py
    handler_attribute: str  # "handler"
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]  # Globals merged with the function's own, resolved
    layer_dirs: tuple[Path, ...]
    properties: dict[str, Any]


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or "ANY"
    path: str | None  # None is the API's $default route
    function_name: str
    api_id: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path is None else f"{self.method} {self.path}"


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    name: str
    arn: str
    type: str
    definition: str  # JSON, substitutions applied
    properties: dict[str, Any]


@dataclass(frozen=True)
class StackTemplate:
    """The template resolved for one local stack."""

    path: Path
    naming: Naming
    parameters: dict[str, Any]
    resources: dict[str, Resource]
    layers: list[Layer]
    functions: list[Function]
    routes: list[Route]
    state_machines: list[StateMachine]
    schedules: list[Schedule]
    outputs: dict[str, Any]

    def of_type(self, resource_type: str) -> list[Resource]:
        return [resource for resource in self.resources.values() if resource.type == resource_type]


def resolve_template(
    path: Path = DEFAULT_TEMPLATE,
    *,
    parameter_overrides: Mapping[str, Any] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> StackTemplate:
    return _TemplateReader(Path(path), Naming(stack_name, region, account_id), parameter_overrides or {}).read()


# --- reading ------------------------------------------------------------------------------------


class _TemplateReader:
    def __init__(self, path: Path, naming: Naming, overrides: Mapping[str, Any]):
        self._path = path.resolve()
        self._root = self._path.parent
        self._naming = naming
        raw = load_yaml(self._path)
        self._raw_resources = _with_globals(raw.get("Resources", {}), raw.get("Globals", {}))
        self._parameters = _parameter_values(raw.get("Parameters", {}), overrides)
        self._raw_outputs = raw.get("Outputs", {})
        self._attributes: dict[str, Attributes] = {}
        self._naming_in_progress: set[str] = set()
        self._active: dict[str, Any] = {}  # filled below: conditions may not refer to resources
        self._resolver = Resolver(
            parameters=self._parameters,
            pseudo_parameters={
                "AWS::Region": naming.region,
                "AWS::AccountId": naming.account_id,
                "AWS::Partition": naming.partition,
                "AWS::URLSuffix": "amazonaws.com",
                "AWS::StackName": naming.stack_name,
                "AWS::StackId": naming.arn("cloudformation", f"stack/{naming.stack_name}/local"),
                "AWS::NotificationARNs": [],
            },
            conditions=raw.get("Conditions", {}),
            mappings=raw.get("Mappings", {}),
            resource_attribute=self._attribute,
            resource_ids=lambda: self._active.keys(),
        )
        self._active = {
            logical_id: definition
            for logical_id, definition in self._raw_resources.items()
            if "Condition" not in definition or self._resolver.condition(definition["Condition"], logical_id)
        }

    def read(self) -> StackTemplate:
        for logical_id, definition in self._active.items():
            if definition.get("Type") not in ATTRIBUTES:
                raise TemplateError(f"{logical_id}: the local stack cannot create resources of type {definition.get('Type')!r}")
        resources = {
            logical_id: Resource(
                logical_id=logical_id,
                type=definition["Type"],
                properties=self._resolver.resolve(definition.get("Properties", {}), logical_id),
                attributes=self._attributes_of(logical_id),
            )
            for logical_id, definition in self._active.items()
        }
        layers = [self._layer(r) for r in resources.values() if r.type == "AWS::Serverless::LayerVersion"]
        functions = [self._function(r, layers) for r in resources.values() if r.type == "AWS::Serverless::Function"]
        routes, schedules = self._function_events(resources, functions)
        schedules += self._schedule_resources(resources, functions)
        return StackTemplate(
            path=self._path,
            naming=self._naming,
            parameters=self._parameters,
            resources=resources,
            layers=layers,
            functions=functions,
            routes=routes,
            state_machines=[self._state_machine(r) for r in resources.values() if r.type == "AWS::Serverless::StateMachine"],
            schedules=schedules,
            outputs={
                name: self._resolver.resolve(output.get("Value"), f"Outputs.{name}")
                for name, output in self._raw_outputs.items()
                if "Condition" not in output or self._resolver.condition(output["Condition"], f"Outputs.{name}")
            },
        )

    # --- physical names -------------------------------------------------------------------------

    def _attribute(self, logical_id: str, attribute: str | None, where: str) -> str:
        attributes = self._attributes_of(logical_id)
        if attribute not in attributes:
            known = ", ".join(sorted(name for name in attributes if name))
            raise TemplateError(f"{where}: {logical_id} has no attribute {attribute!r} in the local stack (only {known})")
        return attributes[attribute]

    def _attributes_of(self, logical_id: str) -> Attributes:
        if logical_id not in self._attributes:
            if logical_id in self._naming_in_progress:
                raise TemplateError(f"{logical_id}: its name depends on itself")
            self._naming_in_progress.add(logical_id)
            definition = self._active[logical_id]
            type_naming = ATTRIBUTES[definition["Type"]]
            properties = definition.get("Properties", {})
            name_value = properties.get(type_naming.name_property) if type_naming.name_property else None
            if name_value is None:
                name = self._naming.default_name(logical_id)
            else:
                name = as_text(self._resolver.resolve(name_value, logical_id), logical_id)
            self._attributes[logical_id] = type_naming.attributes(name.lower() if type_naming.lower_case else name, self._naming)
            self._naming_in_progress.discard(logical_id)
        return self._attributes[logical_id]

    # --- code -----------------------------------------------------------------------------------

    def _local_dir(self, uri: Any, where: str) -> Path:
        if not isinstance(uri, str):
            raise TemplateError(f"{where}: the local stack needs a local folder, got {uri!r}")
        folder = (self._root / uri).resolve()
        if not folder.is_dir():
            raise TemplateError(f"{where}: folder {folder} does not exist")
        return folder

    def _layer(self, resource: Resource) -> Layer:
        return Layer(
            logical_id=resource.logical_id,
            name=resource.ref.split(":")[-2],
            arn=resource.ref,
            content_dir=self._local_dir(resource.properties.get("ContentUri"), f"{resource.logical_id}.ContentUri"),
        )

    def _function(self, resource: Resource, layers: list[Layer]) -> Function:
        where, properties = resource.logical_id, resource.properties
        if properties.get("PackageType", "Zip") != "Zip" or "InlineCode" in properties:
            raise TemplateError(f"{where}: the local stack runs zip functions from a CodeUri folder only")
        runtime = properties.get("Runtime", "")
        if not runtime.startswith("python"):
            raise TemplateError(f"{where}: the local stack runs Python handlers in-process, not {runtime!r}")
        code_dir = self._local_dir(properties.get("CodeUri"), f"{where}.CodeUri")
        handler = properties.get("Handler", "")
        module, _, attribute = handler.rpartition(".")
        if not module or not attribute:
            raise TemplateError(f"{where}: Handler {handler!r} is not 'module.function'")
        handler_file = code_dir / f"{module.replace('.', '/')}.py"
        if not handler_file.is_file():
            raise TemplateError(f"{where}: Handler {handler!r} needs {handler_file}, which does not exist")
        layer_dirs = {layer.arn: layer.content_dir for layer in layers}
        for arn in properties.get("Layers", []):
            if arn not in layer_dirs:
                raise TemplateError(f"{where}: layer {arn!r} is not a layer of this template")
        variables = properties.get("Environment", {}).get("Variables", {})
        return Function(
            logical_id=where,
            name=resource.ref,
            arn=resource.attributes["Arn"],
            code_dir=code_dir,
            handler=handler,
            handler_file=handler_file,
            handler_attribute=attribute,
            runtime=runtime,
            timeout=int(properties.get("Timeout", 3)),
            memory_size=int(properties.get("MemorySize", 128)),
            environment={name: as_text(value, f"{where}.Environment.{name}") for name, value in variables.items()},
            layer_dirs=tuple(layer_dirs[arn] for arn in properties.get("Layers", [])),
            properties=properties,
        )

    def _state_machine(self, resource: Resource) -> StateMachine:
        where, properties = resource.logical_id, resource.properties
        if properties.get("Events"):
            raise TemplateError(f"{where}: the local stack does not run state machine Events")
        if "Definition" in properties:
            text = json.dumps(properties["Definition"])
        elif isinstance(properties.get("DefinitionUri"), str):
            definition_file = (self._root / properties["DefinitionUri"]).resolve()
            if not definition_file.is_file():
                raise TemplateError(f"{where}.DefinitionUri: file {definition_file} does not exist")
            text = definition_file.read_text(encoding="utf-8")
        else:
            raise TemplateError(f"{where}: needs a Definition or a local DefinitionUri")
        for name, value in properties.get("DefinitionSubstitutions", {}).items():
            text = text.replace("${" + name + "}", as_text(value, f"{where}.DefinitionSubstitutions.{name}"))
        if leftovers := sorted(set(re.findall(r"\$\{[^}]*\}", text))):
            raise TemplateError(f"{where}: no DefinitionSubstitutions for {', '.join(leftovers)}")
        try:
            json.loads(text)
        except json.JSONDecodeError as error:
            raise TemplateError(f"{where}: the definition is not JSON ({error})") from None
        return StateMachine(
            logical_id=where,
            name=resource.attributes["Name"],
            arn=resource.attributes["Arn"],
            type=properties.get("Type", "STANDARD"),
            definition=text,
            properties=properties,
        )

    # --- events and schedules -------------------------------------------------------------------

    def _function_events(self, resources: dict[str, Resource], functions: list[Function]) -> tuple[list[Route], list[Schedule]]:
        routes: dict[str, Route] = {}
        schedules: list[Schedule] = []
        implicit_api = self._naming.default_name("ServerlessHttpApi").lower()
        for function in functions:
            for event_id, event in resources[function.logical_id].properties.get("Events", {}).items():
                where = f"{function.logical_id}.Events.{event_id}"
                properties = event.get("Properties", {})
                match event.get("Type"):
                    case "HttpApi":
                        route = _route(properties, function.name, properties.get("ApiId", implicit_api), where)
                        key = f"{route.api_id} {route.route_key}"
                        if key in routes:
                            raise TemplateError(f"{where}: route {route.route_key} is already taken")
                        routes[key] = route
                    case "Schedule" | "ScheduleV2" as kind:
                        if (properties.get("State", "ENABLED") == "ENABLED") and properties.get("Enabled", True):
                            schedules.append(self._function_schedule(kind, function, event_id, properties, where))
                    case other:
                        raise TemplateError(f"{where}: the local stack does not run {other!r} events")
        return list(routes.values()), schedules

    def _function_schedule(
        self, kind: str, function: Function, event_id: str, properties: dict[str, Any], where: str
    ) -> Schedule:
        # SAM turns a Schedule event into an events rule and a ScheduleV2 event into a schedule.
        name = properties.get("Name") or self._naming.default_name(f"{function.logical_id}{event_id}")
        if kind == "Schedule":
            arn, expression = self._naming.arn("events", f"rule/{name}"), properties.get("Schedule")
        else:
            arn, expression = (
                self._naming.arn("scheduler", f"schedule/default/{name}"),
                properties.get("ScheduleExpression"),
            )
        return _schedule(
            name,
            arn,
            expression,
            properties.get("ScheduleExpressionTimezone", "UTC"),
            function.name,
            properties.get("Input"),
            where,
        )

    def _schedule_resources(self, resources: dict[str, Resource], functions: list[Function]) -> list[Schedule]:
        function_names = {function.arn: function.name for function in functions}

        def target_function(arn: str, where: str) -> str:
            if arn not in function_names:
                raise TemplateError(f"{where}: the local timer only fires functions of this template, not {arn!r}")
            return function_names[arn]

        schedules = []
        for resource in resources.values():
            where, properties = resource.logical_id, resource.properties
            if properties.get("State", "ENABLED") != "ENABLED":
                continue
            if resource.type == "AWS::Scheduler::Schedule":
                target = properties.get("Target", {})
                schedules.append(
                    _schedule(
                        resource.ref,
                        scheduler_schedule_arn(self._naming, resource),
                        properties.get("ScheduleExpression"),
                        properties.get("ScheduleExpressionTimezone", "UTC"),
                        target_function(target.get("Arn", ""), f"{where}.Target"),
                        target.get("Input"),
                        where,
                    )
                )
            elif resource.type == "AWS::Events::Rule":
                if "ScheduleExpression" not in properties:
                    raise TemplateError(f"{where}: the local stack only runs rules with a ScheduleExpression")
                for target in properties.get("Targets", []):
                    target_where = f"{where}.Targets.{target.get('Id')}"
                    if "InputPath" in target or "InputTransformer" in target:
                        raise TemplateError(f"{target_where}: the local timer sends Input only")
                    schedules.append(
                        _schedule(
                            resource.ref,
                            resource.attributes["Arn"],
                            properties["ScheduleExpression"],
                            "UTC",
                            target_function(target.get("Arn", ""), target_where),
                            target.get("Input"),
                            where,
                        )
                    )
        return schedules


def scheduler_schedule_arn(naming: Naming, resource: Resource) -> str:
    """An AWS::Scheduler::Schedule's ARN, which names its group (GetAtt Arn, known before the
    properties are resolved, assumes the default group)."""
    group = resource.properties.get("GroupName") or "default"
    return naming.arn("scheduler", f"schedule/{group}/{resource.ref}")


def _route(properties: dict[str, Any], function_name: str, api_id: str, where: str) -> Route:
    method, path = properties.get("Method"), properties.get("Path")
    if method is None and path is None:
        return Route("ANY", None, function_name, api_id)
    if not (isinstance(method, str) and isinstance(path, str) and path.startswith("/")):
        raise TemplateError(f"{where}: an HttpApi event needs a Method and a Path starting with '/'")
    method = method.upper()
    return Route("ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method, path, function_name, api_id)


def _schedule(name: str, arn: str, expression: Any, timezone: str, function_name: str, payload: Any, where: str) -> Schedule:
    try:
        parse_expression(str(expression), timezone)
    except (ValueError, KeyError) as error:  # KeyError: an unknown time zone
        raise TemplateError(f"{where}: {error}") from None
    if payload is not None and not isinstance(payload, str):
        payload = json.dumps(payload)
    return Schedule(name, arn, str(expression), timezone, function_name, payload)


# --- parameters and Globals ---------------------------------------------------------------------


def _parameter_values(declared: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values as CloudFormation sees them (strings; lists for list types), checked."""
    if unknown := sorted(set(overrides) - set(declared)):
        raise TemplateError(f"parameter overrides name parameters the template lacks: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = as_text(overrides[name], f"Parameters.{name}")
        elif "Default" in spec:
            value = as_text(spec["Default"], f"Parameters.{name}")
        else:
            raise TemplateError(f"Parameters.{name}: no Default and no override")
        _check_parameter(name, spec, value)
        is_list = spec.get("Type", "String") == "CommaDelimitedList" or spec.get("Type", "").startswith("List<")
        values[name] = value.split(",") if is_list else value
    return values


def _check_parameter(name: str, spec: dict[str, Any], value: str) -> None:
    def fail(reason: str) -> TemplateError:
        return TemplateError(f"Parameters.{name}: {value!r} {reason}")

    if "AllowedValues" in spec and value not in [as_text(v, name) for v in spec["AllowedValues"]]:
        raise fail(f"is not one of {spec['AllowedValues']}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        raise fail(f"does not match {spec['AllowedPattern']}")
    if not spec.get("MinLength", 0) <= len(value) <= spec.get("MaxLength", len(value)):
        raise fail("has the wrong length")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise fail("is not a number") from None
        if not spec.get("MinValue", number) <= number <= spec.get("MaxValue", number):
            raise fail(f"is outside {spec.get('MinValue', '')}..{spec.get('MaxValue', '')}")


def _with_globals(resources: dict[str, Any], global_sections: dict[str, Any]) -> dict[str, Any]:
    """Resources with SAM Globals merged in: a resource's own scalars win, maps merge, lists add up."""
    merged = {}
    for logical_id, definition in resources.items():
        section = definition.get("Type", "").removeprefix("AWS::Serverless::")
        if section in global_sections and definition["Type"].startswith("AWS::Serverless::"):
            properties = _merge_sam(global_sections[section], definition.get("Properties", {}))
            definition = {**definition, "Properties": properties}
        merged[logical_id] = definition
    return merged


def _merge_sam(global_value: Any, own_value: Any) -> Any:
    if isinstance(global_value, list) and isinstance(own_value, list):
        return global_value + own_value
    if _is_plain_map(global_value) and _is_plain_map(own_value):
        keys = {**global_value, **own_value}
        return {
            key: _merge_sam(global_value[key], own_value[key])
            if key in global_value and key in own_value
            else own_value.get(key, global_value.get(key))
            for key in keys
        }
    return own_value


def _is_plain_map(value: Any) -> bool:
    """A map SAM merges key by key; an intrinsic ({"Ref": ...}) is a value, not a map."""
    return isinstance(value, dict) and not (len(value) == 1 and next(iter(value)).startswith(("Ref", "Fn::")))
