"""Findings a person can act on: grouped by the place that changed, worded as what happened, and
security requirements compared as alternatives of scope sets."""

from __future__ import annotations

import copy
import json
from typing import Any

from contracts.diff import Level, diff_documents
from contracts.diff.groups import group_changes, shared_place
from contracts.diff.render import as_json, as_markdown, as_text
from contracts.loading import load_document
from tests.conftest import corpus

Doc = dict[str, Any]
GEO = {"$ref": "#/components/schemas/Geo"}


def document(schema: Any, **schemas: Any) -> Doc:
    """`schema` as a request body and a response body, beside the components it may refer to."""
    content = {"application/json": {"schema": schema}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Orders", "version": "1.0.0"},
        "paths": {
            "/orders": {
                "post": {
                    "requestBody": {"content": content},
                    "responses": {"200": {"description": "ok", "content": content}},
                }
            }
        },
        "components": {
            "schemas": {
                "Geo": {"type": "object", "properties": {"country": {"type": "string"}}},
                "Address": {"type": "object", "properties": {"city": {"type": "string"}}},
                **schemas,
            }
        },
    }


def found(base: Doc, revision: Doc) -> list[tuple[str, str, str]]:
    """(rule, level, what happened) for each change."""
    changes = diff_documents(base, revision).changes
    return sorted((c.id, c.level.value, c.message.rsplit(": ", 1)[-1]) for c in changes)


def holding(prop: str, schema: Any) -> Doc:
    return {"type": "object", "properties": {prop: schema}}


# --- grouping ------------------------------------------------------------------------------------------


def test_stripe_changes_are_grouped_by_the_place_that_changed() -> None:
    base = load_document(corpus("stripe", "spec3-v110.json").read_bytes())
    revision = load_document(corpus("stripe", "spec3-v120.json").read_bytes())
    report = diff_documents(base, revision)
    groups = group_changes(report.changes)

    assert len(report.changes) == 33_961
    assert len(groups) == 234
    assert sum(g.findings for g in groups) == len(report.changes)
    # Each finding sits in exactly one group, which names its operation.
    keys = {(g.id, g.base_pointer, g.revision_pointer): g for g in groups}
    for change in report.changes[::97]:
        assert change.operation in keys[(change.id, change.base_pointer, change.revision_pointer)].operations
    # Breaking first; the two `anyOf` additions of a shared component head the list, once each.
    assert [g.level for g in groups] == sorted((g.level for g in groups), key=list(Level).index)
    top = groups[:2]
    assert {g.message for g in top} == {
        f"`setup_intent_payment_method_options.{method}`: `anyOf` member "
        "`setup_intent_type_specific_payment_method_options_client` added"
        for method in ("acss_debit", "sepa_debit")
    }
    assert all(g.findings == 535 and len(g.operations) == 397 for g in top)
    assert sum(g.level is Level.ERROR for g in groups) == 10
    tax_ids = next(
        g for g in groups if g.place == "tax_id.type" and g.id == "response-property-enum-value-added"
    )
    assert tax_ids.message.startswith('`tax_id.type`: enum value "bg_uic" added; enum value ')


def test_a_shared_component_change_is_one_group_listing_its_operations() -> None:
    def with_users(doc: Doc) -> Doc:
        doc["paths"]["/users"] = {
            "get": {
                "responses": {"200": {"description": "ok", "content": {"application/json": {"schema": GEO}}}}
            }
        }
        return doc

    base = with_users(document(holding("geo", GEO)))
    revision = copy.deepcopy(base)
    revision["components"]["schemas"]["Geo"]["properties"]["country"] = {"type": ["string", "null"]}
    report = diff_documents(base, revision)
    assert len(report.changes) == 3  # the request body, its response, and GET /users
    (response, request) = group_changes(report.changes)
    assert (response.id, response.level, response.message) == (
        "response-property-became-nullable",
        Level.ERROR,
        "`Geo.country`: became nullable",
    )
    assert response.operations == ["GET /users", "POST /orders"] and response.findings == 2
    assert (request.id, request.operations) == ("request-property-became-nullable", ["POST /orders"])
    assert response.place == request.place == "Geo.country"

    text = as_text(report).splitlines()
    assert text[0] == (
        "ERROR   response-property-became-nullable  `Geo.country`: became nullable"
        "  [/components/schemas/Geo/properties/country]"
    )
    assert text[1].strip() == "reaches 2 operations: GET /users, POST /orders"
    assert text[3].strip() == "reaches 1 operation: POST /orders"  # a shared place names its operation
    assert text[-1] == (
        "2 changes (1 error, 1 info), 3 findings across operations; breaking; required bump: major"
    )
    row = "| `Geo.country`: became nullable | 2 operations: GET /users, POST /orders |"
    assert row in as_markdown(report)
    body = json.loads(as_json(report))
    assert len(body["groups"]) == 2 and len(body["changes"]) == 3


