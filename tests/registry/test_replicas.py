"""Several replicas of the registry on one PostgreSQL, without an event bus between them: they share
the issuer's signing keys (stored sealed in the database), its registered clients and the routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from joserfc import jws
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from registry import signing_keys
from registry.app import create_app
from registry.db.engine import create_engine, migrate, session_factory
from registry.db.models import OutboxEvent, SigningKey
from registry.secret_box import SecretBox
from tests.conftest import PG_ADMIN_DSN, reset_postgres
from tests.registry.support import (
    ADMIN,
    CLIENTS,
    SECRETS_KEY,
    bearer,
    charter,
    charter_server,
    fetch_token,
    make_settings,
)
from tests.samples import as_json, projects

pytestmark = pytest.mark.postgres

CONSUMER = {"client_id": "replica-reader", "client_secret": "replica-secret", "scopes": ["projects:read"]}


@pytest.fixture
async def pg_url(postgres_database: str) -> str:
    await reset_postgres(postgres_database)
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{postgres_database}"


def replica(url: str) -> Litestar:
    return create_app(make_settings(url, clients_json=json.dumps([*CLIENTS, CONSUMER])), flows={})


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[AsyncTestClient, AsyncTestClient]]:
    first, second = replica(pg_url), replica(pg_url)
    async with AsyncTestClient(first) as one, AsyncTestClient(second) as two:
        yield one, two


async def in_replica(client: AsyncTestClient, action: Callable[[], Awaitable[object]]) -> None:
    """Run `action` on the replica's own event loop (where its database connections live)."""
    await asyncio.to_thread(client.blocking_portal.call, action)


def kid_of(token: str) -> str:
    return jws.extract_compact(token.encode()).headers()["kid"]


async def create_team(client: AsyncTestClient) -> None:
    admin = bearer(await fetch_token(client, *ADMIN))
    team = await client.post("/api/v1/teams", json={"name": "delivery", "members": []}, headers=admin)
    assert team.status_code == 201, team.text


async def publish_projects(client: AsyncTestClient, name: str) -> None:
    admin = bearer(await fetch_token(client, *ADMIN))
    published = await client.post(
        f"/api/v1/apis/{name}/versions",
        content=as_json(projects("1.0.0")),
        params={"owner": "delivery"},
        headers={**admin, "Content-Type": "application/json"},
    )
    assert published.status_code == 201, published.text
    bound = await client.put(f"/api/v1/apis/{name}/adapter", json={"kind": "mock"}, headers=admin)
    assert bound.status_code == 200, bound.text


async def test_a_token_of_one_replica_is_accepted_by_the_others_gateway(replicas):
    one, two = replicas
    await create_team(one)
    await publish_projects(one, "projects")
    # No event bus between the replicas: the second reads the routes itself.
    await in_replica(two, two.app.state.gateway.reload)
    token = await fetch_token(one, CONSUMER["client_id"], CONSUMER["client_secret"])
    response = await two.get("/gw/projects/v1/projects", headers=bearer(token))
    assert response.status_code == 200, response.text
    jwks_one = (await one.get("/.well-known/jwks.json")).json()
    assert jwks_one == (await two.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in jwks_one["keys"]] == [kid_of(token)]
    assert all("d" not in key for key in jwks_one["keys"])  # no private parts published


async def test_rotation_signs_with_the_new_key_and_keeps_old_tokens_valid(replicas, pg_url):
    one, two = replicas
    old_token = await fetch_token(one, "reader", "reader-secret")
    old_kid = kid_of(old_token)

    rotated = await asyncio.to_thread(
        charter, "keys", "rotate", url="", CHARTER_DATABASE_URL=pg_url, CHARTER_SECRETS_KEY=SECRETS_KEY
    )
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.startswith("generation 2 (")
    # What the announcement, or the periodic reload, does on every replica.
    await in_replica(one, one.app.state.signing_keys.reload)

    new_token = await fetch_token(one, "reader", "reader-secret")
    assert kid_of(new_token) != old_kid
    # The second replica has not reloaded: the unknown kid makes it read the keys again.
    for client in (one, two):
        for token in (old_token, new_token):
            listed = await client.get("/api/v1/teams", headers=bearer(token))
            assert listed.status_code == 200, listed.text
    jwks_one = (await one.get("/.well-known/jwks.json")).json()
    assert [key["kid"] for key in jwks_one["keys"]] == [kid_of(new_token), old_kid]
    assert jwks_one == (await two.get("/.well-known/jwks.json")).json()

    # Once every token the old key signed has expired, it leaves the key set.
    lifetime = one.app.state.settings.token_lifetime
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=lifetime + signing_keys.GRACE_SECONDS + 1)
    engine = create_engine(pg_url)
    try:
        sessionmaker = session_factory(engine)
        async with sessionmaker() as session:
            retire = update(SigningKey).where(SigningKey.kid == old_kid).values(retired_at=long_ago)
            await session.execute(retire)
            await session.commit()
        box = SecretBox([SECRETS_KEY.encode()])
        ring = await signing_keys.load_ring(sessionmaker, box, token_lifetime=lifetime)
        assert ring.kids == (kid_of(new_token),)
        listed = await signing_keys.stored_keys(sessionmaker, token_lifetime=lifetime)
        assert [key.state for key in listed] == ["signing", "expired"]
    finally:
        await engine.dispose()


