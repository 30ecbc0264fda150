"""Base/revision pairs for the diff tests: a schema pair per schema rule, placed in every context."""

from __future__ import annotations

from typing import Any

from contracts.diff.catalog import (
    MESSAGE_HEADERS,
    MESSAGE_PAYLOAD,
    MODEL,
    REQUEST_BODY,
    REQUEST_PARAMETER,
    RESPONSE_BODY,
    RESPONSE_HEADER,
    SchemaContext,
)

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
OBJECT_A: Schema = {"type": "object", "properties": {"a": STRING}}


def _bound_pairs() -> dict[str, tuple[Schema, Schema]]:
    pairs = {}
    for name, keyword, base_type, small, large in (
        ("max", "maximum", "integer", 5, 10),
        ("min", "minimum", "integer", 5, 10),
        ("max-length", "maxLength", "string", 5, 10),
        ("min-length", "minLength", "string", 5, 10),
        ("max-items", "maxItems", "array", 5, 10),
        ("min-items", "minItems", "array", 5, 10),
        ("max-properties", "maxProperties", "object", 5, 10),
        ("min-properties", "minProperties", "object", 5, 10),
    ):
        plain: Schema = {"type": base_type}
        pairs[f"{name}-added"] = (plain, {**plain, keyword: small})
        pairs[f"{name}-removed"] = ({**plain, keyword: small}, plain)
        pairs[f"{name}-increased"] = ({**plain, keyword: small}, {**plain, keyword: large})
        pairs[f"{name}-decreased"] = ({**plain, keyword: large}, {**plain, keyword: small})
    return pairs


# Suffix -> (base schema, revision schema) producing exactly that finding.
VALUE_PAIRS: dict[str, tuple[Schema, Schema]] = {
    "type-changed": (STRING, {"type": "boolean"}),
    "type-widened": ({"type": "integer"}, {"type": "number"}),
    "type-narrowed": ({"type": "number"}, {"type": "integer"}),
    "became-nullable": (STRING, {"type": ["string", "null"]}),
    "became-not-nullable": ({"type": ["string", "null"]}, STRING),
    "format-added": (STRING, {"type": "string", "format": "date"}),
    "format-removed": ({"type": "string", "format": "date"}, STRING),
    "format-changed": ({"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}),
    "enum-value-added": ({"enum": ["a", "b"]}, {"enum": ["a", "b", "c"]}),
    "enum-value-removed": ({"enum": ["a", "b"]}, {"enum": ["a"]}),
    "enum-added": (STRING, {"type": "string", "enum": ["a"]}),
    "enum-removed": ({"type": "string", "enum": ["a"]}, STRING),
    "const-added": (STRING, {"type": "string", "const": "a"}),
    "const-removed": ({"type": "string", "const": "a"}, STRING),
    "const-changed": ({"type": "string", "const": "a"}, {"type": "string", "const": "b"}),
    **_bound_pairs(),
    "pattern-added": (STRING, {"type": "string", "pattern": "^a"}),
    "pattern-removed": ({"type": "string", "pattern": "^a"}, STRING),
    "pattern-changed": ({"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}),
    "unique-items-added": ({"type": "array"}, {"type": "array", "uniqueItems": True}),
    "unique-items-removed": ({"type": "array", "uniqueItems": True}, {"type": "array"}),
    "additional-properties-disallowed": (OBJECT_A, {**OBJECT_A, "additionalProperties": False}),
    "additional-properties-allowed": ({**OBJECT_A, "additionalProperties": False}, OBJECT_A),
    "one-of-added": (
        {"oneOf": [STRING, {"type": "integer"}]},
        {"oneOf": [STRING, {"type": "integer"}, {"type": "boolean"}]},
    ),
    "one-of-removed": (
        {"oneOf": [STRING, {"type": "integer"}, {"type": "boolean"}]},
        {"oneOf": [STRING, {"type": "integer"}]},
    ),
    "any-of-added": (
        {"anyOf": [STRING, {"type": "integer"}]},
        {"anyOf": [STRING, {"type": "integer"}, {"type": "boolean"}]},
    ),
    "any-of-removed": (
        {"anyOf": [STRING, {"type": "integer"}, {"type": "boolean"}]},
        {"anyOf": [STRING, {"type": "integer"}]},
    ),
    "all-of-added": ({"allOf": [OBJECT_A]}, {"allOf": [OBJECT_A, {"required": ["a"]}]}),
    "all-of-removed": ({"allOf": [OBJECT_A, {"required": ["a"]}]}, {"allOf": [OBJECT_A]}),
    "became-read-only": (STRING, {"type": "string", "readOnly": True}),
    "became-write-only": (STRING, {"type": "string", "writeOnly": True}),
    "default-changed": ({"type": "string", "default": "a"}, {"type": "string", "default": "b"}),
    "default-removed": ({"type": "string", "default": "a"}, STRING),
}

# Suffix -> pair of object schemas whose property `a` changes membership or requiredness.
PROPERTY_PAIRS: dict[str, tuple[Schema, Schema]] = {
    "added-required": ({"type": "object"}, {**OBJECT_A, "required": ["a"]}),
    "added-optional": ({"type": "object"}, OBJECT_A),
    "removed-required": ({**OBJECT_A, "required": ["a"]}, {"type": "object"}),
    "removed-optional": (OBJECT_A, {"type": "object"}),
    "renamed": (OBJECT_A, {"type": "object", "properties": {"b": STRING}}),
    "became-required": (OBJECT_A, {**OBJECT_A, "required": ["a"]}),
    "became-optional": ({**OBJECT_A, "required": ["a"]}, OBJECT_A),
}


def nest(schema: Schema) -> Schema:
    return {"type": "object", "properties": {"x": schema}}


def _info() -> dict[str, Any]:
    return {"title": "Projects", "version": "1.0.0"}


def openapi_with(paths: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": _info(), "paths": paths, **extra}


def asyncapi_with(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": _info(),
        "channels": {
            "invoices": {
                "address": "billing.invoice.issued",
                "messages": {"invoiceIssued": message},
            }
        },
        "operations": {
            "sendInvoiceIssued": {"action": "send", "channel": {"$ref": "#/channels/invoices"}},
        },
    }


def document_for(context: SchemaContext, schema: Schema) -> dict[str, Any]:
    """A minimal document in which `schema` sits exactly where `context` says."""
    ok = {"description": "ok"}
    if context is REQUEST_PARAMETER:
        param = {"name": "filter", "in": "query", "schema": schema}
        return openapi_with({"/projects": {"get": {"parameters": [param], "responses": {"200": ok}}}})
    if context is REQUEST_BODY:
        body = {"content": {"application/json": {"schema": schema}}}
        return openapi_with({"/projects": {"post": {"requestBody": body, "responses": {"201": ok}}}})
    if context is RESPONSE_BODY:
        response = {"description": "ok", "content": {"application/json": {"schema": schema}}}
        return openapi_with({"/projects": {"get": {"responses": {"200": response}}}})
    if context is RESPONSE_HEADER:
        response = {"description": "ok", "headers": {"X-Page": {"schema": schema}}}
        return openapi_with({"/projects": {"get": {"responses": {"200": response}}}})
    if context is MESSAGE_PAYLOAD:
        return asyncapi_with({"payload": schema})
    if context is MESSAGE_HEADERS:
        return asyncapi_with({"headers": schema, "payload": STRING})
    if context is MODEL:  # a canonical model: the schema is the whole document
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    raise AssertionError(context)
