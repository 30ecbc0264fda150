"""Opaque tokens at the gateway, checked by RFC 7662 introspection against a provider on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.gateway.conftest import gateway_settings
from tests.loopback import serving
from tests.registry.support import bearer

calls: list[str] = []


async def provider(scope, receive, send) -> None:
    """An introspection endpoint that knows one active opaque token, for the `reporting` consumer."""
    if scope["type"] != "http":
        return
    message = await receive()
    form = parse_qs(message.get("body", b"").decode())
    token = form.get("token", [""])[0]
    calls.append(token)
    authorized = any(k == b"authorization" and v.startswith(b"Basic ") for k, v in scope["headers"])
    if not authorized:
        body, status = {"error": "invalid_client"}, 401
    elif token == "opaque-good":
        body, status = (
            {
                "active": True,
                "client_id": "reporting-legacy",
                "sub": "reporting-legacy",
                "scope": "projects:read",
                "exp": int(time.time()) + 600,
            },
            200,
        )
    else:
        body, status = {"active": False}, 200
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@pytest.fixture(scope="module")
def introspection_url() -> Iterator[str]:
    with serving(provider) as base:
        yield f"{base}/introspect"


async def test_opaque_token_is_introspected_once_then_cached(tmp_path, introspection_url):
    settings = gateway_settings(
        tmp_path,
        introspection_url=introspection_url,
        introspection_client_id="charter-gateway",
        introspection_client_secret="gateway-secret",
    )
    calls.clear()
    async with AsyncTestClient(create_app(settings)) as client:
        for _ in range(3):
            response = await client.get("/gw/projects/v1/projects", headers=bearer("opaque-good"))
            assert response.status_code == 200, response.text
        assert calls == ["opaque-good"]
        refused = await client.post(
            "/gw/projects/v1/projects", json={"name": "x", "client": "y"}, headers=bearer("opaque-good")
        )
        assert refused.status_code == 403
        inactive = await client.get("/gw/projects/v1/projects", headers=bearer("opaque-revoked"))
        assert inactive.status_code == 401
        assert 'error="invalid_token"' in inactive.headers["www-authenticate"]
