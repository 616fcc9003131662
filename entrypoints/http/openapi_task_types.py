"""The server's task types in ``/openapi.json``: typed payloads and results.

The body of ``POST /tasks`` is a union discriminated by ``type``: one variant per
registered type (``SubmitEmailTask``: ``type`` is the constant ``"email"``, ``payload``
the type's input schema, the other fields those of ``SubmitTask``), so a generated
client gets a class per type. A task's ``result`` is any of the types' output schemas
(or anything, while a type has none). Each type's schemas are components of their own
(``EmailPayload``, ``EmailResult``); the ``$defs`` a schema holds (pydantic puts its
nested models there) become components too, with their references rewritten.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from domain.task_types import TaskType

REF = "#/components/schemas/"
_WORD = re.compile(r"[A-Za-z0-9]+")


def _camel(name: str) -> str:
    """``image-resize`` -> ``ImageResize``: a component name from a type name."""
    return "".join(word[:1].upper() + word[1:] for word in _WORD.findall(name))


def _unique(base: str, schemas: dict[str, Any]) -> str:
    name, n = base, 2
    while name in schemas:
        name, n = f"{base}{n}", n + 1
    return name


def _rewrite_refs(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, dict):
        out = {k: _rewrite_refs(v, renamed) for k, v in value.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref in renamed:
            out["$ref"] = renamed[ref]
        return out
    if isinstance(value, list):
        return [_rewrite_refs(v, renamed) for v in value]
    return value


def _component(schema: dict[str, Any], name: str, schemas: dict[str, Any]) -> dict[str, str]:
    """Add ``schema`` as the component ``name`` (or a free variant of it), its ``$defs``
    as components beside it; a reference to it."""
    schema = copy.deepcopy(schema)
    defs: dict[str, Any] = schema.pop("$defs", None) or {}
    name = _unique(name, schemas)
    schemas[name] = {}  # taken before its definitions are named
    renamed = {f"#/$defs/{d}": REF + _unique(f"{name}{d}", schemas) for d in defs}
    for ref in renamed.values():
        schemas[ref.removeprefix(REF)] = {}
    for definition, ref in zip(defs.values(), renamed.values(), strict=True):
        schemas[ref.removeprefix(REF)] = _rewrite_refs(definition, renamed)
    schemas[name] = _rewrite_refs(schema, renamed)
    return {"$ref": REF + name}


def _variant(
    generic: dict[str, Any], task_type: TaskType, schemas: dict[str, Any]
) -> dict[str, Any]:
    variant = copy.deepcopy(generic)
    variant.pop("title", None)
    variant["description"] = f"A task of type `{task_type.name}`."
    properties = variant["properties"]
    properties["type"] = {"type": "string", "const": task_type.name}
    required = [name for name in variant.get("required", []) if name != "payload"]
    if task_type.input_schema is not None:
        payload = _component(task_type.input_schema, f"{_camel(task_type.name)}Payload", schemas)
        described = {"description": f"The payload of `{task_type.name}` tasks."}
        properties["payload"] = {**payload, **described}
        required.append("payload")
    variant["required"] = required
    return variant


def typed_submit_body(schemas: dict[str, Any], task_types: Sequence[TaskType]) -> dict[str, Any]:
    """The schema of the body of ``POST /tasks``: a union of one variant per type (each
    added to ``schemas``), discriminated by ``type``, or the generic ``SubmitTask``."""
    generic = schemas["SubmitTask"]
    mapping: dict[str, str] = {}
    for task_type in task_types:
        name = _unique(f"Submit{_camel(task_type.name) or 'Typed'}Task", schemas)
        schemas[name] = {}
        schemas[name] = _variant(generic, task_type, schemas)
        mapping[task_type.name] = REF + name
    typed = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }
    # The generic form stays valid: a client that knows no types posts any payload, which
    # the server checks against the type's validator (a 422 names what is wrong).
    return {"anyOf": [typed, {"$ref": REF + "SubmitTask"}]}


def type_results(schemas: dict[str, Any], task_types: Sequence[TaskType]) -> None:
    """``TaskOut.result``: null, or what one of the types returns. While a type does not
    say what it returns, a result may be anything, and stays so typed."""
    if not task_types or any(t.output_schema is None for t in task_types):
        return
    variants = [
        _component(t.output_schema, f"{_camel(t.name) or 'Typed'}Result", schemas)
        for t in task_types
        if t.output_schema is not None
    ]
    result = schemas["TaskOut"]["properties"]["result"]
    kept = {k: v for k, v in result.items() if k in ("description", "title")}
    schemas["TaskOut"]["properties"]["result"] = {**kept, "anyOf": [*variants, {"type": "null"}]}