def test_shared_place_names_the_component_and_the_path_within_it() -> None:
    assert shared_place("/components/schemas/a~1b/properties/x/items/properties/y") == "a/b.x[].y"
    assert shared_place("/components/schemas/Pet/properties/tag/anyOf/1") == "Pet.tag"
    assert shared_place("/components/schemas/Pet/properties/kind/enum") == "Pet.kind"
    assert shared_place("/definitions/Pet/additionalProperties") == "Pet.*"
    assert shared_place("/paths/~1pets/get/responses/200/content/application~1json/schema") is None


# --- wording -------------------------------------------------------------------------------------------


def test_a_null_member_added_to_a_union_is_nullability() -> None:
    base = document(holding("geo", GEO))
    revision = document(holding("geo", {"anyOf": [GEO, {"type": "null"}]}))
    assert found(base, revision) == [
        ("request-property-became-nullable", "info", "became nullable"),
        ("response-property-became-nullable", "error", "became nullable"),
    ]
    # And back; a null member inside an existing union too.
    assert {f[0] for f in found(revision, base)} == {
        "request-property-became-not-nullable",
        "response-property-became-not-nullable",
    }
    two = {"oneOf": [GEO, {"$ref": "#/components/schemas/Address"}]}
    three = {"oneOf": [*two["oneOf"], {"type": "null"}]}
    assert [f[2] for f in found(document(holding("geo", two)), document(holding("geo", three)))] == [
        "became nullable",
        "became nullable",
    ]


def test_a_union_member_replaced_by_another_type_is_a_type_change() -> None:
    for old in ({"type": "string"}, {"anyOf": [{"type": "string"}, {"type": "null"}]}):
        base = document(holding("geo", old))
        revision = document(holding("geo", {"anyOf": [GEO, {"type": "null"}]}))
        changes = [f for f in found(base, revision) if "nullable" not in f[0]]
        assert changes == [
            ("request-property-type-changed", "error", "type changed from string to object"),
            ("response-property-type-changed", "error", "type changed from string to object"),
        ], old


def test_a_property_renamed_with_its_schema_is_a_rename_and_breaks_requests() -> None:
    base = document(holding("geography", GEO))
    revision = document(holding("residency", GEO))
    assert found(base, revision) == [
        ("request-property-renamed", "error", "renamed `geography` to `residency`"),
        ("response-property-renamed", "error", "renamed `geography` to `residency`"),
    ]
    # A different schema, or two candidates with the same one, is not a rename.
    other = document(holding("residency", {"type": "string"}))
    assert {f[0] for f in found(base, other)} == {
        "request-property-removed-optional",
        "request-property-added-optional",
        "response-property-removed-optional",
        "response-property-added-optional",
    }
    twins = document({"type": "object", "properties": {"residency": GEO, "domicile": GEO}})
    assert "request-property-renamed" not in {f[0] for f in found(base, twins)}


def test_a_rename_in_a_shared_component_is_one_group_at_the_component() -> None:
    base = document(GEO)
    revision = copy.deepcopy(base)
    geo = revision["components"]["schemas"]["Geo"]
    geo["properties"] = {"nation": geo["properties"].pop("country")}
    messages = {g.message for g in group_changes(diff_documents(base, revision).changes)}
    assert messages == {"`Geo`: renamed `country` to `nation`"}


def test_a_free_form_object_narrowed_to_a_union_is_one_narrowing() -> None:
    base = document(holding("meta", {"type": "object"}))
    union = {"oneOf": [GEO, {"$ref": "#/components/schemas/Address"}]}
    revision = document(holding("meta", union))
    assert found(base, revision) == [
        ("request-property-type-narrowed", "error", "free-form object narrowed to `Geo` or `Address`"),
        ("response-property-type-narrowed", "info", "free-form object narrowed to `Geo` or `Address`"),
    ]
    assert found(revision, base) == [
        ("request-property-type-widened", "info", "`Geo` or `Address` widened to a free-form object"),
        ("response-property-type-widened", "error", "`Geo` or `Address` widened to a free-form object"),
    ]


