"""The gateway records which consumer called which operation; impact analysis uses it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import yaml
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from registry import usage
from registry.app import create_app
from registry.db.models import ApiDailyUsage, utcnow
from registry.demo import DEMO_DIR
from tests.gateway.conftest import CONSUMERS
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings

T = TypeVar("T")


async def test_usage_is_recorded_and_counts_in_impact(app, client, billing, reporting, admin):
    for _ in range(3):
        assert (await client.get("/gw/projects/v1/projects/p-1", headers=billing)).status_code == 200
    assert (await client.get("/gw/projects/v1/projects", headers=reporting)).status_code == 200
    assert (await client.get("/gw/projects/v1/projects/nope", headers=reporting)).status_code == 404
    await usage.flush(app.state.sessionmaker, app.state.gateway.usage)

    seen = (await client.get("/api/v1/apis/projects/usage", headers=admin)).json()["items"]
    assert [(u["consumer"], u["operation"], u["calls"]) for u in seen] == [
        ("billing-app", "GET /projects/{projectId}", 3),
        ("reporting-app", "GET /projects", 1),
    ]

    candidate = yaml.safe_load((DEMO_DIR / "projects-1.1.0.yaml").read_text())
    candidate["info"]["version"] = "2.0.0"
    del candidate["paths"]["/projects/{projectId}"]["get"]
    impact = await client.post(
        "/api/v1/apis/projects/impact",
        content=json.dumps(candidate),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert impact.status_code == 200, impact.text
    (affected,) = impact.json()["affected"]
    assert affected["consumer"] == "billing-app"
    assert (affected["observed"], affected["team"], affected["base_version"]) == (True, None, "1.1.0")
    assert affected["change_ids"] == ["api-removed-without-deprecation"]


async def in_app_loop(client: AsyncTestClient, function: Callable[..., Awaitable[T]], *args: object) -> T:
    """On the app's own event loop, where its database connections live (PostgreSQL cares)."""
    return await asyncio.to_thread(client.blocking_portal.call, function, *args)


async def test_calls_are_kept_per_day_and_the_counts_of_replicas_add_up(database_url: str) -> None:
    """Two replicas over one database serve calls and store their counts: one row per version,
    consumer and day holds the sum, beside the totals per operation the usage API reports."""
    settings = make_settings(database_url, demo=True, clients_json=json.dumps(CLIENTS + CONSUMERS))
    first, second = create_app(settings), create_app(settings)
    async with AsyncTestClient(first) as one, AsyncTestClient(second) as two:
        for client, calls in ((one, 2), (two, 3), (one, 1)):
            billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
            for _ in range(calls):
                assert (await client.get("/gw/projects/v1/projects/p-1", headers=billing)).status_code == 200
            for app, replica in ((first, one), (second, two)):
                await in_app_loop(replica, usage.flush, app.state.sessionmaker, app.state.gateway.usage)

        async def stored() -> list[tuple[object, ...]]:
            async with first.state.sessionmaker() as session:
                columns = (ApiDailyUsage.api, ApiDailyUsage.version, ApiDailyUsage.consumer)
                rows = await session.execute(select(*columns, ApiDailyUsage.day, ApiDailyUsage.calls))
                return [tuple(row) for row in rows]

        assert await in_app_loop(one, stored) == [("projects", "1.1.0", "billing-app", utcnow().date(), 6)]
        admin = bearer(await fetch_token(one, *ADMIN))
        seen = (await two.get("/api/v1/apis/projects/usage", headers=admin)).json()["items"]
        assert [(u["consumer"], u["version"], u["calls"]) for u in seen] == [("billing-app", "1.1.0", 6)]
