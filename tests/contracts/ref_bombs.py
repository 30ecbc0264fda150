"""Contracts whose `$ref`s multiply when expanded: small on disk, exponential if copied out.

`S0 .. S{depth}` where each `S{i}` has two properties that both name `S{i+1}`: written out in
full, the last schema appears 2^depth times. One operation uses `S0` for its request and its
response. The leaf type is a parameter so a variant differs in exactly one place.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

Document = dict[str, Any]


def _schemas(depth: int, ref: Callable[[int], str], leaf: str) -> list[dict[str, Any]]:
    """`S0 .. S{depth}`, where `ref(i)` is how a schema names `S{i}`."""
    schemas: list[dict[str, Any]] = [
        {"type": "object", "properties": {"a": {"$ref": ref(i + 1)}, "b": {"$ref": ref(i + 1)}}}
        for i in range(depth)
    ]
    return [*schemas, {"type": leaf}]


def _root(ref: str, version: str = "1.0.0") -> Document:
    body = {"content": {"application/json": {"schema": {"$ref": ref}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Bomb", "version": version},
        "paths": {
            "/trees": {
                "post": {
                    "operationId": "plantTree",
                    "requestBody": {"required": True, **body},
                    "responses": {"200": {"description": "planted", **body}},
                }
            }
        },
    }


def bomb_document(depth: int, *, leaf: str = "string", version: str = "1.0.0") -> Document:
    """One document: the schemas are components, referenced internally."""
    doc = _root("#/components/schemas/S0", version)
    schemas = _schemas(depth, lambda i: f"#/components/schemas/S{i}", leaf)
    doc["components"] = {"schemas": {f"S{i}": schema for i, schema in enumerate(schemas)}}
    return doc


def bomb_files(depth: int, *, leaf: str = "string", version: str = "1.0.0") -> dict[str, bytes]:
    """A bundle: the root names `schemas.json`, whose schemas refer to each other inside that file."""
    schemas = _schemas(depth, lambda i: f"#/S{i}", leaf)
    return {
        "api.json": json.dumps(_root("schemas.json#/S0", version)).encode(),
        "schemas.json": json.dumps({f"S{i}": schema for i, schema in enumerate(schemas)}).encode(),
    }


def bomb_files_one_per_schema(
    depth: int, *, leaf: str = "string", version: str = "1.0.0"
) -> dict[str, bytes]:
    """A bundle with each schema in a file of its own, naming the next file twice."""
    schemas = _schemas(depth, lambda i: f"s{i}.json", leaf)
    files = {f"s{i}.json": json.dumps(schema).encode() for i, schema in enumerate(schemas)}
    return {"api.json": json.dumps(_root("s0.json", version)).encode(), **files}


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def ref_chain_document(length: int, *, leaf: str = "string", version: str = "1.0.0") -> Document:
    """`S0 -> S1 -> ... -> S{length}`, each naming the next once: schemas nested `length` deep."""
    doc = _root("#/components/schemas/S0", version)
    schemas: dict[str, Any] = {
        f"S{i}": {"type": "object", "properties": {"next": {"$ref": f"#/components/schemas/S{i + 1}"}}}
        for i in range(length)
    }
    schemas[f"S{length}"] = {"type": leaf}
    doc["components"] = {"schemas": schemas}
    return doc


def tree_size(node: Any) -> int:
    """Members of every object and array, counted as if every shared part were written out."""
    if isinstance(node, dict):
        return len(node) + sum(tree_size(v) for v in node.values())
    if isinstance(node, list):
        return len(node) + sum(tree_size(v) for v in node)
    return 0
