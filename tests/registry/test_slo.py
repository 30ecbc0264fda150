"""SLA compliance measured by the gateway: real traffic (2xx, 5xx, 429) through the demo's HCM API,
stored per minute, read back at /api/v1/apis/{name}/slo; replicas on one database add up."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from gateway.service_levels import MinuteCounts, estimate_quantile_ms
from registry import catalog, usage
from registry.app import create_app
from registry.db.models import LATENCY_COLUMNS, ApiServiceMinute, OutboxEvent, utcnow
from registry.slo import burn_alerts
from registry.slo import minutes as service_minutes
from registry.slo.compliance import slo_of
from tests.gateway.conftest import settled
from tests.loopback import request_body, serving
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings

T = TypeVar("T")
HCM_CLIENT = {"client_id": "hr-portal", "client_secret": "hr-secret", "scopes": ["hcm:read"]}
EMPLOYEE = "/gw/hcm/v1/employees/e-100"


def settings_for(database_url: str):
    return make_settings(database_url, demo=True, clients_json=json.dumps([*CLIENTS, HCM_CLIENT]))


@pytest.fixture
def app(tmp_path) -> Litestar:
    return create_app(settings_for(f"sqlite+aiosqlite:///{tmp_path}/slo.db"))


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def flush(app: Litestar) -> None:
    await usage.flush(app.state.sessionmaker, app.state.gateway.usage, app.state.gateway.service_levels)


async def in_app_loop(client: AsyncTestClient, function: Callable[..., Awaitable[T]], *args: object) -> T:
    """On the app's own event loop, where its database connections live (PostgreSQL cares)."""
    return await asyncio.to_thread(client.blocking_portal.call, function, *args)


async def set_hcm_sla(client: AsyncTestClient, admin: dict[str, str], quota: int) -> None:
    sla = {
        "tier": "silver",
        "availability": 99.0,
        "latency_p99_ms": 500,
        "rate_limit": {"requests": quota, "per_seconds": 3600, "burst": 0},
    }
    answer = await client.put("/api/v1/apis/hcm/sla", json=sla, headers=admin)
    assert answer.status_code == 200, answer.text


async def fail_next(client: AsyncTestClient, admin: dict[str, str], count: int, status: int) -> None:
    answer = await client.put(
        "/api/v1/demo/systems/hcm/faults", json={"fail_next": count, "status": status}, headers=admin
    )
    assert answer.status_code == 200, answer.text


async def stored_buckets(app: Litestar) -> list[int]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(select(*(ApiServiceMinute.__table__.c[c] for c in LATENCY_COLUMNS)))
        return [sum(column) for column in zip(*rows, strict=True)]


async def test_slo_counts_5xx_as_errors_and_leaves_429_out(app, client):
    admin = bearer(await fetch_token(client, *ADMIN))
    hr = bearer(await fetch_token(client, "hr-portal", "hr-secret"))
    await set_hcm_sla(client, admin, quota=8)
    await settled(app)

    await fail_next(client, admin, 2, 503)
    await fail_next_then_call(client, hr, [503, 503])
    await fail_next(client, admin, 1, 500)
    await fail_next_then_call(client, hr, [500, 200, 200, 200, 200, 200])
    # The quota of 8 is spent: the gateway throttles the next two.
    await fail_next_then_call(client, hr, [429, 429])
    await flush(app)

    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    answer = await client.get("/api/v1/apis/hcm/slo", headers=reader)
    assert answer.status_code == 200, answer.text
    slo = answer.json()
    assert (slo["api"], slo["owner"], slo["tier"]) == ("hcm", "people", "silver")
    assert slo["windows"] == ["5m", "1h", "6h", "3d", "30d"]
    assert slo["availability"]["target"] == 99.0
    assert slo["latency_p99_ms"]["target"] == 500
    p99 = round(estimate_quantile_ms(await stored_buckets(app), 0.99) or 0, 3)
    assert p99 > 0
    for window in slo["windows"]:
        # 10 answers: 5 good, 3 server errors, 2 throttled (in neither the good nor the total).
        assert slo["requests"][window] == {"total": 10, "errors": 3, "throttled": 2}
        assert slo["availability"]["measured"][window] == {"overall": 62.5, "versions": {"1.0.0": 62.5}}
        assert slo["latency_p99_ms"]["measured"][window] == {"overall": p99, "versions": {"1.0.0": p99}}
        assert slo["burn_rate"][window] == pytest.approx((3 / 8) / (1 - 0.99), rel=1e-12)
    assert slo["error_budget_remaining"] == pytest.approx(1 - (3 / 8) / 0.01, rel=1e-12)

    # The stored minute holds the whole histogram of the 8 answers that were not 429.
    assert sum(await stored_buckets(app)) == 8


