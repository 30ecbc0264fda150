"""The registry's Prometheus metrics, scraped from /metrics after real publishes, events and deliveries."""

from __future__ import annotations

import datetime as dt

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from registry.app import create_app
from registry.db.engine import create_engine, session_factory
from registry.db.models import OutboxEvent, utcnow
from registry.settings import Settings
from registry.telemetry import RegistryMetrics
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings
from tests.registry.test_webhook_subscriptions import hook, hook_base, settled, subscribe, until  # noqa: F401
from tests.samples import JSON_HEADERS, as_json, projects


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, webhook_first_retry_seconds=0.05, webhook_attempts=2)


async def scrape(client: AsyncTestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


def samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def publish(client: AsyncTestClient, headers: dict[str, str], doc: dict | bytes) -> int:
    response = await client.post(
        "/api/v1/apis/projects/versions",
        content=doc if isinstance(doc, bytes) else as_json(doc),
        params={"owner": "delivery"},
        headers={**headers, **JSON_HEADERS},
    )
    return response.status_code


async def test_publishes_are_counted_by_result_and_their_phases_timed(client, publisher_headers):
    before = await scrape(client)
    assert before[("charter_registry_publishes_total", (("result", "published"),))] == 0
    assert await publish(client, publisher_headers, projects("1.0.0")) == 201
    assert await publish(client, publisher_headers, projects("1.0.0")) == 200
    assert await publish(client, publisher_headers, projects("1.0.0", description="other")) == 409
    broken = projects("1.1.0")
    del broken["paths"]["/projects/{projectId}"]
    assert await publish(client, publisher_headers, broken) == 422  # breaking without a major version
    assert await publish(client, publisher_headers, projects("1.1.0")) == 201
    assert await publish(client, publisher_headers, b'{"openapi": "3.1.0", "info": {}}') == 422

    after = await scrape(client)
    counted = {
        labels[0][1]: value
        for (name, labels), value in after.items()
        if name == "charter_registry_publishes_total"
    }
    assert counted == {"published": 2, "unchanged": 1, "conflict": 1, "refused": 1, "invalid": 1, "error": 0}
    # Five documents were valid (the last is not: its duration is not a validation's).
    assert after[("charter_registry_validation_duration_seconds_count", ())] == 5
    # Two diffs ran (both 1.1.0s): the first publish had nothing before it, re-publishes are answered
    # as stored.
    assert after[("charter_registry_diff_duration_seconds_count", ())] == 2
    assert after[("charter_registry_diff_duration_seconds_sum", ())] > 0
    # Labels stay bounded: no API names or consumers on the registry's metrics.
    registry_series = [labels for (name, labels) in after if name.startswith("charter_registry_")]
    assert {key for labels in registry_series for key, _ in labels} <= {"result", "le"}


async def test_outbox_lag_is_the_age_of_the_oldest_unrelayed_event(settings):
    async with AsyncTestClient(create_app(settings)) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        created = await client.post("/api/v1/teams", json={"name": "delivery", "members": []}, headers=admin)
        assert created.status_code == 201

        async def relayed() -> bool:
            return (await scrape(client))[("charter_outbox_unrelayed_events", ())] == 0

        await until(relayed, "the outbox relayed")
        assert (await scrape(client))[("charter_outbox_oldest_unrelayed_age_seconds", ())] == 0

    # The server is down, so no relay takes what is written now: it waits, and ages.
    engine = create_engine(settings.database_url)
    try:
        sessionmaker = session_factory(engine)
        async with sessionmaker() as session:
            session.add(OutboxEvent(topic="test.waiting", payload={}, at=utcnow() - dt.timedelta(minutes=5)))
            session.add(OutboxEvent(topic="test.waiting", payload={}))
            await session.commit()
        registry = CollectorRegistry()
        await RegistryMetrics(registry).read_outbox(sessionmaker)
    finally:
        await engine.dispose()
    metrics = samples(generate_latest(registry).decode())
    assert metrics[("charter_outbox_unrelayed_events", ())] == 2
    assert 300 <= metrics[("charter_outbox_oldest_unrelayed_age_seconds", ())] < 600


async def test_webhook_deliveries_are_counted_by_outcome(client, publisher_headers, hook_base):  # noqa: F811
    url, _ = hook(hook_base, status=204)
    delivered = (await subscribe(client, publisher_headers, url=url, topics=["contract.published"]))[
        "webhook"
    ]
    url, _ = hook(hook_base, status=500, times=100)
    failing = (await subscribe(client, publisher_headers, url=url, topics=["contract.published"]))["webhook"]
    assert await publish(client, publisher_headers, projects("1.0.0")) == 201
    await settled(client, publisher_headers, delivered["id"])
    await settled(client, publisher_headers, failing["id"])

    metrics = await scrape(client)
    outcomes = {
        labels[0][1]: value
        for (name, labels), value in metrics.items()
        if name == "charter_webhook_deliveries_total"
    }
    assert outcomes == {"delivered": 1, "retrying": 1, "failed": 1}  # two attempts, then given up


async def test_with_a_metrics_token_only_its_bearer_scrapes(database_url):
    # The labels name every API and operation: an operator who keeps them from anyone reaching the
    # port sets the token Prometheus scrapes with.
    async with AsyncTestClient(
        create_app(make_settings(database_url, metrics_token="s3cret-scrape"))
    ) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret-scrape"},
            admin,
        ):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert "charter_" not in refused.text
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert scraped.status_code == 200
        assert "charter_registry_publishes_total" in scraped.text
