"""The gateway follows `$ref`s wherever they point and never expands them: shared schemas and path items."""

from __future__ import annotations

import json

from gateway.adapters.mock import MAX_SAMPLE_VALUES
from tests.contracts.ref_bombs import bomb_files, zipped
from tests.gateway.conftest import settled


async def publish(app, client, admin, api: str, content: bytes, media_type: str) -> None:
    published = await client.post(
        f"/api/v1/apis/{api}/versions",
        content=content,
        params={"owner": "delivery"},
        headers={**admin, "Content-Type": media_type},
    )
    assert published.status_code == 201, published.text
    bound = await client.put(f"/api/v1/apis/{api}/adapter", json={"kind": "mock"}, headers=admin)
    assert bound.status_code == 200, bound.text
    await settled(app)


async def test_a_bundle_bomb_validates_requests_through_its_shared_schemas(app, client, admin):
    # In the resolved bundle the response schema is a `$ref` to the request's copy under /paths.
    await publish(app, client, admin, "bomb", zipped(bomb_files(18)), "application/zip")

    valid = await client.post("/gw/bomb/v1/trees", json={"a": {"b": {"a": {}}}})
    invalid = await client.post("/gw/bomb/v1/trees", json={"a": {"b": {"a": 5}}})

    assert valid.status_code == 200, valid.text
    assert invalid.status_code == 400, invalid.text
    assert [e["pointer"] for e in invalid.json()["errors"]] == ["/body/a/b/a"]


async def test_a_path_item_shared_by_two_paths_routes_both(app, client, admin):
    item = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "get": {"responses": {"200": {"description": "ok", "content": {"application/json": {"example": 1}}}}},
    }
    root = {
        "openapi": "3.0.3",
        "info": {"title": "Things", "version": "1.0.0"},
        "paths": {"/things/{id}": {"$ref": "item.json"}, "/stuff/{id}": {"$ref": "item.json"}},
    }
    files = {"api.json": json.dumps(root).encode(), "item.json": json.dumps(item).encode()}
    await publish(app, client, admin, "things", zipped(files), "application/zip")

    assert (await client.get("/gw/things/v1/things/7")).status_code == 200
    assert (await client.get("/gw/things/v1/stuff/7")).status_code == 200
    refused = await client.get("/gw/things/v1/stuff/seven")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["pointer"] == "/path/id"


async def test_the_mock_adapter_samples_a_bounded_number_of_values(app, client, admin):
    # Four properties per level, each naming the next level: 4^6 values six levels down.
    width, depth = 4, 8
    schemas = {
        f"L{i}": {
            "type": "object",
            "properties": {f"p{k}": {"$ref": f"#/components/schemas/L{i + 1}"} for k in range(width)},
        }
        for i in range(depth)
    }
    schemas[f"L{depth}"] = {"type": "string"}
    ok = {
        "description": "ok",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/L0"}}},
    }
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "Wide", "version": "1.0.0"},
        "paths": {"/wide": {"get": {"responses": {"200": ok}}}},
        "components": {"schemas": schemas},
    }
    await publish(app, client, admin, "wide", json.dumps(doc).encode(), "application/json")

    response = await client.get("/gw/wide/v1/wide")

    assert response.status_code == 200, response.text
    assert 0 < sampled_values(response.json()) <= MAX_SAMPLE_VALUES


def sampled_values(value: object) -> int:
    """Values the mock made up; a property it had no budget left for is null."""
    if isinstance(value, dict):
        return 1 + sum(sampled_values(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(sampled_values(v) for v in value)
    return 0 if value is None else 1