async def fail_next_then_call(client: AsyncTestClient, headers: dict[str, str], expected: list[int]) -> None:
    statuses = [(await client.get(EMPLOYEE, headers=headers)).status_code for _ in expected]
    assert statuses == expected


async def test_slo_of_unknown_api_is_404_and_api_without_sla_has_null_targets(app, client):
    admin = bearer(await fetch_token(client, *ADMIN))
    unknown = await client.get("/api/v1/apis/nope/slo", headers=admin)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")

    created = await client.post(
        "/api/v1/apis",
        json={"name": "bare", "owner": "people", "title": "Bare", "layer": "system"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    slo = (await client.get("/api/v1/apis/bare/slo", headers=admin)).json()
    assert (slo["tier"], slo["availability"]["target"], slo["latency_p99_ms"]["target"]) == (None, None, None)
    assert slo["error_budget_remaining"] is None
    assert slo["burn_rate"]["1h"] is None
    assert slo["availability"]["measured"]["5m"] == {"overall": None, "versions": {}}


async def test_slo_and_rules_need_the_registry_read_scope(client):
    consumer = bearer(await fetch_token(client, "hr-portal", "hr-secret"))  # hcm:read only
    for path in ("/api/v1/apis/hcm/slo", "/api/v1/alerts/prometheus-rules"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=consumer)).status_code == 403


async def test_windows_hold_their_minutes_only(app, client):
    """Minutes stored 10 minutes and 2 days ago count in the longer windows, not in the shorter."""
    now = utcnow()
    counts = MinuteCounts()
    counts.requests, counts.errors = 4, 1
    counts.buckets[10] = 4
    minute = int(now.timestamp() // 60)
    async with app.state.sessionmaker() as session:
        await service_minutes.add_minutes(
            session, {("hcm", "1.0.0", minute - 10): counts, ("hcm", "1.0.0", minute - 2 * 1440): counts}
        )
        await session.commit()
        slo = await slo_of(session, await catalog.get_api(session, "hcm"), now=now)
    assert {w: r.total for w, r in slo.requests.items()} == {"5m": 0, "1h": 4, "6h": 4, "3d": 8, "30d": 8}
    assert slo.availability.measured["1h"].overall == 75.0
    assert slo.availability.measured["5m"].overall is None


@pytest.mark.postgres
async def test_replicas_on_one_postgresql_database_add_up(postgres_database: Any) -> None:
    """Two app instances on one PostgreSQL database each serve part of the traffic and flush it:
    the same minute's row holds the sum, and either instance answers the whole."""
    from tests.conftest import PG_ADMIN_DSN, reset_postgres

    await reset_postgres(postgres_database)
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    settings = settings_for(f"postgresql+asyncpg://postgres@{host}/{postgres_database}")
    first, second = create_app(settings), create_app(settings)
    async with AsyncTestClient(first) as one, AsyncTestClient(second) as two:
        admin = bearer(await fetch_token(one, *ADMIN))
        for replica, app, answers in ((one, first, 3), (two, second, 4)):
            hr = bearer(await fetch_token(replica, "hr-portal", "hr-secret"))
            await fail_next(replica, bearer(await fetch_token(replica, *ADMIN)), 1, 502)
            await fail_next_then_call(replica, hr, [502] + [200] * (answers - 1))
            await in_app_loop(replica, flush, app)

        async def rows() -> list[tuple[str, str, int, int, int]]:
            async with first.state.sessionmaker() as session:
                found = await session.execute(
                    select(
                        ApiServiceMinute.api,
                        ApiServiceMinute.version,
                        ApiServiceMinute.requests,
                        ApiServiceMinute.errors,
                        ApiServiceMinute.throttled,
                    )
                )
                return [tuple(row) for row in found]

        stored = await in_app_loop(one, rows)
        # One row per minute: the two replicas' counts summed (two rows if a minute turned meanwhile).
        assert sum(row[2] for row in stored) == 7 and sum(row[3] for row in stored) == 2
        assert {row[:2] for row in stored} == {("hcm", "1.0.0")}
        assert len(stored) <= 2
        slo = (await two.get("/api/v1/apis/hcm/slo", headers=admin)).json()
        assert slo["requests"]["5m"] == {"total": 7, "errors": 2, "throttled": 0}
        assert slo["availability"]["measured"]["5m"]["overall"] == 100 * 5 / 7

        # Both replicas evaluate the burn at once (2 errors in 7: 28.6 times the 1 % budget): the
        # page and the ticket each start once, whichever replica wins.
        announced = await asyncio.gather(
            in_app_loop(one, burn_alerts.evaluate, first.state.sessionmaker),
            in_app_loop(two, burn_alerts.evaluate, second.state.sessionmaker),
        )
        assert sum(announced) == 2

        async def burn_events() -> list[str]:
            async with first.state.sessionmaker() as session:
                rows = await session.scalars(
                    select(OutboxEvent.payload).where(OutboxEvent.topic == "slo.burn")
                )
                return sorted(f"{p['severity']} {p['state']}" for p in rows)

        assert await in_app_loop(one, burn_events) == ["page firing", "ticket firing"]


async def test_a_burning_budget_notifies_the_owning_team_once_per_episode(app, client):

    received: list[tuple[dict[str, str], bytes]] = []

    async def receiver(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        received.append(({k.decode(): v.decode() for k, v in scope["headers"]}, await request_body(receive)))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    admin = bearer(await fetch_token(client, *ADMIN))
    hr = bearer(await fetch_token(client, "hr-portal", "hr-secret"))
    with serving(receiver) as base:
        subscriptions = {}
        for team in ("people", "delivery"):  # hcm is the people team's; delivery must hear nothing
            made = await client.post(
                f"/api/v1/teams/{team}/webhooks",
                json={"url": f"{base}/{team}", "topics": ["slo.*"]},
                headers=admin,
            )
            assert made.status_code == 201, made.text
            subscriptions[team] = made.json()["secret"]
        await set_hcm_sla(client, admin, quota=100)
        await settled(app)
        await fail_next(client, admin, 3, 503)
        await fail_next_then_call(client, hr, [503, 503, 503, 200, 200, 200, 200, 200])
        await flush(app)

        sessionmaker = app.state.sessionmaker
        now = utcnow()
        # 3 of 8 answers are 5xx: a burn rate of 37.5 in every window; page and ticket both start.
        assert await in_app_loop(client, burn_alerts.evaluate, sessionmaker) == 2
        assert await in_app_loop(client, burn_alerts.evaluate, sessionmaker) == 0  # same episodes
        # Ten minutes on the 5-minute window is empty: the page ends, the ticket goes on.
        later = now + dt.timedelta(minutes=10)

        async def evaluate_later() -> int:
            return await burn_alerts.evaluate(sessionmaker, now=later)

        assert await in_app_loop(client, evaluate_later) == 1
        assert await in_app_loop(client, evaluate_later) == 0

        for _ in range(500):
            if len(received) >= 3:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # room for a wrong delivery to the other team to show up
    assert {headers["charter-event"] for headers, _ in received} == {"slo.burn"}
    assert len(received) == 3
    events = [json.loads(body) for _, body in received]
    assert sorted((e["data"]["severity"], e["data"]["state"]) for e in events) == [
        ("page", "firing"),
        ("page", "resolved"),
        ("ticket", "firing"),
    ]
    for (headers, body), event in zip(received, events, strict=True):
        assert event["data"]["api"] == "hcm" and event["data"]["team"] == "people"
        digest = hmac.new(
            subscriptions["people"].encode(),
            headers["charter-timestamp"].encode() + b"." + body,
            hashlib.sha256,
        ).hexdigest()
        assert headers["charter-signature"] == f"sha256={digest}"
    page = next(
        e["data"] for e in events if e["data"]["severity"] == "page" and e["data"]["state"] == "firing"
    )
    assert page["burn_rates"]["1h"] == pytest.approx(37.5) and page["threshold"] == 14.4
