"""Fixtures of gateway tests: the registry app with its embedded gateway, and consumers' tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings

# Consumer applications of the demo APIs, registered with the built-in issuer.
CONSUMERS = [
    {
        "client_id": "billing-app",
        "client_secret": "billing-secret",
        "scopes": ["projects:read", "projects:write", "time:write", "time:approve", "invoices:read"],
    },
    {"client_id": "reporting-app", "client_secret": "reporting-secret", "scopes": ["projects:read"]},
]


def gateway_settings(tmp_path: Any, **overrides: Any):
    return make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/gateway.db",
        demo=True,
        clients_json=json.dumps(CLIENTS + CONSUMERS),
        **overrides,
    )


@pytest.fixture
def app(tmp_path) -> Litestar:
    return create_app(gateway_settings(tmp_path))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app) as test_client:
        yield test_client


@pytest.fixture
async def admin(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, *ADMIN))


@pytest.fixture
async def billing(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, "billing-app", "billing-secret"))


@pytest.fixture
async def reporting(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, "reporting-app", "reporting-secret"))


async def settled(app: Litestar) -> None:
    """Wait until the outbox relay has told the gateway about the last change and it has reloaded."""
    for _ in range(100):
        await asyncio.sleep(0.02)
        relay_idle = not app.state.reloader._task or app.state.reloader._task.done()
        if relay_idle and await _outbox_empty(app):
            await app.state.reloader.wait()
            return
    raise AssertionError("the gateway did not reload")


async def _outbox_empty(app: Litestar) -> bool:
    from sqlalchemy import func, select

    from registry.db.models import OutboxEvent

    async with app.state.sessionmaker() as session:
        pending = await session.scalar(
            select(func.count(OutboxEvent.id)).where(OutboxEvent.relayed_at.is_(None))
        )
    return pending == 0
