"""SLA throttling through the gateway: in-process, shared by replicas through the real Redis, shadow."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.gateway.conftest import gateway_settings, settled
from tests.registry.support import ADMIN, bearer, fetch_token

REDIS_URL = os.environ.get("CHARTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def limit_projects(client, app, admin, requests: int, tier: str = "bronze") -> None:
    response = await client.put(
        "/api/v1/apis/projects/sla",
        json={"tier": tier, "rate_limit": {"requests": requests, "per_seconds": 3600, "burst": requests}},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    await settled(app)


async def test_quota_then_429_with_retry_after(app, client, admin, billing, reporting):
    await limit_projects(client, app, admin, 3)
    first = await client.get("/gw/projects/v1/projects", headers=billing)
    assert first.headers["ratelimit-policy"] == '"bronze";q=3;w=3600'
    assert first.headers["ratelimit"].startswith('"bronze";r=2;t=')
    for _ in range(2):
        assert (await client.get("/gw/projects/v1/projects", headers=billing)).status_code == 200
    refused = await client.get("/gw/projects/v1/projects", headers=billing)
    assert refused.status_code == 429
    assert refused.json()["type"] == "/problems/quota-exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit"].startswith('"bronze";r=0;')
    # Another consumer has a budget of its own; refused requests did not spend anyone's.
    assert (await client.get("/gw/projects/v1/projects", headers=reporting)).status_code == 200
    metrics = (await client.get("/metrics")).text
    assert 'charter_gateway_throttled_total{api="projects",shadow="false"} 1.0' in metrics


async def test_throttled_answers_stay_out_of_the_served_latency(app, client, admin, billing):
    """The latency objective (and its alert rule) reads outcome="served": a flood of fast 429s must not
    make a slow API look fast."""
    await limit_projects(client, app, admin, 2)
    statuses = [(await client.get("/gw/projects/v1/projects", headers=billing)).status_code for _ in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    metrics = (await client.get("/metrics")).text
    series = 'api="projects",operation="listProjects",outcome="{}",version="1.1.0"'
    assert f"charter_gateway_request_duration_seconds_count{{{series.format('served')}}} 2.0" in metrics
    assert f"charter_gateway_request_duration_seconds_count{{{series.format('refused')}}} 3.0" in metrics
    counted = 'api="projects",operation="listProjects",status="429",version="1.1.0"'
    assert f"charter_gateway_requests_total{{{counted}}} 3.0" in metrics


async def test_unauthenticated_requests_spend_no_budget(app, client, admin, billing):
    await limit_projects(client, app, admin, 1)
    for _ in range(3):
        assert (await client.get("/gw/projects/v1/projects")).status_code == 401
    assert (await client.get("/gw/projects/v1/projects", headers=billing)).status_code == 200


async def test_shadow_mode_reports_without_throttling(tmp_path):
    app = create_app(gateway_settings(tmp_path, throttle_shadow=True))
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        await limit_projects(client, app, admin, 1)
        statuses = [
            (await client.get("/gw/projects/v1/projects", headers=billing)).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 200]
        metrics = (await client.get("/metrics")).text
        assert 'charter_gateway_throttled_total{api="projects",shadow="true"} 2.0' in metrics


async def test_two_replicas_on_one_redis_share_one_budget(tmp_path):
    """Two gateway apps (as two replicas) on one database and one Redis let through the limit together."""
    tier = f"shared-{uuid.uuid4().hex[:8]}"  # a fresh budget key on the shared Redis
    settings = gateway_settings(tmp_path, redis_url=REDIS_URL, signing_key_file=str(tmp_path / "key.pem"))
    first, second = create_app(settings), create_app(settings)
    async with AsyncTestClient(first) as one, AsyncTestClient(second) as two:
        admin = bearer(await fetch_token(one, *ADMIN))
        await limit_projects(one, first, admin, 20, tier=tier)
        await second.state.gateway.reload()  # the second replica's relay sees no events of the first
        token = bearer(await fetch_token(one, "billing-app", "billing-secret"))
        attempts = [c.get("/gw/projects/v1/projects", headers=token) for _ in range(40) for c in (one, two)]
        statuses = [r.status_code for r in await asyncio.gather(*attempts)]
    assert statuses.count(200) == 20
    assert statuses.count(429) == 60


@pytest.mark.parametrize(("fail_open", "expected"), [(True, 200), (False, 503)])
async def test_redis_unreachable_follows_the_fail_mode(tmp_path, fail_open, expected):
    settings = gateway_settings(tmp_path, redis_url="redis://127.0.0.1:1/0", throttle_fail_open=fail_open)
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        response = await client.get("/gw/projects/v1/projects", headers=billing)
        assert response.status_code == expected
        if fail_open:
            assert "ratelimit" not in response.headers
            assert (
                'charter_gateway_throttle_degraded_total{api="projects"} 1.0'
                in (await client.get("/metrics")).text
            )
        else:
            assert response.json()["type"] == "/problems/throttle-unavailable"
