"""Fixtures shared by every test package: databases (SQLite and the real PostgreSQL) and the app."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.settings import Settings

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DATA = Path(__file__).parent / "data"
PG_ADMIN_DSN = os.environ.get("CHARTER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN = ("admin", "admin-secret")
# Clients of the test deployment: a publisher in the `delivery` team, a reader, an outsider.
CLIENTS = [
    {"client_id": "delivery-ci", "client_secret": "delivery-secret", "scopes": ["registry:read", "registry:write"]},
    {"client_id": "reader", "client_secret": "reader-secret", "scopes": ["registry:read"]},
    {"client_id": "finance-ci", "client_secret": "finance-secret", "scopes": ["registry:read", "registry:write"]},
]


def corpus(*parts: str) -> Path:
    return CORPUS.joinpath(*parts)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own on the local server, dropped at the end of the session."""
    name = f"charter_test_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def reset_postgres(name: str) -> None:
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/charter.db"
    name = request.getfixturevalue("postgres_database")
    await reset_postgres(name)
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{name}"


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "public_url": "http://testserver.local",
        "admin_client_id": ADMIN[0],
        "admin_client_secret": ADMIN[1],
        "clients_json": json.dumps(CLIENTS),
        "demo": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


async def fetch_token(client: AsyncTestClient, client_id: str, secret: str, scope: str | None = None) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    response = await client.post("/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_headers(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, *ADMIN))


@pytest.fixture
async def publisher_headers(client: AsyncTestClient, admin_headers: dict[str, str]) -> dict[str, str]:
    """`delivery-ci`, a member of the `delivery` team, which owns nothing yet."""
    response = await client.post(
        "/api/v1/teams", json={"name": "delivery", "members": ["delivery-ci"]}, headers=admin_headers
    )
    assert response.status_code == 201, response.text
    return bearer(await fetch_token(client, "delivery-ci", "delivery-secret"))


@pytest.fixture
async def reader_headers(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, "reader", "reader-secret"))
