"""Contracts that multiply when their references are expanded cost linear work in every route that reads them.

The bomb (see tests/contracts/ref_bombs.py) is 600 bytes zipped and 2^18 copies of its last schema
when expanded. Its one breaking change (the leaf type) must come out as two changes, one per body;
an expansion would report one per path through the schemas.
"""

from __future__ import annotations

import json

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.contracts.ref_bombs import bomb_document, bomb_files, ref_chain_document, zipped
from tests.registry.support import bearer, fetch_token, make_settings

PROBLEM = "application/problem+json"
API = "/api/v1/apis/bomb"
DEPTH = 18


def bomb(shape: str, version: str, leaf: str = "string") -> tuple[bytes, str]:
    if shape == "bundle":
        return zipped(bomb_files(DEPTH, leaf=leaf, version=version)), "application/zip"
    return json.dumps(bomb_document(DEPTH, leaf=leaf, version=version)).encode(), "application/json"


async def send(client, path: str, headers: dict[str, str], body: tuple[bytes, str], **params):
    content, media_type = body
    headers = {**headers, "Content-Type": media_type}
    return await client.post(path, content=content, headers=headers, params=params)


@pytest.mark.parametrize("shape", ["bundle", "document"])
async def test_a_bomb_is_published_diffed_and_judged_in_linear_work(
    client, publisher_headers, reader_headers, shape
):
    first = await send(client, f"{API}/versions", publisher_headers, bomb(shape, "1.0.0"), owner="delivery")
    assert first.status_code == 201, first.text
    second = await send(client, f"{API}/versions", publisher_headers, bomb(shape, "2.0.0", "integer"))
    assert second.status_code == 201, second.text
    registered = await client.post(
        f"{API}/consumers",
        json={"consumer": "arborist", "team": "delivery", "versions": "^2", "operations": ["plantTree"]},
        headers=publisher_headers,
    )
    assert registered.status_code == 201, registered.text

    stored = await client.get(f"{API}/versions/2.0.0/changes", headers=reader_headers)
    between = await client.get(
        f"{API}/versions/2.0.0/changes", params={"from": "1.0.0"}, headers=reader_headers
    )
    verdict = await send(client, f"{API}/compatibility", reader_headers, bomb(shape, "3.0.0", "boolean"))
    impact = await send(client, f"{API}/impact", reader_headers, bomb(shape, "3.0.0", "boolean"))

    for response in (stored, between, verdict, impact):
        assert response.status_code == 200, response.text
    expected = ["request-property-type-changed", "response-property-type-changed"]
    assert sorted(g["id"] for g in stored.json()["groups"]) == expected
    assert sorted(g["id"] for g in between.json()["groups"]) == expected
    assert sorted(c["id"] for c in verdict.json()["changes"]) == expected
    assert sorted(c["id"] for c in impact.json()["changes"]) == expected
    assert [a["consumer"] for a in impact.json()["affected"]] == ["arborist"]


async def test_a_diff_past_the_comparison_budget_is_422_and_stores_nothing(database_url):
    app = create_app(make_settings(database_url, max_schema_comparisons=10))
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, "admin", "admin-secret"))
        reader = bearer(await fetch_token(client, "reader", "reader-secret"))
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
        first = await send(client, f"{API}/versions", admin, bomb("bundle", "1.0.0"), owner="delivery")
        assert first.status_code == 201, first.text

        refused = await send(client, f"{API}/versions", admin, bomb("bundle", "2.0.0", "integer"))
        dry_run = await send(client, f"{API}/compatibility", reader, bomb("bundle", "2.0.0", "integer"))
        listed = await client.get(f"{API}/versions", headers=reader)

    for response in (refused, dry_run):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        assert response.json()["type"] == "/problems/document-too-complex"
        assert "more than 10 schema comparisons" in response.json()["detail"]
    assert [v["version"] for v in listed.json()["items"]] == ["1.0.0"]


async def test_schemas_nested_too_deep_through_references_are_422_not_500(client, publisher_headers):
    body = (json.dumps(ref_chain_document(300)).encode(), "application/json")
    first = await send(client, f"{API}/versions", publisher_headers, body, owner="delivery")
    assert first.status_code == 201, first.text

    successor_doc = ref_chain_document(300, leaf="integer", version="2.0.0")
    successor = (json.dumps(successor_doc).encode(), "application/json")
    refused = await send(client, f"{API}/versions", publisher_headers, successor)

    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "/problems/document-too-complex"
    assert "deeper than 128 levels" in refused.json()["detail"]
