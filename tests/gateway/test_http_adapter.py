"""The HTTP upstream adapter against a real upstream server on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from tests.gateway.conftest import settled
from tests.loopback import free_port, serving


async def upstream_app(scope, receive, send) -> None:
    """Answers as the `projects` contract's upstream would, with a few misbehaving project ids."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}

    async def answer(status: int, body: bytes, content_type: bytes = b"application/json", extra=()) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), (b"x-upstream", b"yes"), *extra],
            }
        )
        await send({"type": "http.response.body", "body": body})

    if path == "/projects/slow":
        await asyncio.sleep(2)
        await answer(200, b"{}")
    elif path == "/projects/boom":
        await answer(500, b'{"error": "upstream broke"}')
    elif path == "/projects/moved":
        await answer(302, b"{}", extra=[(b"location", b"http://169.254.169.254/latest/meta-data/")])
    elif path == "/projects/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        for chunk in (
            b'{"id": "stream", ',
            b'"name": "slow body", ',
            b'"client": "acme", "status": "active"}',
        ):
            await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        query = scope["query_string"].decode()
        await answer(
            200,
            json.dumps(
                {
                    "path": path,
                    "query": query,
                    "headers": headers,
                    "header_list": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                }
            ).encode(),
            extra=[(b"connection", b"close")],
        )


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(upstream_app) as base:
        yield base


async def bind(client, app, admin, url: str, read_timeout: float = 0.5) -> None:
    response = await client.put(
        "/api/v1/apis/projects/adapter",
        json={"kind": "http", "url": url, "connect_timeout": 0.5, "read_timeout": read_timeout},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    await settled(app)


async def test_forwards_path_query_and_trace_but_not_hop_by_hop_headers(
    app, client, admin, billing, upstream
):
    await bind(client, app, admin, upstream + "/base")
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.get(
        "/gw/projects/v1/projects",
        params={"client": "acme"},
        headers={**billing, "traceparent": incoming, "Connection": "keep-alive", "X-Custom": "kept"},
    )
    assert response.status_code == 200, response.text
    seen = response.json()
    assert seen["path"] == "/base/projects"
    assert seen["query"] == "client=acme"
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["headers"]["x-charter-consumer"] == "billing-app"
    assert "authorization" not in seen["headers"]
    assert seen["headers"]["traceparent"] == response.headers["traceparent"]
    assert seen["headers"]["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert response.headers["x-upstream"] == "yes"
    assert "connection" not in response.headers  # the upstream's `Connection: close` is hop-by-hop


async def test_upstream_errors_pass_through_and_a_slow_body_streams(app, client, admin, billing, upstream):
    await bind(client, app, admin, upstream)
    boom = await client.get("/gw/projects/v1/projects/boom", headers=billing)
    assert (boom.status_code, boom.json()) == (500, {"error": "upstream broke"})
    streamed = await client.get("/gw/projects/v1/projects/stream", headers=billing)
    assert streamed.status_code == 200
    assert streamed.json()["name"] == "slow body"


async def test_timeout_is_504_and_an_unreachable_upstream_502(app, client, admin, billing, upstream):
    await bind(client, app, admin, upstream, read_timeout=0.3)
    started = time.monotonic()
    slow = await client.get("/gw/projects/v1/projects/slow", headers=billing)
    assert slow.status_code == 504
    assert slow.json()["type"] == "/problems/upstream-timeout"
    assert time.monotonic() - started < 1.9  # GET is retried, but each try gives up after 0.3 s

    await bind(client, app, admin, f"http://127.0.0.1:{free_port()}")
    down = await client.get("/gw/projects/v1/projects", headers=billing)
    assert down.status_code == 502
    assert down.headers["content-type"] == "application/problem+json"
    # A POST is never retried: the upstream may have acted on it.
    posted = await client.post("/gw/projects/v1/projects", json={"name": "x", "client": "y"}, headers=billing)
    assert posted.status_code == 502


async def test_headers_the_gateway_asserts_are_never_the_clients(app, client, admin, billing, upstream):
    """A client cannot pass itself off as another consumer, or plant the trace the upstream sees."""
    await bind(client, app, admin, upstream)
    forged = [
        ("X-Charter-Consumer", "payroll-app"),
        ("x-charter-consumer", "admin"),
        ("X-CHARTER-SCOPES", "projects:admin"),
        ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ("Traceparent", "00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-bbbbbbbbbbbbbbbb-01"),
    ]
    response = await client.get(
        "/gw/projects/v1/projects", headers=[*billing.items(), *forged, ("X-Custom", "kept")]
    )
    assert response.status_code == 200, response.text
    seen = response.json()["header_list"]

    def values(name: str) -> list[str]:
        return [v for k, v in seen if k == name]

    assert values("x-charter-consumer") == ["billing-app"]
    assert values("x-charter-scopes") == []
    assert values("traceparent") == [response.headers["traceparent"]]
    assert values("x-custom") == ["kept"]


async def test_a_redirect_from_the_upstream_is_passed_back_not_followed(
    app, client, admin, billing, upstream
):
    await bind(client, app, admin, upstream)
    response = await client.get("/gw/projects/v1/projects/moved", headers=billing, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "http://169.254.169.254/latest/meta-data/"
