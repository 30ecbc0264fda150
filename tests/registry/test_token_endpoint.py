"""The registry's token endpoint under guessing: the service keeps answering, guessers are slowed."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.registry.support import ADMIN, bearer, charter_server, make_settings

FORM = {"grant_type": "client_credentials"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`charter serve` under uvicorn, where requests really run side by side; guessing is not throttled."""
    workdir = tmp_path_factory.mktemp("token-endpoint")
    with charter_server(workdir, token_failures_per_source="1000", token_failures_per_client="1000") as url:
        yield url


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def register_app(client: httpx.AsyncClient) -> str:
    """A registered client (its secret stored as a scrypt hash); returns the secret."""
    token = await client.post("/oauth/token", data=FORM, headers=basic(*ADMIN))
    admin = bearer(token.json()["access_token"])
    team = await client.post("/api/v1/teams", json={"name": "payroll", "members": []}, headers=admin)
    assert team.status_code == 201, team.text
    registration = {"client_id": "payroll-sync", "name": "Payroll", "team": "payroll"}
    created = await client.post("/api/v1/clients", json=registration, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()["client_secret"]


async def test_health_answers_while_wrong_secrets_are_being_checked(live):
    async with httpx.AsyncClient(base_url=live, timeout=30) as client:
        secret = await register_app(client)
        answered: list[str] = []

        async def guess(n: int) -> None:
            response = await client.post("/oauth/token", data=FORM, headers=basic("payroll-sync", f"x{n}"))
            assert response.status_code == 401
            answered.append("token")

        async def health() -> None:
            await asyncio.sleep(0.05)  # the guesses are on their way
            assert (await client.get("/health")).status_code == 200
            answered.append("health")

        await asyncio.gather(*(guess(n) for n in range(16)), health())
        # Checked on the event loop, the guesses would all be answered, one after another, first.
        assert answered.index("health") < len(answered) // 2, answered
        response = await client.post("/oauth/token", data=FORM, headers=basic("payroll-sync", secret))
        assert response.status_code == 200


async def test_repeated_failures_are_answered_429_with_retry_after(database_url):
    settings = make_settings(database_url, token_failures_per_source=2, token_failure_window_seconds=60)
    async with AsyncTestClient(create_app(settings)) as client:
        for client_id in ["reader", "nobody"]:
            response = await client.post("/oauth/token", data=FORM, headers=basic(client_id, "guess"))
            assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
        refused = await client.post("/oauth/token", data=FORM, headers=basic("reader", "reader-secret"))
        assert refused.status_code == 429
        assert refused.json()["error"] == "slow_down"
        assert refused.headers["retry-after"] == "30"
        assert refused.headers["cache-control"] == "no-store"
