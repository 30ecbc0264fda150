"""A contract published without validation may carry schemas no validator can compile."""

from __future__ import annotations

import json
import logging

from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.gateway.conftest import gateway_settings
from tests.gateway.test_gateway import settled
from tests.registry.support import ADMIN, bearer, fetch_token
from tests.samples import projects


async def publish_loose(client, admin, doc) -> None:
    created = await client.post(
        "/api/v1/apis",
        json={"name": "loose", "owner": "delivery", "title": "Loose", "layer": "system", "validity": "none"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    published = await client.post(
        "/api/v1/apis/loose/versions",
        content=json.dumps(doc),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert published.status_code == 201, published.text
    bound = await client.put("/api/v1/apis/loose/adapter", json={"kind": "mock"}, headers=admin)
    assert bound.status_code == 200, bound.text


async def test_a_schema_with_a_broken_pattern_is_a_clear_503_not_a_500(app, client, admin):
    doc = projects("1.0.0")
    doc["security"] = []
    doc["paths"]["/projects"]["get"]["parameters"] = [
        {"name": "q", "in": "query", "schema": {"type": "string", "pattern": "(unclosed"}}
    ]
    await publish_loose(client, admin, doc)
    await settled(app)

    response = await client.get("/gw/loose/v1/projects", params={"q": "x"})

    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["type"] == "/problems/contract-not-enforceable"
    assert "/paths/~1projects/get/parameters/0/schema" in problem["detail"]


async def test_the_mock_adapter_answers_from_a_schema_with_a_broken_pattern(app, client, admin):
    doc = projects("1.0.0")
    doc["security"] = []
    broken = {"type": "array", "items": {"type": "string", "pattern": "(unclosed"}, "minItems": 1}
    doc["paths"]["/projects"]["get"]["responses"]["200"]["content"] = {"application/json": {"schema": broken}}
    await publish_loose(client, admin, doc)
    await settled(app)

    response = await client.get("/gw/loose/v1/projects")

    assert response.status_code < 500, response.text


async def test_shadow_response_validation_skips_a_schema_it_cannot_compile(tmp_path, caplog):
    app = create_app(gateway_settings(tmp_path, validate_responses=True))
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        doc = projects("1.0.0")
        doc["security"] = []
        broken = {"type": "array", "items": {"type": "string", "pattern": "(unclosed"}}
        doc["paths"]["/projects"]["get"]["responses"]["200"]["content"] = {
            "application/json": {"schema": broken, "example": ["a"]}
        }
        await publish_loose(client, admin, doc)
        await settled(app)

        gateway_log = logging.getLogger("charter.gateway")
        gateway_log.addHandler(caplog.handler)  # litestar's logging config does not propagate to root
        try:
            response = await client.get("/gw/loose/v1/projects")
        finally:
            gateway_log.removeHandler(caplog.handler)

    assert response.status_code == 200, response.text
    assert "response not checked, schema at /paths/~1projects/get/responses/200" in caplog.text
