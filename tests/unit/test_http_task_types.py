"""``GET /task-types`` and the task types' schemas in ``/openapi.json``."""

from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import providers
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from bootstrap.container import Container, build_container
from bootstrap.settings import Settings
from domain.errors import InvalidInput
from domain.models import JSON
from domain.task_types import HandlerRegistry, TaskType
from entrypoints.http.app import create_app
from tests.support.http_app import Serve
from tests.support.service_rig import sample_task_types

REF = "#/components/schemas/"


async def noop(payload: JSON) -> JSON:
    return None


RESIZE_IN: dict[str, JSON] = {  # the shape pydantic gives a model with a nested model
    "$defs": {"Size": {"type": "object", "properties": {"w": {"type": "integer"}}}},
    "type": "object",
    "properties": {"size": {"$ref": "#/$defs/Size"}, "name": {"type": "string"}},
    "required": ["size"],
    "title": "ResizeIn",
}
RESIZE_OUT: dict[str, JSON] = {"type": "object", "properties": {"url": {"type": "string"}}}


def with_types(*extra: TaskType, **settings: Any) -> Container:
    task_types = HandlerRegistry()
    for task_type in extra:
        task_types.add(task_type)
    container = build_container(Settings(backend="memory", **settings))
    for builtin in (sample_task_types().get(n) for n in ("email", "image-resize", "data-export")):
        task_types.add(builtin)
    container.task_types.override(providers.Object(task_types))
    return container


async def document(serve: Serve, container: Container) -> dict[str, Any]:
    async with serve(create_app(container)) as client:
        body: dict[str, Any] = (await client.get("/openapi.json")).json()
    return body


# -- GET /task-types -------------------------------------------------------------------


async def test_task_types_lists_every_type_by_name_with_its_schemas(serve: Serve) -> None:
    typed = TaskType("resize", noop, 12.5, None, 7, RESIZE_IN, RESIZE_OUT)
    plain = TaskType("a-plain-one", noop)
    async with serve(create_app(with_types(typed, plain, default_max_attempts=4))) as client:
        response = await client.get("/task-types")

    assert response.status_code == 200
    types = {t["type"]: t for t in response.json()["task_types"]}
    assert list(types) == ["a-plain-one", "data-export", "email", "image-resize", "resize"]
    assert types["resize"] == {
        "type": "resize",
        "input_schema": RESIZE_IN,
        "output_schema": RESIZE_OUT,
        "timeout_seconds": 12.5,
        "max_attempts": 7,
        "max_concurrency": None,
        "rate": None,
        "burst": None,
        "paused": False,
        "running": None,
    }
    assert types["a-plain-one"]["input_schema"] == {}  # any JSON value
    assert types["a-plain-one"]["output_schema"] == {}
    assert types["a-plain-one"]["max_attempts"] == 4  # the server's default
    assert types["email"]["timeout_seconds"] == 60.0
    assert types["email"]["input_schema"]["anyOf"]
    assert types["email"]["output_schema"]["required"] == ["message_id", "accepted"]


async def test_task_types_needs_an_api_key_like_the_other_routes(serve: Serve) -> None:
    container = build_container(Settings(backend="memory", api_keys="k1"))
    async with serve(create_app(container)) as client:
        assert (await client.get("/task-types")).status_code == 401
        assert (await client.get("/task-types", headers={"X-API-Key": "x"})).status_code == 403
        assert (await client.get("/task-types", headers={"X-API-Key": "k1"})).status_code == 200


BUILTIN_PAYLOADS: dict[str, list[tuple[JSON, bool]]] = {
    "email": [
        ("a@b.io", True),
        ({"to": "a@b.io"}, True),
        ({"to": "a@b.io", "subject": "hi"}, True),
        ({"to": ["a@b.io", "c@d.io"], "text": "x", "html": "<p>x</p>"}, True),
        ({"to": "a@b.io", "reply_to": "r@b.io", "note": "ignored"}, True),
        ({"to": []}, False),
        ({"to": "a@b.io", "subject": "two\nlines"}, False),
        ({"to": "a@b.io", "reply_to": "nope"}, False),
        ({"to": "a@b.io", "text": 3}, False),
        ("not an address", False),
        ({"to": "nope"}, False),
        ({}, False),
        (3, False),
        (None, False),
    ],
    "image-resize": [
        ("cat.png", True),
        ({"image": "cat.png", "width": 64, "height": 2000}, True),
        ({"image": "cat.png", "width": 64, "height": 64, "fit": "cover", "format": "JPEG"}, True),
        ("  ", False),
        ({"image": "cat.png", "width": 0, "height": 64}, False),
        ({"image": "cat.png", "width": 20001, "height": 64}, False),
        ({"image": " ", "width": 1, "height": 1}, False),
        ({"image": "cat.png", "width": "64", "height": 64}, False),
        ({"image": "cat.png", "width": 64}, False),
        ({"image": "cat.png", "width": 64, "height": 64, "fit": "stretch"}, False),
        ({"image": "cat.png", "width": 64, "height": 64, "format": "bmp"}, False),
        ({"image": "cat.png", "width": 64, "height": 64, "format": "Jpg"}, True),
        ({"image": "cat.png", "width": 64, "height": 64, "colour": "red"}, False),
        ([], False),
    ],
    "data-export": [
        ("report-2024", True),
        ("failed", True),
        ({"dataset": "tasks"}, True),
        ({"dataset": "tasks", "format": "jsonl", "status": ["failed", "COMPLETED"]}, True),
        ({"dataset": "tasks", "status": "pending", "type": "email", "name": "mine"}, True),
        ({"dataset": "users"}, False),
        ({"dataset": "tasks", "format": "xml"}, False),
        ({"dataset": "tasks", "status": "lost"}, False),
        ({"dataset": "tasks", "status": "Failed"}, True),
        ({"dataset": "tasks", "status": []}, False),
        ({"dataset": "tasks", "extra": 1}, False),
        ({"format": "csv"}, False),
        ("", False),
        (True, False),
    ],
}


