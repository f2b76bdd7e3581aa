"""The client's answer classes against the API's OpenAPI schema, generated in-process: a field the
server renames, adds, drops or makes optional fails here before it surprises a user."""

import dataclasses
import typing

import pytest
from drf_spectacular.generators import SchemaGenerator

from orchestrator_client import errors, models

MODELS = [cls for cls in vars(models).values() if dataclasses.is_dataclass(cls) and hasattr(cls, "SCHEMA")]
BY_SCHEMA = {cls.SCHEMA: cls for cls in MODELS}


@pytest.fixture(scope="module")
def components() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


def referenced(spec: dict) -> str | None:
    """The component a property holds (itself, each item or each value), if it is one."""
    for candidate in (spec, *spec.get("allOf", []), spec.get("items", {}), spec.get("additionalProperties")):
        if isinstance(candidate, dict) and "$ref" in candidate:
            return candidate["$ref"].rsplit("/", 1)[-1]
    return None


def held_class(kind) -> type | None:
    """The dataclass a field's type holds: itself, or inside `| None`, `list[...]`, `dict[str, ...]`."""
    if dataclasses.is_dataclass(kind):
        return kind
    for argument in typing.get_args(kind):
        found = held_class(argument)
        if found is not None:
            return found
    return None


def test_every_answer_class_names_a_component_of_the_schema(components):
    assert {cls.__name__: cls.SCHEMA for cls in MODELS if cls.SCHEMA not in components} == {}
    assert {"SubmitOutput", "ExecutionStatus", "TaskRunOutput", "DeadLetterOutput"} <= set(BY_SCHEMA)


@pytest.mark.parametrize("model", MODELS, ids=lambda cls: cls.__name__)
def test_fields_are_the_components_properties(model, components):
    component = components[model.SCHEMA]
    properties, required = component["properties"], set(component.get("required", []))
    fields = {field.name: typing.get_type_hints(model)[field.name] for field in dataclasses.fields(model)}

    assert set(fields) == set(properties)
    may_be_missing = {
        name for name, spec in properties.items() if name not in required or spec.get("nullable")
    }
    assert {name for name, kind in fields.items() if models.optional(kind)} == may_be_missing
    for name, spec in properties.items():
        target = referenced(spec)
        if target is not None and components[target].get("type") == "object":
            assert held_class(fields[name]) is BY_SCHEMA.get(target), (
                f"{model.__name__}.{name} holds {target}"
            )


def test_api_errors_carry_the_error_components_fields(components):
    assert set(components["Error"]["properties"]) == {"error"}
    body = {"error": {"code": "not_found", "message": "no execution", "details": {"id": "x"}}}

    error = errors.api_error(404, body)

    assert {name: getattr(error, name) for name in components["ErrorDetail"]["properties"]} == body["error"]
