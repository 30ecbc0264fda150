"""Webhook secrets at rest: sealed in the database, opened only with the configured key."""

from __future__ import annotations

import os
import stat

import pytest
from alembic import command
from cryptography.fernet import Fernet
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from registry.app import create_app
from registry.db.engine import alembic_config, create_engine
from registry.secret_box import SecretBox, SecretsKeyError
from registry.settings import Settings
from tests.registry.support import ADMIN, SECRETS_KEY, bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects

SECRET = "a-long-shared-webhook-secret"
OTHER_KEY = Fernet.generate_key().decode()


async def register_with_webhook(client: AsyncTestClient) -> None:
    admin = bearer(await fetch_token(client, *ADMIN))
    await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
    published = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects("1.0.0")),
        params={"owner": "delivery"},
        headers={**admin, **JSON_HEADERS},
    )
    assert published.status_code == 201, published.text
    registered = await client.post(
        "/api/v1/apis/projects/consumers",
        json={
            "consumer": "portal",
            "team": "delivery",
            "versions": "^1",
            "webhook_url": "http://127.0.0.1:9/hook",
            "webhook_secret": SECRET,
        },
        headers=admin,
    )
    assert registered.status_code == 201, registered.text


async def stored_rows(database_url: str) -> list[dict]:
    """Read with an engine of the test's own: the app's pool lives on the test client's event loop."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return [dict(row._mapping) for row in await connection.execute(text("SELECT * FROM consumers"))]
    finally:
        await engine.dispose()


async def test_the_stored_row_does_not_hold_the_secret(database_url):
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app) as client:
        await register_with_webhook(client)
    (row,) = await stored_rows(database_url)
    assert not any(SECRET in str(value) for value in row.values())
    assert SecretBox([SECRETS_KEY.encode()]).open(row["webhook_secret_sealed"]) == SECRET


async def test_a_wrong_key_stops_the_server_at_start(database_url):
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        await register_with_webhook(client)
    # The test client's task group wraps what the lifespan raised.
    with pytest.raises(ExceptionGroup) as caught:
        async with AsyncTestClient(create_app(make_settings(database_url, secrets_key=OTHER_KEY))):
            pass
    assert caught.group_contains(SecretsKeyError, match="cannot open the stored webhook secrets")


async def test_a_key_is_rotated_by_starting_with_the_new_one_first(database_url):
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        await register_with_webhook(client)
    rotating = create_app(make_settings(database_url, secrets_key=f"{OTHER_KEY},{SECRETS_KEY}"))
    async with AsyncTestClient(rotating):
        pass
    (row,) = await stored_rows(database_url)
    assert SecretBox([OTHER_KEY.encode()]).open(row["webhook_secret_sealed"]) == SECRET
    async with AsyncTestClient(create_app(make_settings(database_url, secrets_key=OTHER_KEY))):
        pass  # the old key is no longer needed


async def test_secrets_stored_in_clear_before_are_sealed_by_the_migration(database_url):
    app = create_app(make_settings(database_url))
    async with AsyncTestClient(app) as client:
        await register_with_webhook(client)
    box = app.state.secret_box

    def downgrade(connection) -> None:  # type: ignore[no-untyped-def]
        command.downgrade(alembic_config(connection, box), "0009")

    engine = create_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(downgrade)
    await engine.dispose()
    (row,) = await stored_rows(database_url)
    assert row["webhook_secret"] == SECRET  # as a release before sealing stored it

    async with AsyncTestClient(create_app(make_settings(database_url))):
        pass
    (row,) = await stored_rows(database_url)
    assert "webhook_secret" not in row
    assert box.open(row["webhook_secret_sealed"]) == SECRET


def test_the_embedded_default_keeps_a_key_file_beside_the_sqlite_database(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/charter.db")
    sealed = SecretBox.from_settings(settings).seal(SECRET)
    key_file = tmp_path / "charter.db.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert SecretBox.from_settings(settings).open(sealed) == SECRET  # the next start reads the same key


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (Settings(database_url="postgresql+asyncpg://db/charter"), "CHARTER_SECRETS_KEY"),
        (Settings(secrets_key="not-a-fernet-key"), "32 url-safe base64-encoded bytes"),
    ],
)
def test_missing_or_malformed_keys_are_refused_before_start(settings, message):
    with pytest.raises(SecretsKeyError, match=message):
        create_app(settings)
