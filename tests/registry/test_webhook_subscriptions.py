"""Teams subscribe URLs to events: signed deliveries from a durable log, retried, redelivered, filtered,
kept to the team that owns them, and never sent where the egress policy forbids."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from policies.egress import EgressPolicy
from registry.app import create_app
from registry.db.engine import create_engine, session_factory
from registry.db.models import WebhookDelivery
from registry.events import Event
from registry.secret_box import SecretBox
from registry.settings import Settings
from registry.webhooks import WebhookDeliveries
from tests.loopback import request_body, serving
from tests.registry.support import ADMIN, LOOPBACK, SECRETS_KEY, bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects

# path -> the requests it received (headers, body)
received: dict[str, list[tuple[dict[str, str], bytes]]] = defaultdict(list)


async def receiver(scope, receive, send) -> None:
    """`/<status>/<times>/<name>` answers `status` to its first `times` requests, then 204."""
    if scope["type"] != "http":
        return
    body = await request_body(receive)
    path = scope["path"]
    received[path].append(({k.decode(): v.decode() for k, v in scope["headers"]}, body))
    _, status, times, _name = path.split("/", 3)
    answer = int(status) if len(received[path]) <= int(times) else 204
    await send({"type": "http.response.start", "status": answer, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def hook_base():
    with serving(receiver) as base:
        yield base


def hook(base: str, status: int = 204, times: int = 0) -> tuple[str, str]:
    """A fresh receiver path of the loopback server, and its URL."""
    path = f"/{status}/{times}/{uuid.uuid4().hex}"
    return base + path, path


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, webhook_first_retry_seconds=0.05, webhook_attempts=3)


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Deliveries run on the app's own loop: wait for their outcome, a bounded number of times."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"never happened: {what}")


async def subscribe(client: AsyncTestClient, headers: dict, team: str = "delivery", **body) -> dict:
    response = await client.post(f"/api/v1/teams/{team}/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def publish(client: AsyncTestClient, headers: dict, version: str, name: str = "projects") -> None:
    response = await client.post(
        f"/api/v1/apis/{name}/versions",
        content=as_json(projects(version)),
        params={"owner": "delivery"},
        headers={**headers, **JSON_HEADERS},
    )
    assert response.status_code == 201, response.text


async def deliveries(client: AsyncTestClient, headers: dict, webhook: int) -> list[dict]:
    response = await client.get(f"/api/v1/teams/delivery/webhooks/{webhook}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def settled(client: AsyncTestClient, headers: dict, webhook: int, count: int = 1) -> list[dict]:
    """The webhook's deliveries once `count` of them exist and none is pending."""
    items: list[dict] = []

    async def done() -> bool:
        items[:] = await deliveries(client, headers, webhook)
        return len(items) >= count and all(item["state"] != "pending" for item in items)

    await until(done, f"{count} deliveries of webhook {webhook} settled")
    return items


