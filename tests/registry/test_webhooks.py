"""contract.deprecated reaches consumers' webhooks: signed, retried after a failure, only for their range."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.loopback import request_body, serving
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects

SECRET = "a-long-shared-webhook-secret"
received: list[dict] = []


async def receiver(scope, receive, send) -> None:
    """Fails the first delivery with 500, takes the rest: the registry must retry."""
    if scope["type"] != "http":
        return
    body = await request_body(receive)
    received.append(
        {
            "path": scope["path"],
            "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
            "body": body,
        }
    )
    status = 500 if len(received) == 1 else 204
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def hook_url():
    with serving(receiver) as base:
        yield base


async def test_deprecation_is_delivered_signed_and_retried(tmp_path, hook_url):
    received.clear()
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/hooks.db", webhook_first_retry_seconds=0.05)
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
        for version in ("1.0.0", "2.0.0"):
            response = await client.post(
                "/api/v1/apis/projects/versions",
                content=as_json(projects(version)),
                params={"owner": "delivery"},
                headers={**admin, **JSON_HEADERS},
            )
            assert response.status_code == 201, response.text
        for consumer, versions in (("portal", "^1"), ("new-portal", "^2")):
            registered = await client.post(
                "/api/v1/apis/projects/consumers",
                json={
                    "consumer": consumer,
                    "team": "delivery",
                    "versions": versions,
                    "webhook_url": f"{hook_url}/{consumer}",
                    "webhook_secret": SECRET,
                },
                headers=admin,
            )
            assert registered.status_code == 201, registered.text
            assert "webhook_secret" not in registered.json()
        sunset = (dt.date.today() + dt.timedelta(days=60)).isoformat()
        deprecated = await client.post(
            "/api/v1/apis/projects/versions/1.0.0/deprecate",
            json={"sunset": sunset, "replacement": "2.0.0"},
            headers=admin,
        )
        assert deprecated.status_code == 200
        # Deliveries run on the app's event loop (the test client's thread): wait for what they
        # send, not on their tasks, which belong to that other loop.
        for _ in range(500):
            if len(received) >= 2:
                break
            await asyncio.sleep(0.02)

    assert [r["path"] for r in received] == ["/portal", "/portal"]  # the ^2 consumer is not told
    first, second = received
    assert first["headers"]["charter-delivery"] == second["headers"]["charter-delivery"]
    headers = second["headers"]
    assert headers["charter-event"] == "contract.deprecated"
    expected = hmac.new(
        SECRET.encode(), headers["charter-timestamp"].encode() + b"." + second["body"], hashlib.sha256
    ).hexdigest()
    assert headers["charter-signature"] == f"sha256={expected}"
    event = json.loads(second["body"])
    assert event["contract"]["version"] == "1.0.0"
    assert event["contract"]["sunset"] == sunset
    assert event["contract"]["replacement"] == "2.0.0"


async def test_webhook_needs_url_and_secret(client, publisher_headers, published):
    response = await client.post(
        "/api/v1/apis/projects/consumers",
        json={
            "consumer": "x",
            "team": "delivery",
            "versions": "^1",
            "webhook_url": "https://hooks.example.com/x",
        },
        headers=publisher_headers,
    )
    assert response.status_code == 422


class _Collected(logging.Handler):
    """The notifier's log lines (the app's logging setup replaces pytest's capture on the root)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


async def test_a_webhook_is_checked_again_when_delivered(tmp_path, hook_url):
    """Bound while the operator allowed loopback, refused once the allow-list no longer names it."""
    received.clear()
    collected = _Collected()
    logging.getLogger("charter.webhooks").addHandler(collected)
    database = f"sqlite+aiosqlite:///{tmp_path}/hooks.db"
    async with AsyncTestClient(create_app(make_settings(database))) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
        for version in ("1.0.0", "2.0.0"):
            await client.post(
                "/api/v1/apis/projects/versions",
                content=as_json(projects(version)),
                params={"owner": "delivery"},
                headers={**admin, **JSON_HEADERS},
            )
        registered = await client.post(
            "/api/v1/apis/projects/consumers",
            json={
                "consumer": "portal",
                "team": "delivery",
                "versions": "^1",
                "webhook_url": hook_url.replace("127.0.0.1", "localhost") + "/portal",
                "webhook_secret": SECRET,
            },
            headers=admin,
        )
        assert registered.status_code == 201, registered.text

    strict = create_app(make_settings(database, egress_allow=None, webhook_first_retry_seconds=0.05))
    async with AsyncTestClient(strict) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        deprecated = await client.post(
            "/api/v1/apis/projects/versions/1.0.0/deprecate", json={"replacement": "2.0.0"}, headers=admin
        )
        assert deprecated.status_code == 200, deprecated.text
        for _ in range(500):
            if collected.lines:
                break
            await asyncio.sleep(0.02)
    logging.getLogger("charter.webhooks").removeHandler(collected)
    assert received == []
    assert len(collected.lines) == 1 and "127.0.0.1 is a loopback address" in collected.lines[0]
