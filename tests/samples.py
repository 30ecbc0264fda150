"""Small contracts for tests, built as dicts so each test states the one thing it changes."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import yaml

_PROJECTS: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Projects",
        "version": "1.0.0",
        "description": "Professional-services projects and their milestones.",
        "contact": {"name": "Delivery", "email": "delivery@example.com"},
    },
    "security": [{"oauth": ["projects:read"]}],
    "paths": {
        "/projects": {
            "get": {
                "operationId": "listProjects",
                "summary": "List projects",
                "tags": ["projects"],
                "responses": {"200": {"description": "Projects"}},
            },
            "post": {
                "operationId": "createProject",
                "summary": "Create a project from a won opportunity",
                "security": [{"oauth": ["projects:write"]}],
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Project"}}}
                },
                "responses": {"201": {"description": "Created"}},
            },
        },
        "/projects/{projectId}": {
            "get": {
                "operationId": "getProject",
                "summary": "Read one project",
                "parameters": [
                    {"name": "projectId", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "The project"},
                    "404": {"description": "No such project"},
                },
            }
        },
    },
    "components": {
        "securitySchemes": {
            "oauth": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": "https://auth.example.com/token",
                        "scopes": {"projects:read": "read", "projects:write": "write"},
                    }
                },
            }
        },
        "schemas": {
            "Project": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "client": {"type": "string"}},
            }
        },
    },
}

INVOICE_EVENTS: dict[str, Any] = {
    "asyncapi": "3.0.0",
    "info": {"title": "Invoice events", "version": "1.0.0"},
    "channels": {
        "invoiceIssued": {
            "address": "finance.invoice.issued",
            "messages": {"issued": {"$ref": "#/components/messages/InvoiceIssued"}},
        }
    },
    "operations": {
        "onInvoiceIssued": {
            "action": "receive",
            "channel": {"$ref": "#/channels/invoiceIssued"},
            "summary": "An invoice was issued to a client",
        }
    },
    "components": {
        "messages": {
            "InvoiceIssued": {
                "name": "InvoiceIssued",
                "payload": {
                    "type": "object",
                    "properties": {"invoiceId": {"type": "string"}, "amount": {"type": "number"}},
                },
            }
        }
    },
}


def projects(version: str = "1.0.0", **info: Any) -> dict[str, Any]:
    doc = copy.deepcopy(_PROJECTS)
    doc["info"]["version"] = version
    doc["info"].update(info)
    return doc


def rescoped(doc: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The document with its `projects:*` scopes named `<prefix>:*`: a scope belongs to one team."""
    return msgspec.json.decode(msgspec.json.encode(doc).replace(b'"projects:', f'"{prefix}:'.encode()))


def invoice_events(version: str = "1.0.0") -> dict[str, Any]:
    doc = copy.deepcopy(INVOICE_EVENTS)
    doc["info"]["version"] = version
    return doc


def client_model(**changes: Any) -> dict[str, Any]:
    """Version 1 of a canonical `client` model (JSON Schema 2020-12); `changes` replace its keywords."""
    model: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Client",
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "country": {"type": "string", "pattern": "^[A-Z]{2}$"},
            "vatId": {"type": "string"},
        },
    }
    model.update(copy.deepcopy(changes))
    return model


def as_json(doc: dict[str, Any]) -> bytes:
    return msgspec.json.encode(doc)


def as_yaml(doc: dict[str, Any], *, reverse_keys: bool = False) -> bytes:
    """YAML spelling; `reverse_keys` writes every mapping in reverse key order."""

    def reverse(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: reverse(node[k]) for k in reversed(list(node))}
        if isinstance(node, list):
            return [reverse(v) for v in node]
        return node

    return yaml.safe_dump(reverse(doc) if reverse_keys else doc, sort_keys=False).encode()


JSON_HEADERS = {"Content-Type": "application/json"}
YAML_HEADERS = {"Content-Type": "application/yaml"}
