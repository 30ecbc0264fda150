"""Gateway calls reach the gateway before litestar routes anything: what litestar did for them still
happens (the body deadline, the Host check, a problem for an unexpected error)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from registry.api.gateway import GatewayFirst
from registry.app import create_app
from tests.gateway.conftest import gateway_settings
from tests.registry.support import bearer, fetch_token


def http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def call(app: Any, scope: dict[str, Any], chunks: list[bytes]) -> list[dict[str, Any]]:
    """The messages `app` sends for a request whose body is `chunks`, and then never any more."""
    pending = list(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return {"type": "http.request", "body": pending.pop(0), "more_body": True}
        await asyncio.Event().wait()  # the client stalls
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=20)
    return sent


async def test_a_gateway_body_that_never_arrives_is_answered_408(tmp_path):
    app = create_app(gateway_settings(tmp_path, body_timeout_seconds=1))
    async with AsyncTestClient(app) as client:
        token = bearer(await fetch_token(client, "billing-app", "billing-secret"))["Authorization"]
        headers = [
            (b"host", b"testserver"),
            (b"authorization", token.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"1000"),
        ]
        scope = http_scope("POST", "/gw/projects/v1/projects", headers)
        sent = await call(app, scope, [b'{"name": "ERP'])
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 408
    assert msgspec.json.decode(sent[1]["body"])["type"] == "/problems/request-timeout"
    assert len(sent) == 2  # what the gateway answered afterwards went nowhere


async def test_a_gateway_call_with_a_malformed_host_is_refused_as_before(client, billing):
    response = await client.get("/gw/projects/v1/projects/p-1", headers={**billing, "Host": "bad host/x"})
    assert response.status_code == 400


async def test_an_unexpected_error_in_the_gateway_is_a_logged_500_problem(caplog):
    async def failing_gateway(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug in an adapter")

    async def registry_app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("gateway calls never reach the registry's router")

    entry = GatewayFirst(failing_gateway, registry_app, prefix="/gw")
    sent = await call(entry, http_scope("GET", "/gw/projects/v1/projects", [(b"host", b"testserver")]), [])
    assert sent[0]["status"] == 500
    problem = msgspec.json.decode(sent[1]["body"])
    assert (problem["type"], problem["instance"]) == ("/problems/internal-error", "/gw/projects/v1/projects")
    assert "a bug in an adapter" in caplog.text