async def test_replicas_starting_together_make_one_key(pg_url):
    engines = [create_engine(pg_url) for _ in range(4)]
    try:
        await migrate(engines[0])
        box = SecretBox([SECRETS_KEY.encode()])
        rings = await asyncio.gather(
            *(signing_keys.load_ring(session_factory(e), box, token_lifetime=3600) for e in engines)
        )
        assert len({ring.kids for ring in rings}) == 1
        async with session_factory(engines[0])() as session:
            assert await session.scalar(select(func.count()).select_from(SigningKey)) == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_client_registered_on_one_replica_gets_tokens_from_another(replicas):
    one, two = replicas
    admin = bearer(await fetch_token(one, *ADMIN))
    team = await one.post("/api/v1/teams", json={"name": "delivery", "members": []}, headers=admin)
    assert team.status_code == 201, team.text
    created = await one.post(
        "/api/v1/clients",
        json={"client_id": "payroll-sync", "name": "Pay", "team": "delivery", "scopes": ["registry:read"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    # The second replica was not told (its relay did not take the announcement).
    assert not two.app.state.issuer.knows("payroll-sync")
    token = await fetch_token(two, "payroll-sync", created.json()["client_secret"])
    assert (await one.get("/api/v1/teams", headers=bearer(token))).status_code == 200


async def test_cli_refuses_to_rotate_when_a_key_file_is_set(pg_url, tmp_path):
    refused = await asyncio.to_thread(
        charter,
        "keys",
        "rotate",
        url="",
        CHARTER_DATABASE_URL=pg_url,
        CHARTER_SECRETS_KEY=SECRETS_KEY,
        CHARTER_SIGNING_KEY_FILE=str(tmp_path / "key.pem"),
    )
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "CHARTER_SIGNING_KEY_FILE is set" in refused.stderr
    wrong_key = await asyncio.to_thread(
        charter, "keys", "rotate", url="", CHARTER_DATABASE_URL=pg_url, CHARTER_SECRETS_KEY="not-a-key"
    )
    assert (wrong_key.returncode, wrong_key.stderr.count("\n")) == (2, 1)


async def settle(client: AsyncTestClient, pg_url: str) -> None:
    """Wait until the outbox is relayed and the replica's gateway has reloaded what it announced."""
    engine = create_engine(pg_url)
    try:
        for _ in range(200):
            async with session_factory(engine)() as session:
                pending = (
                    select(func.count()).select_from(OutboxEvent).where(OutboxEvent.relayed_at.is_(None))
                )
                if await session.scalar(pending) == 0:
                    break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the outbox was not relayed")
    finally:
        await engine.dispose()
    await in_replica(client, client.app.state.reloader.wait)


async def test_a_publish_reloads_its_own_routes_and_keeps_the_others(pg_url):
    async with AsyncTestClient(replica(pg_url)) as client:
        await create_team(client)
        for name in ("alpha", "beta"):
            await publish_projects(client, name)
        await settle(client, pg_url)
        token = bearer(await fetch_token(client, CONSUMER["client_id"], CONSUMER["client_secret"]))
        table = client.app.state.gateway._table
        alpha, beta = table["alpha"], table["beta"]

        await publish_projects(client, "gamma")
        await settle(client, pg_url)
        for name in ("alpha", "beta", "gamma"):
            response = await client.get(f"/gw/{name}/v1/projects", headers=token)
            assert response.status_code == 200, (name, response.text)
        table = client.app.state.gateway._table
        assert table["alpha"] is alpha and table["beta"] is beta  # not compiled again

        admin = bearer(await fetch_token(client, *ADMIN))
        limit = {"tier": "bronze", "rate_limit": {"requests": 1, "per_seconds": 3600, "burst": 1}}
        assert (await client.put("/api/v1/apis/beta/sla", json=limit, headers=admin)).status_code == 200
        await settle(client, pg_url)
        table = client.app.state.gateway._table
        assert table["alpha"] is alpha and table["beta"].rate_limit is not None
        assert (await client.get("/gw/beta/v1/projects", headers=token)).status_code == 200
        assert (await client.get("/gw/beta/v1/projects", headers=token)).status_code == 429
        assert (await client.get("/gw/alpha/v1/projects", headers=token)).status_code == 200


async def test_client_ids_no_client_can_have_are_refused_without_a_lookup(replicas):
    one, _ = replicas
    for client_id in ("bad\x00id", "x" * 5000):
        response = await one.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "guess"},
        )
        assert response.status_code == 401, response.text


def test_two_serving_processes_share_keys_and_tokens(pg_url, tmp_path):
    env = {"database_url": pg_url, "secrets_key": SECRETS_KEY, "clients_json": json.dumps(CLIENTS)}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with charter_server(tmp_path / "a", **env) as first, charter_server(tmp_path / "b", **env) as second:
        answer = httpx.post(f"{first}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        assert httpx.get(f"{second}/api/v1/teams", headers=bearer(token)).status_code == 200
        jwks = httpx.get(f"{first}/.well-known/jwks.json").json()
        assert jwks == httpx.get(f"{second}/.well-known/jwks.json").json()
        assert [key["kid"] for key in jwks["keys"]] == [kid_of(token)]
