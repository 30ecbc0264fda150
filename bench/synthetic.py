"""A synthetic pair of OpenAPI 3.0.3 documents for diff benchmarks.

Run: python bench/synthetic.py DIR [--paths 2000]
Writes DIR/base.json and DIR/revision.json. The base has `paths` paths `/resources-{i}/{id}`, each with a
get and a post on its own component schema `Resource{i}`. The revision is the same document with one
realistic change on each of ~10% of the paths, picked by `random.Random(5)`, so the pair is the same on
every run: removed operations, new required parameters, narrowed or widened schemas, a new path, a
removed response status. Stdlib only.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

Json = dict[str, Any]

SEED = 5
CHANGED_SHARE = 10  # one path in CHANGED_SHARE gets a change
STATUS_VALUES = ["active", "suspended", "archived", "deleted"]
EXPAND_VALUES = ["owner", "tags", "all"]


# --- the base document ---------------------------------------------------------------------------------


def resource_schema() -> Json:
    """About 8 properties of mixed types, with a nested object and an array."""
    return {
        "type": "object",
        "required": ["id", "name", "status"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "name": {"type": "string", "maxLength": 64},
            "count": {"type": "integer", "format": "int32", "minimum": 0},
            "price": {"type": "number", "format": "double"},
            "active": {"type": "boolean"},
            "status": {"type": "string", "enum": list(STATUS_VALUES)},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 32}, "maxItems": 20},
            "owner": {
                "type": "object",
                "required": ["id"],
                "properties": {
                    "id": {"type": "string"},
                    "email": {"type": "string", "format": "email"},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    }


def problem_schema() -> Json:
    return {
        "type": "object",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
    }


def path_item(i: int) -> Json:
    ref = {"$ref": f"#/components/schemas/Resource{i}"}
    return {
        "get": {
            "operationId": f"getResource{i}",
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                },
                {"name": "expand", "in": "query", "schema": {"type": "string", "enum": list(EXPAND_VALUES)}},
            ],
            "responses": {
                "200": {"description": "The resource", "content": {"application/json": {"schema": ref}}},
                "404": {
                    "description": "Not found",
                    "content": {
                        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                },
            },
        },
        "post": {
            "operationId": f"replaceResource{i}",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": dict(ref)}}},
            "responses": {
                "201": {"description": "Stored", "content": {"application/json": {"schema": dict(ref)}}},
            },
        },
    }


def base_document(paths: int) -> Json:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Synthetic resources", "version": "1.0.0"},
        "servers": [{"url": "https://api.example.com/v1"}],
        "paths": {f"/resources-{i}/{{id}}": path_item(i) for i in range(paths)},
        "components": {
            "schemas": {
                "Problem": problem_schema(),
                **{f"Resource{i}": resource_schema() for i in range(paths)},
            }
        },
    }


# --- one function per kind of change; each changes path i (or its schema) in place ---------------------


def _path(doc: Json, i: int) -> Json:
    item: Json = doc["paths"][f"/resources-{i}/{{id}}"]
    return item


def _schema(doc: Json, i: int) -> Json:
    schema: Json = doc["components"]["schemas"][f"Resource{i}"]
    return schema


def remove_operation(doc: Json, i: int) -> None:
    del _path(doc, i)["post"]


def add_required_query_parameter(doc: Json, i: int) -> None:
    _path(doc, i)["get"]["parameters"].append(
        {"name": "region", "in": "query", "required": True, "schema": {"type": "string"}}
    )


def remove_response_property(doc: Json, i: int) -> None:
    del _schema(doc, i)["properties"]["price"]


def remove_enum_value(doc: Json, i: int) -> None:
    _schema(doc, i)["properties"]["status"]["enum"].remove("deleted")


def decrease_max_length(doc: Json, i: int) -> None:
    _schema(doc, i)["properties"]["name"]["maxLength"] = 32


def add_optional_property(doc: Json, i: int) -> None:
    _schema(doc, i)["properties"]["description"] = {"type": "string", "maxLength": 500}


def change_integer_to_string(doc: Json, i: int) -> None:
    _schema(doc, i)["properties"]["count"] = {"type": "string"}


def add_path(doc: Json, i: int) -> None:
    doc["paths"][f"/resources-{i}/{{id}}/history"] = {
        "get": {
            "operationId": f"getResource{i}History",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {
                    "description": "Earlier versions of the resource",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "items": {"$ref": f"#/components/schemas/Resource{i}"},
                            }
                        }
                    },
                }
            },
        }
    }


def remove_response_status(doc: Json, i: int) -> None:
    del _path(doc, i)["get"]["responses"]["404"]


CHANGES: list[Callable[[Json, int], None]] = [
    remove_operation,
    add_required_query_parameter,
    remove_response_property,
    remove_enum_value,
    decrease_max_length,
    add_optional_property,
    change_integer_to_string,
    add_path,
    remove_response_status,
]


def revision_document(base: Json, paths: int) -> tuple[Json, dict[str, int]]:
    """The base with one change on each of ~10% of the paths; also how many of each kind were made."""
    doc = copy.deepcopy(base)
    doc["info"]["version"] = "1.1.0"
    rng = random.Random(SEED)
    chosen = rng.sample(range(paths), k=max(1, paths // CHANGED_SHARE))
    counts = dict.fromkeys((change.__name__ for change in CHANGES), 0)
    for n, i in enumerate(chosen):
        change = CHANGES[n % len(CHANGES)]
        change(doc, i)
        counts[change.__name__] += 1
    return doc, counts


def write_pair(directory: Path, paths: int = 2000) -> tuple[Path, Path]:
    """Write base.json and revision.json into directory (created if missing); return their paths."""
    if paths < 1:
        raise ValueError("paths must be at least 1")
    directory.mkdir(parents=True, exist_ok=True)
    base = base_document(paths)
    revision, _ = revision_document(base, paths)
    base_path, revision_path = directory / "base.json", directory / "revision.json"
    base_path.write_text(json.dumps(base, indent=2) + "\n", encoding="utf-8")
    revision_path.write_text(json.dumps(revision, indent=2) + "\n", encoding="utf-8")
    return base_path, revision_path


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic OpenAPI pair for diff benchmarks.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--paths", type=int, default=2000)
    args = parser.parse_args()
    for path in write_pair(args.directory, args.paths):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