def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = hmac.new(
        secret.encode(), headers["charter-timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["charter-signature"], f"sha256={expected}")


async def test_a_subscribed_event_arrives_signed_and_is_logged(client, publisher_headers, hook_base):
    url, path = hook(hook_base)
    created = await subscribe(
        client, publisher_headers, url=url, topics=["contract.published"], apis=["projects"]
    )
    secret, webhook = created["secret"], created["webhook"]
    assert webhook["topics"] == ["contract.published"] and webhook["team"] == "delivery"
    shown = await client.get(f"/api/v1/teams/delivery/webhooks/{webhook['id']}", headers=publisher_headers)
    assert shown.status_code == 200 and "secret" not in shown.json()
    listed = await client.get("/api/v1/teams/delivery/webhooks", headers=publisher_headers)
    assert [item["id"] for item in listed.json()["items"]] == [webhook["id"]]

    await publish(client, publisher_headers, "1.0.0")
    [delivery] = await settled(client, publisher_headers, webhook["id"])

    [(headers, body)] = received[path]
    assert signed_by(secret, headers, body)
    assert headers["charter-event"] == "contract.published"
    assert headers["charter-delivery"] == delivery["key"]
    event = json.loads(body)
    assert event["event"] == "contract.published"
    assert event["contract"]["api"] == "projects" and event["contract"]["version"] == "1.0.0"
    assert delivery["state"] == "delivered" and delivery["attempts"] == 1
    assert delivery["last_status"] == 204 and delivery["event_id"] == event["id"]


async def test_a_5xx_is_retried_with_the_same_delivery_key(client, publisher_headers, hook_base):
    url, path = hook(hook_base, status=503, times=2)
    webhook = (await subscribe(client, publisher_headers, url=url, topics=["contract.*"]))["webhook"]
    await publish(client, publisher_headers, "1.0.0")
    [delivery] = await settled(client, publisher_headers, webhook["id"])
    assert delivery["state"] == "delivered"
    assert delivery["attempts"] == 3
    assert delivery["last_status"] == 204
    keys = {headers["charter-delivery"] for headers, _ in received[path]}
    assert len(received[path]) == 3 and keys == {delivery["key"]}


async def test_a_4xx_is_final_and_redeliver_sends_it_again(client, publisher_headers, hook_base):
    url, path = hook(hook_base, status=404, times=1)
    webhook = (await subscribe(client, publisher_headers, url=url, topics=["contract.published"]))["webhook"]
    await publish(client, publisher_headers, "1.0.0")
    [failed] = await settled(client, publisher_headers, webhook["id"])
    assert failed["state"] == "failed" and failed["attempts"] == 1 and failed["last_status"] == 404
    assert failed["last_error"] == "answered 404"
    assert len(received[path]) == 1

    again = await client.post(
        f"/api/v1/teams/delivery/webhooks/{webhook['id']}/deliveries/{failed['id']}/redeliver",
        headers=publisher_headers,
    )
    assert again.status_code == 202, again.text
    assert again.json()["state"] == "pending"
    [delivered] = await settled(client, publisher_headers, webhook["id"])
    assert delivered["state"] == "delivered" and delivered["key"] == failed["key"]
    assert [headers["charter-delivery"] for headers, _ in received[path]] == [failed["key"]] * 2


async def test_a_delivery_is_given_up_after_the_last_attempt(client, publisher_headers, hook_base):
    url, path = hook(hook_base, status=500, times=100)
    webhook = (await subscribe(client, publisher_headers, url=url, topics=["contract.published"]))["webhook"]
    await publish(client, publisher_headers, "1.0.0")
    [delivery] = await settled(client, publisher_headers, webhook["id"])
    assert delivery["state"] == "failed" and delivery["attempts"] == 3  # webhook_attempts
    assert delivery["last_status"] == 500 and delivery["next_attempt_at"] is None
    assert len(received[path]) == 3


async def test_filters_on_topic_api_and_version_range(client, publisher_headers, hook_base):
    deprecations_of_1, deprecations_path = hook(hook_base)
    other_api, other_path = hook(hook_base)
    releases_of_2, releases_path = hook(hook_base)
    first = await subscribe(
        client,
        publisher_headers,
        url=deprecations_of_1,
        topics=["contract.deprecated"],
        apis=["projects"],
        versions="^1",
    )
    await subscribe(client, publisher_headers, url=other_api, topics=["contract.*"], apis=["billing"])
    second = await subscribe(
        client, publisher_headers, url=releases_of_2, topics=["contract.*"], versions="^2"
    )
    for version in ("1.0.0", "2.0.0"):
        await publish(client, publisher_headers, version)
    deprecated = await client.post(
        "/api/v1/apis/projects/versions/1.0.0/deprecate",
        json={"replacement": "2.0.0"},
        headers=publisher_headers,
    )
    assert deprecated.status_code == 200, deprecated.text

    await settled(client, publisher_headers, first["webhook"]["id"])
    await settled(client, publisher_headers, second["webhook"]["id"])
    [(_, deprecation)] = received[deprecations_path]
    assert json.loads(deprecation)["event"] == "contract.deprecated"
    assert json.loads(deprecation)["contract"]["version"] == "1.0.0"
    [(_, release)] = received[releases_path]
    assert json.loads(release)["event"] == "contract.published"
    assert json.loads(release)["contract"]["version"] == "2.0.0"
    # Every subscription is matched in the one transaction that wrote the rows above.
    assert received[other_path] == []


async def test_other_teams_neither_see_nor_change_a_teams_webhooks(
    client, admin_headers, publisher_headers, reader_headers, hook_base
):
    url, _ = hook(hook_base)
    webhook = (await subscribe(client, publisher_headers, url=url, topics=["contract.published"]))["webhook"]
    created = await client.post(
        "/api/v1/teams", json={"name": "finance", "members": ["finance-ci"]}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    finance = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    own = f"/api/v1/teams/delivery/webhooks/{webhook['id']}"

    for headers in (finance, reader_headers):
        assert (await client.get("/api/v1/teams/delivery/webhooks", headers=headers)).status_code == 403
        assert (await client.get(own, headers=headers)).status_code == 403
        assert (await client.get(f"{own}/deliveries", headers=headers)).status_code == 403
        assert (await client.delete(own, headers=headers)).status_code == 403
        refused = await client.post(
            "/api/v1/teams/delivery/webhooks", json={"url": url, "topics": ["contract.*"]}, headers=headers
        )
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    # Under its own team's path, another team's webhook does not exist.
    elsewhere = f"/api/v1/teams/finance/webhooks/{webhook['id']}"
    assert (await client.get(elsewhere, headers=finance)).status_code == 404
    assert (await client.delete(elsewhere, headers=finance)).status_code == 404
    assert (await client.get("/api/v1/teams/delivery/webhooks")).status_code == 401
    # Admins see and remove it.
    assert (await client.get(own, headers=admin_headers)).status_code == 200
    assert (await client.delete(own, headers=admin_headers)).status_code == 204
    assert (await client.get(own, headers=publisher_headers)).status_code == 404


async def test_private_targets_and_private_topics_are_refused(database_url, hook_base):
    strict = make_settings(database_url, egress_allow=None)
    async with AsyncTestClient(create_app(strict)) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
        for url in (f"{hook_base}/204/0/ssrf", "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/"):
            response = await client.post(
                "/api/v1/teams/delivery/webhooks", json={"url": url, "topics": ["contract.*"]}, headers=admin
            )
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["errors"][0]["pointer"] == "/url"
        overlong = await client.post(
            "/api/v1/teams/delivery/webhooks",
            json={"url": "https://" + "0" * 1500, "topics": ["contract.*"]},
            headers=admin,
        )
        assert overlong.status_code == 422, overlong.text
        assert overlong.json()["errors"][0]["pointer"] == "/url"
        for topic in ("client.registered", "access.*"):
            response = await client.post(
                "/api/v1/teams/delivery/webhooks",
                json={"url": "https://hooks.example.com/x", "topics": ["contract.published", topic]},
                headers=admin,
            )
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["pointer"] == "/topics/1"
        bad_range = await client.post(
            "/api/v1/teams/delivery/webhooks",
            json={"url": "https://hooks.example.com/x", "topics": ["contract.*"], "versions": "not a range"},
            headers=admin,
        )
        assert bad_range.status_code == 422
        listed = await client.get("/api/v1/teams/delivery/webhooks", headers=admin)
        assert listed.json()["items"] == []


async def test_a_delivery_waiting_for_its_retry_is_sent_after_a_restart(database_url, hook_base):
    url, path = hook(hook_base, status=500, times=1)
    patient = make_settings(database_url, webhook_first_retry_seconds=3600)
    async with AsyncTestClient(create_app(patient)) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
        webhook = (await subscribe(client, admin, url=url, topics=["contract.published"]))["webhook"]
        await publish(client, admin, "1.0.0")

        async def failed_once() -> bool:
            items = await deliveries(client, admin, webhook["id"])
            return len(items) == 1 and items[0]["attempts"] == 1

        await until(failed_once, "the first attempt")
        [waiting] = await deliveries(client, admin, webhook["id"])
    assert waiting["state"] == "pending" and waiting["last_status"] == 500

    # The hour the retry waits for passes while no server runs.
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            waiting_row = WebhookDelivery.id == waiting["id"]
            await connection.execute(update(WebhookDelivery).where(waiting_row).values(next_attempt_at=past))
    finally:
        await engine.dispose()

    async with AsyncTestClient(create_app(patient)) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        [delivered] = await settled(client, admin, webhook["id"])
    assert delivered["state"] == "delivered" and delivered["attempts"] == 2
    assert [headers["charter-delivery"] for headers, _ in received[path]] == [waiting["key"]] * 2


async def test_replicas_write_one_row_per_event_and_send_it_once(database_url, hook_base):
    """Every replica handles every event (as with NATS) and runs a worker: each event is heard once."""
    url, path = hook(hook_base)
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        await client.post("/api/v1/teams", json={"name": "delivery"}, headers=admin)
        webhook = (await subscribe(client, admin, url=url, topics=["project.created"]))["webhook"]

    engine = create_engine(database_url)
    sessionmaker = session_factory(engine)
    box = SecretBox([SECRETS_KEY.encode()])
    replicas = [
        WebhookDeliveries(
            sessionmaker,
            egress=EgressPolicy.from_allow_list(LOOPBACK),
            secrets=box,
            flow_owners={"onboarding": "delivery"},
            batch=5,
        )
        for _ in range(3)
    ]
    events = [
        Event(
            id=1_000_000 + n,
            topic="project.created",
            at=dt.datetime.now(dt.UTC),
            payload={"run": f"run-{n}", "flow": "onboarding", "data": {"n": n}},
        )
        for n in range(12)
    ]
    try:
        await asyncio.gather(*(replica.record(event) for event in events for replica in replicas))
        async with sessionmaker() as session:
            rows = await session.scalar(
                select(func.count(WebhookDelivery.id)).where(WebhookDelivery.subscription_id == webhook["id"])
            )
        assert rows == len(events)
        while sum(await asyncio.gather(*(replica.deliver_due() for replica in replicas))):
            pass
    finally:
        for replica in replicas:
            await replica.aclose()
        await engine.dispose()
    keys = [headers["charter-delivery"] for headers, _ in received[path]]
    assert len(keys) == len(events) and len(set(keys)) == len(events)
    assert sorted(json.loads(body)["data"]["data"]["n"] for _, body in received[path]) == list(range(12))


async def test_flow_events_reach_only_the_team_that_owns_the_flow(database_url, hook_base):
    own_url, own_path = hook(hook_base)
    other_url, other_path = hook(hook_base)
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        for team in ("delivery", "finance"):
            await client.post("/api/v1/teams", json={"name": team}, headers=admin)
        own = (await subscribe(client, admin, url=own_url, topics=["flow.run.*"]))["webhook"]
        await subscribe(client, admin, team="finance", url=other_url, topics=["flow.run.*"])

    engine = create_engine(database_url)
    replica = WebhookDeliveries(
        session_factory(engine),
        egress=EgressPolicy.from_allow_list(LOOPBACK),
        secrets=SecretBox([SECRETS_KEY.encode()]),
        flow_owners={"onboarding": "delivery"},
    )
    failed = Event(
        id=2_000_000,
        topic="flow.run.failed",
        at=dt.datetime.now(dt.UTC),
        payload={"run": "run-1", "flow": "onboarding", "state": "failed"},
    )
    unknown_flow = Event(
        id=2_000_001, topic="flow.run.failed", at=failed.at, payload={"run": "run-2", "flow": "elsewhere"}
    )
    try:
        assert await replica.record(failed) == 1
        assert await replica.record(unknown_flow) == 0
        await replica.deliver_due()
    finally:
        await replica.aclose()
        await engine.dispose()
    [(headers, body)] = received[own_path]
    assert headers["charter-event"] == "flow.run.failed"
    assert json.loads(body)["data"]["run"] == "run-1"
    assert received[other_path] == []
    assert own["topics"] == ["flow.run.*"]


async def test_breaking_only_hears_drafts_that_propose_breaking_changes(client, publisher_headers, hook_base):
    url, path = hook(hook_base)
    webhook = (
        await subscribe(client, publisher_headers, url=url, topics=["contract.drafted"], breaking_only=True)
    )["webhook"]
    assert webhook["breaking_only"] is True
    await publish(client, publisher_headers, "1.0.0")
    compatible = projects("1.1.0", description="only the words change")
    breaking = projects("2.0.0")
    del breaking["paths"]["/projects/{projectId}"]
    for doc in (compatible, breaking):
        drafted = await client.post(
            "/api/v1/apis/projects/versions",
            content=as_json(doc),
            params={"draft": "true"},
            headers={**publisher_headers, **JSON_HEADERS},
        )
        assert drafted.status_code == 201, drafted.text
    [delivery] = await settled(client, publisher_headers, webhook["id"])
    [(_, body)] = received[path]
    assert json.loads(body)["contract"]["version"] == "2.0.0"
    assert json.loads(body)["contract"]["breaking"] is True
    assert delivery["topic"] == "contract.drafted"
