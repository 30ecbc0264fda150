"""A request body is bounded in size and nesting before any schema validates it."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.settings import Settings
from tests.gateway.conftest import gateway_settings
from tests.registry.support import bearer, fetch_token

PROBLEM = "application/problem+json"
JSON = {"Content-Type": "application/json"}


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def project(name: bytes = b'"x"', extra: bytes = b"null") -> bytes:
    return b'{"name": ' + name + b', "client": "acme", "x-extra": ' + extra + b"}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (project(name=nested_list(300)), "nested deeper than 64 levels"),
        (project(extra=nested_list(300)), "nested deeper than 64 levels"),
        (project(extra=nested_list(5000)), "nested too deeply"),
        (project(extra=b'{"a": ' * 300 + b"1" + b"}" * 300), "nested deeper than 64 levels"),
    ],
    ids=["in-a-validated-property", "in-an-unchecked-property", "past-the-parser", "objects"],
)
async def test_a_body_nested_past_the_limit_is_400(client, billing, body, message):
    response = await client.post("/gw/projects/v1/projects", content=body, headers={**billing, **JSON})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == "/problems/invalid-request"
    assert [e["pointer"] for e in problem["errors"]] == ["/body"]
    assert message in problem["errors"][0]["message"]


async def test_depth_and_size_limits_come_from_the_settings(tmp_path):
    settings = gateway_settings(tmp_path, gateway_max_body_depth=4, gateway_max_body_bytes=2048)
    async with AsyncTestClient(create_app(settings)) as client:
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))

        async def post(body: bytes):
            return await client.post("/gw/projects/v1/projects", content=body, headers={**billing, **JSON})

        shallow = await post(project(extra=nested_list(4)))  # the object, then four lists: depth 4
        deep = await post(project(extra=nested_list(5)))
        large = await post(project(name=b'"' + b"x" * 4096 + b'"'))

    assert shallow.status_code == 201, shallow.text
    assert deep.status_code == 400
    assert "nested deeper than 4 levels" in deep.json()["errors"][0]["message"]
    assert large.status_code == 413
    assert large.headers["content-type"].startswith(PROBLEM)
    assert large.json()["detail"] == "at most 2048 bytes"


def test_a_depth_the_validator_cannot_follow_is_refused_at_start():
    with pytest.raises(ValueError, match="CHARTER_GATEWAY_MAX_BODY_DEPTH must be between 1 and 250"):
        Settings.from_env({"CHARTER_GATEWAY_MAX_BODY_DEPTH": "1000"})
