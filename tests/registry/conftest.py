"""Fixtures of registry tests: the app on each database, tokens of its clients, a published API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.settings import Settings
from tests.registry.support import ADMIN, bearer, charter_server, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects


@pytest.fixture
async def published(client: AsyncTestClient, publisher_headers: dict[str, str]) -> list[str]:
    """`projects` with versions 1.0.0, 1.1.0 and 2.0.0 published by the delivery team."""
    numbers = ["1.0.0", "1.1.0", "2.0.0"]
    for number in numbers:
        doc = projects(number, description=f"Projects {number}")
        response = await client.post(
            "/api/v1/apis/projects/versions",
            content=as_json(doc),
            headers={**publisher_headers, **JSON_HEADERS},
            params={"owner": "delivery"},
        )
        assert response.status_code == 201, response.text
    return numbers


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `charter serve` on loopback (SQLite, no demo), shared by the tests of one module."""
    with charter_server(tmp_path_factory.mktemp("cli-server")) as url:
        yield url
