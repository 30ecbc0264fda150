"""One base/revision pair per rule of the catalog, each asserting exactly the ids the diff finds."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from contracts.diff import RULES, Bump, Level, diff_documents
from contracts.diff.catalog import MODEL, SCHEMA_CONTEXTS, SchemaContext
from tests.contracts.diff_fixtures import (
    PROPERTY_PAIRS,
    STRING,
    VALUE_PAIRS,
    asyncapi_with,
    document_for,
    nest,
)

TODAY = dt.date(2026, 11, 24)
Doc = dict[str, Any]


def ids(base: Doc, revision: Doc) -> list[str]:
    return sorted(c.id for c in diff_documents(base, revision, today=TODAY).changes)


def _schema_cases() -> list[tuple[str, SchemaContext, bool, tuple[Doc, Doc]]]:
    cases = []
    for context in (*SCHEMA_CONTEXTS, MODEL):
        for suffix, (base, revision) in VALUE_PAIRS.items():
            cases.append((f"{context.root}-{suffix}", context, False, (base, revision)))
            cases.append((f"{context.nested}-{suffix}", context, True, (base, revision)))
        for suffix, (base, revision) in PROPERTY_PAIRS.items():
            cases.append((f"{context.nested}-{suffix}", context, False, (base, revision)))
    return cases


SCHEMA_CASES = _schema_cases()


@pytest.mark.parametrize(
    ("rule_id", "context", "nested", "pair"),
    SCHEMA_CASES,
    ids=[f"{case[0]}{'@nested' if case[2] else ''}@{case[1].root}" for case in SCHEMA_CASES],
)
def test_schema_rule(rule_id: str, context: SchemaContext, nested: bool, pair: tuple[Doc, Doc]) -> None:
    base, revision = (nest(s) if nested else s for s in pair)
    assert ids(document_for(context, base), document_for(context, revision)) == [rule_id]


# --- structural rules: paths, operations, parameters, bodies, responses, security, events ---------------

PROJECT = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
}


def base_openapi() -> Doc:

    def json_project() -> Doc:
        return {"application/json": {"schema": {"$ref": "#/components/schemas/Project"}}}

    return {
        "openapi": "3.1.0",
        "info": {"title": "Projects", "version": "1.0.0"},
        "paths": {
            "/projects/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": STRING}],
                "get": {
                    "operationId": "getProject",
                    "parameters": [{"name": "expand", "in": "query", "schema": STRING}],
                    "security": [{"oauth": ["projects:read"]}],
                    "responses": {
                        "200": {
                            "description": "ok",
                            "headers": {
                                "X-Rate": {"required": True, "schema": {"type": "integer"}},
                                "X-Trace": {"schema": STRING},
                            },
                            "content": json_project(),
                        },
                        "404": {"description": "missing"},
                    },
                },
                "delete": {"operationId": "deleteProject", "responses": {"204": {"description": "gone"}}},
            },
            "/projects": {
                "post": {
                    "operationId": "createProject",
                    "requestBody": {"required": True, "content": json_project()},
                    "responses": {"201": {"description": "created", "content": json_project()}},
                }
            },
        },
        "components": {
            "schemas": {"Project": PROJECT},
            "securitySchemes": {
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {"projects:read": "read", "projects:admin": "admin"},
                        }
                    },
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Key"},
            },
        },
    }


Edit = Callable[[Doc], Any]


def ORIGINAL(doc: Doc) -> None:
    """The revision is base_openapi() itself: the base edit is what the change takes away."""


def _get(doc: Doc) -> Doc:
    return doc["paths"]["/projects/{id}"]["get"]


def _delete(doc: Doc) -> Doc:
    return doc["paths"]["/projects/{id}"]["delete"]


def _post(doc: Doc) -> Doc:
    return doc["paths"]["/projects"]["post"]


def _deprecate(op: Doc, sunset: str | None) -> None:
    op["deprecated"] = True
    if sunset:
        op["x-sunset"] = sunset


# rule id -> (edit of the base, edit of the revision); both start from base_openapi().
STRUCTURAL: dict[str, tuple[Edit | None, Edit]] = {
    "api-path-added": (
        None,
        lambda d: d["paths"].update({"/clients": {"get": {"responses": {"200": {"description": "ok"}}}}}),
    ),
    "api-path-removed-without-deprecation": (None, lambda d: d["paths"].pop("/projects")),
    "api-path-removed-before-sunset": (
        lambda d: _deprecate(_post(d), "2027-06-30"),
        lambda d: d["paths"].pop("/projects"),
    ),
    "api-path-removed-after-sunset": (
        lambda d: _deprecate(_post(d), "2026-01-31"),
        lambda d: d["paths"].pop("/projects"),
    ),
    "api-operation-added": (
        None,
        lambda d: d["paths"]["/projects/{id}"].update({"put": {"responses": {"200": {"description": "ok"}}}}),
    ),
    "api-removed-without-deprecation": (None, lambda d: d["paths"]["/projects/{id}"].pop("delete")),
    "api-removed-before-sunset": (
        lambda d: _deprecate(_delete(d), None),
        lambda d: d["paths"]["/projects/{id}"].pop("delete"),
    ),
    "api-removed-after-sunset": (
        lambda d: _deprecate(_delete(d), "2026-11-24"),
        lambda d: d["paths"]["/projects/{id}"].pop("delete"),
    ),
    "api-operation-id-changed": (None, lambda d: _get(d).update(operationId="fetchProject")),
    "api-operation-id-removed": (None, lambda d: _get(d).pop("operationId")),
    "api-deprecated": (None, lambda d: _deprecate(_delete(d), None)),
    "api-reactivated": (lambda d: _deprecate(_delete(d), None), ORIGINAL),
    "api-sunset-date-changed-too-small": (
        lambda d: _deprecate(_delete(d), "2027-06-30"),
        lambda d: _deprecate(_delete(d), "2027-01-31"),
    ),
    "api-stability-decreased": (
        lambda d: _get(d).update({"x-stability-level": "stable"}),
        lambda d: _get(d).update({"x-stability-level": "beta"}),
    ),
    "request-parameter-deprecated": (None, lambda d: _get(d)["parameters"][0].update(deprecated=True)),
    "new-required-request-parameter": (
        None,
        lambda d: _get(d)["parameters"].append(
            {"name": "tenant", "in": "header", "required": True, "schema": STRING}
        ),
    ),
    "new-optional-request-parameter": (
        None,
        lambda d: _get(d)["parameters"].append({"name": "fields", "in": "query", "schema": STRING}),
    ),
    "request-parameter-removed": (None, lambda d: _get(d).pop("parameters")),
    "request-parameter-became-required": (None, lambda d: _get(d)["parameters"][0].update(required=True)),
    "request-parameter-became-optional": (lambda d: _get(d)["parameters"][0].update(required=True), ORIGINAL),
    "new-required-request-body": (
        None,
        lambda d: _delete(d).update(
            requestBody={"required": True, "content": {"application/json": {"schema": STRING}}}
        ),
    ),
    "new-optional-request-body": (
        None,
        lambda d: _delete(d).update(requestBody={"content": {"application/json": {"schema": STRING}}}),
    ),
    "request-body-removed": (None, lambda d: _post(d).pop("requestBody")),
    "request-body-became-required": (lambda d: _post(d)["requestBody"].pop("required"), ORIGINAL),
    "request-body-became-optional": (None, lambda d: _post(d)["requestBody"].pop("required")),
    "request-body-media-type-added": (
        None,
        lambda d: _post(d)["requestBody"]["content"].update({"application/xml": {"schema": STRING}}),
    ),
    "request-body-media-type-removed": (
        lambda d: _post(d)["requestBody"]["content"].update({"application/xml": {"schema": STRING}}),
        ORIGINAL,
    ),
    "response-success-status-added": (
        None,
        lambda d: _delete(d)["responses"].update({"202": {"description": "accepted"}}),
    ),
    "response-success-status-removed": (
        lambda d: _delete(d)["responses"].update({"202": {"description": "accepted"}}),
        ORIGINAL,
    ),
    "response-non-success-status-added": (
        None,
        lambda d: _delete(d)["responses"].update({"409": {"description": "conflict"}}),
    ),
    "response-non-success-status-removed": (None, lambda d: _get(d)["responses"].pop("404")),
    "response-media-type-added": (
        None,
        lambda d: _get(d)["responses"]["200"]["content"].update({"application/xml": {"schema": STRING}}),
    ),
    "response-media-type-removed": (
        lambda d: _get(d)["responses"]["200"]["content"].update({"application/xml": {"schema": STRING}}),
        ORIGINAL,
    ),
    "response-header-added": (
        None,
        lambda d: _get(d)["responses"]["200"]["headers"].update({"ETag": {"schema": STRING}}),
    ),
    "response-required-header-removed": (
        None,
        lambda d: _get(d)["responses"]["200"]["headers"].pop("X-Rate"),
    ),
    "response-optional-header-removed": (
        None,
        lambda d: _get(d)["responses"]["200"]["headers"].pop("X-Trace"),
    ),
    "response-header-became-optional": (
        None,
        lambda d: _get(d)["responses"]["200"]["headers"]["X-Rate"].pop("required"),
    ),
    "response-header-became-required": (
        None,
        lambda d: _get(d)["responses"]["200"]["headers"]["X-Trace"].update(required=True),
    ),
    "api-security-added": (None, lambda d: _delete(d).update(security=[{"oauth": ["projects:admin"]}])),
    "api-security-removed": (None, lambda d: _get(d).update(security=[])),
    "api-security-alternative-added": (None, lambda d: _get(d)["security"].append({"apiKey": []})),
    "api-security-alternative-removed": (lambda d: _get(d)["security"].append({"apiKey": []}), ORIGINAL),
    "api-security-scope-added": (None, lambda d: _get(d)["security"][0]["oauth"].append("projects:admin")),
    "api-security-scope-removed": (
        lambda d: _get(d)["security"][0]["oauth"].append("projects:admin"),
        ORIGINAL,
    ),
    "api-security-scheme-added": (None, lambda d: _get(d)["security"][0].update({"apiKey": []})),
    "api-security-scheme-removed": (lambda d: _get(d)["security"][0].update({"apiKey": []}), ORIGINAL),
}


def _edited(edit: Edit | None, start: Doc) -> Doc:
    doc = copy.deepcopy(start)
    if edit is not None:
        edit(doc)
    return doc


@pytest.mark.parametrize("rule_id", sorted(STRUCTURAL))
def test_openapi_rule(rule_id: str) -> None:
    base_edit, revision_edit = STRUCTURAL[rule_id]
    base = _edited(base_edit, base_openapi())
    revision = base_openapi() if revision_edit is ORIGINAL else _edited(revision_edit, base)
    found = ids(base, revision)
    # Removing a whole path removes each of its operations: one finding per operation is expected.
    assert set(found) == {rule_id}, found


def _event(**message: Any) -> Doc:
    return asyncapi_with({"name": "invoiceIssued", "payload": STRING, **message})


def _channels(doc: Doc) -> Doc:
    return doc["channels"]


EVENT_RULES: dict[str, tuple[Doc, Edit]] = {
    "channel-added": (
        _event(),
        lambda d: _channels(d).update({"credits": {"address": "billing.credit.issued"}}),
    ),
    "channel-removed": (_event(), lambda d: (_channels(d).pop("invoices"), d.pop("operations"))),
    "event-operation-added": (
        _event(),
        lambda d: d["operations"].update(
            {"receiveInvoice": {"action": "receive", "channel": {"$ref": "#/channels/invoices"}}}
        ),
    ),
    "event-operation-removed": (_event(), lambda d: d["operations"].clear()),
    "message-added": (
        _event(),
        lambda d: _channels(d)["invoices"]["messages"].update({"invoiceVoided": {"payload": STRING}}),
    ),
    "message-removed": (_event(), lambda d: _channels(d)["invoices"]["messages"].clear()),
    "message-content-type-changed": (
        _event(contentType="application/json"),
        lambda d: _channels(d)["invoices"]["messages"]["invoiceIssued"].update(
            contentType="application/avro"
        ),
    ),
    "message-payload-format-changed": (
        _event(
            payload={
                "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                "schema": {"type": "string"},
            }
        ),
        lambda d: _channels(d)["invoices"]["messages"]["invoiceIssued"].update(
            payload={"schemaFormat": "application/vnd.google.protobuf", "schema": "message A {}"}
        ),
    ),
    "message-payload-changed": (
        _event(
            payload={
                "schemaFormat": "application/vnd.apache.avro;version=1.9.0",
                "schema": {"type": "string"},
            }
        ),
        lambda d: _channels(d)["invoices"]["messages"]["invoiceIssued"]["payload"].update(
            schema={"type": "int"}
        ),
    ),
}


@pytest.mark.parametrize("rule_id", sorted(EVENT_RULES))
def test_asyncapi_rule(rule_id: str) -> None:
    base, edit = EVENT_RULES[rule_id]
    revision = _edited(edit, base)
    assert set(ids(base, revision)) == {rule_id}


def test_every_rule_in_the_catalog_has_a_fixture() -> None:
    covered = {case[0] for case in SCHEMA_CASES} | set(STRUCTURAL) | set(EVENT_RULES)
    assert set(RULES) - covered == set()


def test_removal_after_sunset_is_not_breaking_and_before_it_is() -> None:
    base = _edited(lambda d: _deprecate(_delete(d), "2026-06-30"), base_openapi())
    revision = _edited(lambda d: d["paths"]["/projects/{id}"].pop("delete"), base)
    after = diff_documents(base, revision, today=dt.date(2026, 7, 1))
    before = diff_documents(base, revision, today=dt.date(2026, 6, 29))
    assert (after.breaking, [c.id for c in after.changes]) == (False, ["api-removed-after-sunset"])
    assert (before.breaking, [c.id for c in before.changes]) == (True, ["api-removed-before-sunset"])


def test_change_names_operation_and_both_pointers() -> None:
    base = base_openapi()
    revision = _edited(lambda d: d["components"]["schemas"]["Project"]["properties"].pop("name"), base)
    report = diff_documents(base, revision, today=TODAY)
    by_operation = {c.operation: c for c in report.changes}
    get = by_operation["GET /projects/{id}"]
    assert get.id == "response-property-removed-optional"
    assert get.base_pointer == "/components/schemas/Project/properties/name"
    assert get.revision_pointer is None
    assert "`name`" in get.message
    post = by_operation["POST /projects"]
    assert {c.id for c in report.changes if c.operation == "POST /projects"} == {
        "request-property-removed-optional",
        "response-property-removed-optional",
    }
    assert post.level in (Level.WARNING,)
    assert report.required_bump is Bump.PATCH


def test_renamed_path_parameter_and_renamed_component_are_no_change() -> None:
    base = base_openapi()

    def rename(doc: Doc) -> None:
        item = doc["paths"].pop("/projects/{id}")
        item["parameters"][0]["name"] = "projectId"
        doc["paths"]["/projects/{projectId}"] = item
        schemas = doc["components"]["schemas"]
        schemas["ProjectV2"] = schemas.pop("Project")
        for media in (
            item["get"]["responses"]["200"]["content"],
            doc["paths"]["/projects"]["post"]["requestBody"]["content"],
        ):
            media["application/json"]["schema"] = {"$ref": "#/components/schemas/ProjectV2"}
        doc["paths"]["/projects"]["post"]["responses"]["201"]["content"]["application/json"]["schema"] = (
            copy.deepcopy(PROJECT)
        )

    assert ids(base, _edited(rename, base)) == []


def test_read_only_property_required_in_a_response_is_not_a_request_requirement() -> None:
    base = base_openapi()

    def add_created_at(doc: Doc) -> None:
        project = doc["components"]["schemas"]["Project"]
        project["properties"]["createdAt"] = {"type": "string", "format": "date-time", "readOnly": True}
        project["required"] = ["id", "createdAt"]

    found = diff_documents(base, _edited(add_created_at, base), today=TODAY)
    assert {c.id for c in found.changes} == {"response-property-added-required"}
    assert found.required_bump is Bump.MINOR


def test_openapi_30_nullable_and_exclusive_bounds() -> None:
    def doc(schema: Doc) -> Doc:
        return {
            "openapi": "3.0.3",
            "info": {"title": "t", "version": "1.0.0"},
            "paths": {
                "/a": {
                    "get": {
                        "responses": {
                            "200": {"description": "ok", "content": {"application/json": {"schema": schema}}}
                        }
                    }
                }
            },
        }

    assert ids(doc({"type": "integer"}), doc({"type": "integer", "nullable": True})) == [
        "response-body-became-nullable"
    ]
    base = {"type": "integer", "maximum": 10}
    assert ids(doc(base), doc({**base, "exclusiveMaximum": True})) == ["response-body-max-decreased"]


def test_swagger_20_body_and_form_parameters() -> None:
    def doc(body_schema: Doc, form_required: bool) -> Doc:
        return {
            "swagger": "2.0",
            "info": {"title": "t", "version": "1.0.0"},
            "paths": {
                "/a": {
                    "post": {
                        "parameters": [{"name": "body", "in": "body", "schema": body_schema}],
                        "responses": {"200": {"description": "ok", "schema": {"type": "string"}}},
                    },
                    "put": {
                        "consumes": ["application/x-www-form-urlencoded"],
                        "parameters": [
                            {"name": "note", "in": "formData", "type": "string", "required": form_required}
                        ],
                        "responses": {"200": {"description": "ok"}},
                    },
                }
            },
        }

    base = doc({"type": "object", "properties": {"a": STRING}}, False)
    revision = doc({"type": "object", "properties": {"a": STRING}, "required": ["a"]}, True)
    # PUT: the form gained a required field, so its body became required; POST: property `a` did.
    assert ids(base, revision) == [
        "request-body-became-required",
        "request-property-became-required",
        "request-property-became-required",
    ]


def test_message_payload_judged_from_the_consumer_side() -> None:
    base = _event(
        payload={
            "type": "object",
            "required": ["id"],
            "properties": {"id": STRING, "total": {"type": "number"}},
        }
    )
    optional_added = _edited(
        lambda d: d["channels"]["invoices"]["messages"]["invoiceIssued"]["payload"]["properties"].update(
            note=STRING
        ),
        base,
    )
    retyped = _edited(
        lambda d: d["channels"]["invoices"]["messages"]["invoiceIssued"]["payload"]["properties"].update(
            total=STRING
        ),
        base,
    )
    loosened = _edited(
        lambda d: d["channels"]["invoices"]["messages"]["invoiceIssued"]["payload"].update(required=[]), base
    )
    assert diff_documents(base, optional_added).breaking is False
    assert ids(base, retyped) == ["message-property-type-changed"]
    assert ids(base, loosened) == ["message-property-became-optional"]
    assert diff_documents(base, loosened).breaking is True


def test_different_families_cannot_be_compared() -> None:
    from contracts.errors import IncomparableContracts

    with pytest.raises(IncomparableContracts):
        diff_documents(base_openapi(), _event())


def test_recursive_schemas_terminate() -> None:
    base = base_openapi()
    base["components"]["schemas"]["Project"]["properties"]["parent"] = {
        "$ref": "#/components/schemas/Project"
    }
    revision = _edited(
        lambda d: d["components"]["schemas"]["Project"]["properties"]["name"].update(maxLength=10), base
    )
    found = ids(base, revision)
    assert set(found) == {"request-property-max-length-added", "response-property-max-length-added"}


def test_published_catalog_matches_the_code() -> None:
    from pathlib import Path

    from contracts.diff.catalog import render_markdown

    published = Path(__file__).resolve().parents[2] / "docs" / "changes.md"
    assert published.read_text() == render_markdown(), (
        "regenerate: python -m contracts.diff > docs/changes.md"
    )
