"""Two replicas on one PostgreSQL and NATS JetStream: each sees every event, whoever relayed it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import msgspec
import pytest

from registry.events import Event
from registry.nats_bus import message_id
from tests.loopback import request_body, serving
from tests.registry.nats_support import (
    SHARED_NATS,
    admin_headers,
    delete_stream,
    postgres_url,
    publish,
    replica_env,
    routes,
    stream_events,
    token,
    unique_stream,
    wait_until,
)
from tests.registry.support import charter_process

pytestmark = pytest.mark.postgres
deliveries: list[dict] = []


async def webhook_receiver(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = await request_body(receive)
    deliveries.append(json.loads(body))
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def cluster(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    stream, prefix = unique_stream()
    root = tmp_path_factory.mktemp("nats-replicas")
    env = replica_env(postgres_url(postgres_database), SHARED_NATS, stream, prefix, str(root / "signing.pem"))
    (root / "a").mkdir()
    (root / "b").mkdir()
    try:
        with charter_process(root / "a", **env) as (a, _), charter_process(root / "b", **env) as (b, _):
            admin = admin_headers(a)
            created = httpx.post(f"{a}/api/v1/teams", json={"name": "delivery"}, headers=admin, timeout=10)
            assert created.status_code == 201, created.text
            yield {
                "a": a,
                "b": b,
                "admin": admin,
                "env": env,
                "root": root,
                "stream": stream,
                "prefix": prefix,
            }
    finally:
        asyncio.run(delete_stream(SHARED_NATS, stream))


def test_a_publish_on_one_replica_is_routed_by_the_other(cluster):
    a, b = cluster["a"], cluster["b"]
    assert not routes(b, "ledger", 1)
    publish(a, cluster["admin"], "ledger", "1.0.0")
    wait_until(lambda: routes(b, "ledger", 1))


def test_a_client_registered_on_one_replica_gets_a_token_the_other_accepts(cluster):
    a, b = cluster["a"], cluster["b"]
    registered = httpx.post(
        f"{a}/api/v1/clients",
        json={
            "client_id": "payroll-sync",
            "name": "Payroll sync",
            "team": "delivery",
            "scopes": ["registry:read"],
        },
        headers=cluster["admin"],
        timeout=10,
    )
    assert registered.status_code == 201, registered.text
    secret = registered.json()["client_secret"]
    wait_until(lambda: token(b, "payroll-sync", secret).status_code == 200)
    for issued_by in (a, b):
        bearer = {
            "Authorization": f"Bearer {token(issued_by, 'payroll-sync', secret).json()['access_token']}"
        }
        assert httpx.get(f"{b}/api/v1/teams", headers=bearer, timeout=10).status_code == 200


def test_a_replica_stopped_and_restarted_catches_up(cluster):
    a, root, env = cluster["a"], cluster["root"], cluster["env"]
    (root / "c").mkdir()
    with charter_process(root / "c", **env) as (c, _):
        publish(a, cluster["admin"], "timesheets", "1.0.0")
        wait_until(lambda: routes(c, "timesheets", 1))
    publish(a, cluster["admin"], "timesheets", "2.0.0")
    with charter_process(root / "c", **env) as (c, _):
        assert routes(c, "timesheets", 2)
        # A change after the restart reaches it through the stream.
        publish(a, cluster["admin"], "timesheets", "3.0.0")
        wait_until(lambda: routes(c, "timesheets", 3))


def test_every_event_is_in_the_stream_once_with_its_id_and_time_as_message_id(cluster):
    publish(cluster["a"], cluster["admin"], "expenses", "1.0.0")
    wait_until(lambda: routes(cluster["b"], "expenses", 1))
    events = asyncio.run(stream_events(SHARED_NATS, cluster["stream"], cluster["prefix"]))
    ids = [event["id"] for event in events]
    assert len(ids) == len(set(ids))
    for event in events:
        assert event["_subject"] == f"{cluster['prefix']}.{event['topic']}"
        assert event["_msg_id"] == message_id(msgspec.convert(event, Event, strict=False))
        assert set(event) >= {"id", "topic", "at", "payload"}
    published = [e["payload"]["api"] for e in events if e["topic"] == "contract.published"]
    assert "expenses" in published


def test_a_deprecation_reaches_a_webhook_once_not_once_per_replica(cluster):
    a, b, admin = cluster["a"], cluster["b"], cluster["admin"]
    deliveries.clear()
    publish(a, admin, "hooked", "1.0.0")
    with serving(webhook_receiver) as hook:
        registered = httpx.post(
            f"{a}/api/v1/apis/hooked/consumers",
            json={
                "consumer": "portal",
                "team": "delivery",
                "versions": "^1",
                "webhook_url": f"{hook}/portal",
                "webhook_secret": "a-long-shared-webhook-secret",
            },
            headers=admin,
            timeout=10,
        )
        assert registered.status_code == 201, registered.text
        deprecated = httpx.post(f"{b}/api/v1/apis/hooked/versions/1.0.0/deprecate", json={}, headers=admin)
        assert deprecated.status_code == 200, deprecated.text
        wait_until(lambda: len(deliveries) >= 1)
        # A later event routed by both replicas: each has handled the deprecation before it.
        publish(a, admin, "hooked-after", "1.0.0")
        for replica in (a, b):
            wait_until(lambda replica=replica: routes(replica, "hooked-after", 1))
    assert [(d["event"], d["contract"]["api"]) for d in deliveries] == [("contract.deprecated", "hooked")]
