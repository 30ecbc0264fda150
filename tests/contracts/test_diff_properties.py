"""Properties of the diff that hold for any document, and its verdicts on real-world contracts."""

from __future__ import annotations

import copy
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.diff import Bump, Level, diff_documents
from contracts.loading import load_document
from tests.conftest import corpus

NAMES = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
SCALARS = st.sampled_from(["string", "integer", "number", "boolean"])


@st.composite
def schemas(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    kind = draw(st.sampled_from(["scalar", "object", "array"] if depth < 3 else ["scalar"]))
    if kind == "scalar":
        schema: dict[str, Any] = {"type": draw(SCALARS)}
        if schema["type"] == "string" and draw(st.booleans()):
            schema["maxLength"] = draw(st.integers(1, 100))
        if draw(st.booleans()):
            schema["enum"] = draw(st.lists(st.text(max_size=4), min_size=1, max_size=3, unique=True))
            schema["type"] = "string"
        return schema
    if kind == "array":
        return {"type": "array", "items": draw(schemas(depth + 1))}
    props = draw(st.dictionaries(NAMES, schemas(depth + 1), max_size=4))
    required = [name for name in props if draw(st.booleans())]
    return {"type": "object", "properties": props, "required": required}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    paths = {}
    for segment in draw(st.lists(NAMES, min_size=1, max_size=4, unique=True)):
        responses = {
            "200": {"description": "ok", "content": {"application/json": {"schema": draw(schemas())}}}
        }
        operation: dict[str, Any] = {"responses": responses}
        if draw(st.booleans()):
            body = {"required": True, "content": {"application/json": {"schema": draw(object_schemas())}}}
            operation["requestBody"] = body
        paths[f"/{segment}/{{id}}"] = {"post" if "requestBody" in operation else "get": operation}
    return {"openapi": "3.1.0", "info": {"title": "generated", "version": "1.0.0"}, "paths": paths}


@st.composite
def object_schemas(draw: st.DrawFn) -> dict[str, Any]:
    props = draw(st.dictionaries(NAMES, schemas(1), max_size=4))
    return {"type": "object", "properties": props, "required": sorted(props)[:1]}


def reordered(node: Any, rng: random.Random) -> Any:
    if isinstance(node, dict):
        items = list(node.items())
        rng.shuffle(items)
        return {key: reordered(value, rng) for key, value in items}
    if isinstance(node, list):
        return [reordered(value, rng) for value in node]
    return node


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(documents(), st.integers(0, 2**32))
def test_a_document_against_itself_or_a_key_reordered_copy_has_no_changes(doc: dict, seed: int) -> None:
    assert diff_documents(doc, copy.deepcopy(doc)).changes == []
    assert diff_documents(doc, reordered(doc, random.Random(seed))).changes == []


@FAST
@given(documents(), NAMES, schemas())
def test_adding_an_optional_request_property_never_breaks(doc: dict, name: str, schema: dict) -> None:
    revision = copy.deepcopy(doc)
    touched = False
    for item in revision["paths"].values():
        for operation in item.values():
            body = operation.get("requestBody")
            if body is not None:
                properties = body["content"]["application/json"]["schema"]["properties"]
                properties.setdefault(f"new{name}", schema)
                touched = True
    report = diff_documents(doc, revision)
    assert not any(c.level is Level.ERROR for c in report.changes)
    if touched:
        assert {c.id for c in report.changes} == {"request-property-added-optional"}
        assert report.required_bump is Bump.MINOR


def test_stripe_six_weeks_apart() -> None:
    base = load_document(corpus("stripe", "spec3-v110.json").read_bytes())
    revision = load_document(corpus("stripe", "spec3-v120.json").read_bytes())
    report = diff_documents(base, revision)
    found = {c.id for c in report.changes}
    assert report.breaking and report.required_bump is Bump.MAJOR
    # Four paths appeared between v110 and v120 (243 -> 247) and new fields arrived in responses.
    assert "api-path-added" in found and "response-property-added-optional" in found
    assert "api-path-removed-without-deprecation" not in found
    assert all(c.base_pointer or c.revision_pointer for c in report.changes)


def test_stripe_against_itself() -> None:
    base = load_document(corpus("stripe", "spec3-v120.json").read_bytes())
    assert diff_documents(base, copy.deepcopy(base)).changes == []


def test_every_asyncapi_example_against_itself() -> None:
    for path in sorted(corpus("asyncapi").glob("*.yml")):
        doc = load_document(path.read_bytes())
        assert diff_documents(doc, copy.deepcopy(doc)).changes == [], path.name