@pytest.mark.parametrize("name", sorted(BUILTIN_PAYLOADS))
def test_each_builtin_schema_accepts_what_its_validator_accepts(name: str) -> None:
    task_type = sample_task_types().get(name)
    assert task_type.input_schema is not None
    schema = Draft202012Validator(task_type.input_schema)
    for payload, valid in BUILTIN_PAYLOADS[name]:
        try:
            task_type.validate(payload)
            accepted = True
        except InvalidInput:
            accepted = False
        assert accepted is valid, (name, payload)
        assert schema.is_valid(payload) is valid, (name, payload)


# -- the OpenAPI document --------------------------------------------------------------


async def test_the_submit_body_is_a_union_discriminated_by_type(serve: Serve) -> None:
    typed = TaskType("resize", noop, input_schema=RESIZE_IN, output_schema=RESIZE_OUT)
    doc = await document(serve, with_types(typed, TaskType("plain", noop)))
    validate(doc)  # raises, naming the first problem
    schemas = doc["components"]["schemas"]

    body = doc["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]
    typed_form, generic = body["schema"]["anyOf"]
    assert generic == {"$ref": REF + "SubmitTask"}  # what clients that know no types send
    mapping = typed_form["discriminator"]["mapping"]
    assert typed_form["discriminator"]["propertyName"] == "type"
    assert set(mapping) == {"email", "image-resize", "data-export", "resize", "plain"}
    assert typed_form["oneOf"] == [{"$ref": ref} for ref in mapping.values()]

    resize = schemas[mapping["resize"].removeprefix(REF)]
    assert resize["properties"]["type"]["const"] == "resize"
    assert resize["required"] == ["type", "payload"]
    assert set(resize["properties"]) == set(schemas["SubmitTask"]["properties"])
    payload = schemas[resize["properties"]["payload"]["$ref"].removeprefix(REF)]
    # the nested model is a component of its own, and the reference follows it
    assert "$defs" not in payload
    size_ref = payload["properties"]["size"]["$ref"]
    assert schemas[size_ref.removeprefix(REF)] == RESIZE_IN["$defs"]["Size"]

    email = schemas[mapping["email"].removeprefix(REF)]
    email_payload = email["properties"]["payload"]["$ref"].removeprefix(REF)
    assert schemas[email_payload]["anyOf"][0]["type"] == "string"  # the old clients' form

    plain = schemas[mapping["plain"].removeprefix(REF)]
    assert plain["required"] == ["type"]  # no schema: any payload, or none
    assert "$ref" not in plain["properties"]["payload"]


async def test_a_result_is_typed_when_every_type_says_what_it_returns(serve: Serve) -> None:
    typed = TaskType("resize", noop, input_schema=RESIZE_IN, output_schema=RESIZE_OUT)
    schemas = (await document(serve, with_types(typed)))["components"]["schemas"]

    result = schemas["TaskOut"]["properties"]["result"]
    refs = [variant.get("$ref", "").removeprefix(REF) for variant in result["anyOf"]]
    assert {"EmailResult", "ResizeResult", "DataExportResult", "ImageResizeResult"} <= set(refs)
    assert {"type": "null"} in result["anyOf"]
    assert schemas["ResizeResult"] == RESIZE_OUT


async def test_a_result_stays_any_json_while_a_type_does_not_say(serve: Serve) -> None:
    schemas = (await document(serve, with_types(TaskType("plain", noop))))["components"]["schemas"]

    assert "anyOf" not in schemas["TaskOut"]["properties"]["result"]
    assert "EmailResult" not in schemas


async def test_type_names_that_clash_with_other_schemas_get_names_of_their_own(
    serve: Serve,
) -> None:
    clashing = [  # "BatchResult" and "SubmitBatch..." exist; two names camel-case alike
        TaskType("batch", noop, input_schema={"type": "string"}, output_schema={}),
        TaskType("image_resize", noop, input_schema={"type": "integer"}, output_schema={}),
        TaskType("--", noop, output_schema={}),
    ]
    doc = await document(serve, with_types(*clashing))
    validate(doc)
    schemas = doc["components"]["schemas"]

    assert schemas["BatchResult"]["properties"]["status"]  # the API's own, untouched
    assert schemas["BatchResult2"] == {}
    mapping = doc["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]["anyOf"][0]["discriminator"]["mapping"]
    assert len(set(mapping.values())) == len(mapping) == 6
    payloads = {
        schemas[ref.removeprefix(REF)]["properties"]["payload"].get("$ref")
        for ref in mapping.values()
    }
    assert len(payloads - {None}) == 5