def test_an_unnamed_union_member_says_what_it_is() -> None:
    base = document(holding("url", {"type": "string", "description": "a link"}))
    revision = document(holding("url", {"anyOf": [{"type": "string"}, {"type": "string", "enum": [""]}]}))
    assert found(base, revision) == [
        ("request-property-any-of-added", "info", '`anyOf` member #1 (enum "") added'),
        ("response-property-any-of-added", "error", '`anyOf` member #1 (enum "") added'),
    ]


# --- security ------------------------------------------------------------------------------------------

SCHEMES = {
    "oauth": {
        "type": "oauth2",
        "flows": {
            "clientCredentials": {"tokenUrl": "/token", "scopes": {"read": "", "write": "", "admin": ""}}
        },
    },
    "key": {"type": "apiKey", "in": "header", "name": "X-Key"},
}


def secured(security: list[dict[str, list[str]]], schemes: Doc = SCHEMES) -> Doc:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Orders", "version": "1.0.0"},
        "paths": {"/orders": {"get": {"security": security, "responses": {"200": {"description": "ok"}}}}},
        "components": {"securitySchemes": schemes},
    }


def security_ids(base: list, revision: list, schemes: Doc = SCHEMES) -> list[tuple[str, str]]:
    changes = diff_documents(secured(base), secured(revision, schemes)).changes
    return sorted((c.id, c.level.value) for c in changes)


def test_adding_an_alternative_never_breaks_even_with_the_same_scheme() -> None:
    read = [{"oauth": ["read"]}]
    assert security_ids(read, [*read, {"oauth": ["read", "admin"]}]) == [
        ("api-security-alternative-added", "info")
    ]
    assert security_ids(read, [{"key": []}, *read]) == [("api-security-alternative-added", "info")]


def test_requirements_compare_as_scope_sets_within_alternatives() -> None:
    # Split one requirement into two alternatives: a client holding both scopes still passes, and
    # one holding either now does too.
    both = [{"oauth": ["read", "write"]}]
    split = [{"oauth": ["read"]}, {"oauth": ["write"]}]
    assert security_ids(both, split) == [
        ("api-security-alternative-added", "info"),
        ("api-security-scope-removed", "info"),
    ]
    # Merge two alternatives into one requirement: each client lacks a scope it never needed.
    assert security_ids(split, both) == [
        ("api-security-alternative-removed", "error"),
        ("api-security-scope-added", "error"),
    ]
    # A scheme dropped from a requirement (AND) loosens it; one added tightens it.
    assert security_ids([{"oauth": ["read"], "key": []}], [{"oauth": ["read"]}]) == [
        ("api-security-scheme-removed", "info")
    ]
    assert security_ids([{"oauth": ["read"]}], [{"oauth": ["read"], "key": []}]) == [
        ("api-security-scheme-added", "error")
    ]


def test_schemes_are_known_by_their_definition_not_their_name() -> None:
    renamed = {"OAuth2": SCHEMES["oauth"], "ApiKey": SCHEMES["key"]}
    assert security_ids([{"oauth": ["read"]}], [{"OAuth2": ["read"]}], renamed) == []
    assert security_ids([{"oauth": ["read"]}], [{"OAuth2": ["read", "write"]}], renamed) == [
        ("api-security-scope-added", "error")
    ]
    # A scope newly on offer in the flow changes no requirement.
    offered = copy.deepcopy(SCHEMES)
    offered["oauth"]["flows"]["clientCredentials"]["scopes"]["export"] = ""
    assert security_ids([{"oauth": ["read"]}], [{"oauth": ["read"]}], offered) == []


def test_each_value_added_to_an_enum_and_each_rename_in_an_object_is_reported() -> None:
    """Several changes at one place are several findings: once only the first of them was kept."""
    base = document(holding("status", {"type": "string", "enum": ["a", "b"]}))
    revision = document(holding("status", {"type": "string", "enum": ["a", "b", "c", "d"]}))
    assert [f[2] for f in found(base, revision) if f[0].startswith("response")] == [
        'enum value "c" added',
        'enum value "d" added',
    ]
    two = document({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}})
    renamed = document({"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "integer"}}})
    assert [f[2] for f in found(two, renamed) if f[0].startswith("request")] == [
        "renamed `a` to `x`",
        "renamed `b` to `y`",
    ]
    (group, _) = group_changes(diff_documents(base, revision).changes)
    assert group.message.endswith('`status`: enum value "c" added; enum value "d" added')
    assert group.findings == 2 and group.operations == ["POST /orders"]
