"""Changes leave as events through the outbox, only when they commit."""

from __future__ import annotations

import asyncio

from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.events import Event
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects


async def test_publish_and_deprecate_reach_bus_subscribers_in_order(database_url):
    app = create_app(make_settings(database_url))
    received: list[Event] = []
    arrived = asyncio.Event()

    async def collect(item: Event) -> None:
        received.append(item)
        if len(received) == 2:
            arrived.set()

    app.state.bus.subscribe("contract.", collect)
    async with AsyncTestClient(app) as client:
        headers = {**bearer(await fetch_token(client, *ADMIN)), **JSON_HEADERS}
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=headers)
        ok = await client.post(
            "/api/v1/apis/projects/versions",
            content=as_json(projects()),
            headers=headers,
            params={"owner": "delivery"},
        )
        assert ok.status_code == 201
        conflict = await client.post(
            "/api/v1/apis/projects/versions",
            content=as_json(projects(description="other")),
            headers=headers,
        )
        assert conflict.status_code == 409
        await client.post("/api/v1/apis/projects/versions/1.0.0/deprecate", json={}, headers=headers)
        await asyncio.wait_for(arrived.wait(), timeout=10)

    assert [(e.topic, e.payload["version"]) for e in received] == [
        ("contract.published", "1.0.0"),
        ("contract.deprecated", "1.0.0"),
    ]
    assert received[1].payload["state"] == "deprecated"
