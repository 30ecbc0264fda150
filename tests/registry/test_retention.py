"""What the registry forgets, and when: relayed outbox events, finished deliveries, expired signing keys."""

from __future__ import annotations

import asyncio
import datetime as dt

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry import retention
from registry.app import create_app
from registry.db.engine import create_engine, migrate, session_factory
from registry.db.models import AuditEvent, OutboxEvent, SigningKey, WebhookDelivery, utcnow
from registry.secret_box import SecretBox
from tests.registry.support import make_settings

NOW = utcnow()
DAY = dt.timedelta(days=1)
KEPT = retention.Retention(outbox_days=7, deliveries_days=30, token_lifetime=3600)


async def migrated(database_url: str) -> async_sessionmaker[AsyncSession]:
    engine = create_engine(database_url)
    await migrate(engine, SecretBox.from_settings(make_settings(database_url)))
    return session_factory(engine)


def outbox(id_: int | None, *, relayed: dt.datetime | None, at: dt.datetime) -> OutboxEvent:
    return OutboxEvent(id=id_, topic="contract.published", payload={}, at=at, relayed_at=relayed)


def delivery(
    id_: int, state: str, *, last_attempt: dt.datetime | None, created: dt.datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        id=id_,
        key=f"d{id_}",
        event_id=id_,
        topic="contract.published",
        body=b"{}",
        state=state,
        attempts=1,
        last_attempt_at=last_attempt,
        created_at=created,
    )


def signing_key(generation: int, retired: dt.datetime | None) -> SigningKey:
    return SigningKey(
        generation=generation,
        kid=f"k{generation}",
        sealed_key="sealed",
        created_at=NOW - 30 * DAY,
        retired_at=retired,
    )


async def ids(sessionmaker: async_sessionmaker[AsyncSession], column) -> list:
    async with sessionmaker() as session:
        return sorted((await session.scalars(select(column))).all())


async def test_old_rows_go_and_rows_still_needed_stay(database_url):
    sessionmaker = await migrated(database_url)
    async with sessionmaker() as session:
        session.add_all(
            [
                outbox(1, relayed=NOW - 10 * DAY, at=NOW - 10 * DAY),
                outbox(2, relayed=None, at=NOW - 10 * DAY),  # never relayed: still owed to subscribers
                outbox(3, relayed=NOW - 1 * DAY, at=NOW - 1 * DAY),
                delivery(1, "delivered", last_attempt=NOW - 40 * DAY, created=NOW - 40 * DAY),
                delivery(2, "failed", last_attempt=NOW - 31 * DAY, created=NOW - 40 * DAY),
                delivery(3, "pending", last_attempt=NOW - 40 * DAY, created=NOW - 40 * DAY),
                # Redelivered lately: judged by its last attempt, not by when it was made.
                delivery(4, "delivered", last_attempt=NOW - 2 * DAY, created=NOW - 40 * DAY),
                signing_key(1, NOW - 3 * DAY),
                signing_key(2, NOW - dt.timedelta(minutes=5)),  # its tokens may still be alive
                signing_key(3, None),
            ]
        )
        await session.commit()

    pruned = await retention.prune(sessionmaker, KEPT, now=NOW)

    assert pruned == retention.Pruned(outbox_events=1, webhook_deliveries=2, signing_keys=1)
    assert await ids(sessionmaker, OutboxEvent.id) == [2, 3]
    assert await ids(sessionmaker, WebhookDelivery.id) == [3, 4]
    assert await ids(sessionmaker, SigningKey.generation) == [2, 3]
    async with sessionmaker() as session:
        audited = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "signing-key.pruned"))
        ).all()
    assert [row.before for row in audited] == [{"generation": 1, "kid": "k1"}]
    assert await retention.prune(sessionmaker, KEPT, now=NOW) == retention.Pruned(0, 0, 0, 0)


async def test_event_ids_never_go_back_when_every_event_is_old(database_url):
    """A reused event id would meet the old event's delivery rows and be skipped as already sent."""
    sessionmaker = await migrated(database_url)
    async with sessionmaker() as session:
        session.add_all([outbox(None, relayed=NOW - 10 * DAY, at=NOW - 10 * DAY) for _ in range(5)])
        session.add(signing_key(1, NOW - 300 * DAY))  # the newest generation, however old, stays
        await session.commit()
    before = await ids(sessionmaker, OutboxEvent.id)

    pruned = await retention.prune(sessionmaker, KEPT, now=NOW)

    assert pruned == retention.Pruned(outbox_events=4, webhook_deliveries=0, signing_keys=0)
    assert await ids(sessionmaker, OutboxEvent.id) == before[-1:]
    async with sessionmaker() as session:
        session.add(OutboxEvent(topic="contract.published", payload={}))
        await session.commit()
    assert (await ids(sessionmaker, OutboxEvent.id))[-1] > before[-1]


async def test_large_backlogs_go_in_batches(database_url, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 7)
    sessionmaker = await migrated(database_url)
    async with sessionmaker() as session:
        session.add_all([outbox(n, relayed=NOW - 10 * DAY, at=NOW - 10 * DAY) for n in range(1, 31)])
        await session.commit()

    pruned = await retention.prune(sessionmaker, KEPT, now=NOW)

    assert pruned.outbox_events == 29
    assert await ids(sessionmaker, OutboxEvent.id) == [30]


async def test_a_running_server_prunes_on_start(database_url):
    sessionmaker = await migrated(database_url)
    async with sessionmaker() as session:
        session.add_all([outbox(n, relayed=NOW - 10 * DAY, at=NOW - 10 * DAY) for n in range(1, 4)])
        await session.commit()

    app = create_app(make_settings(database_url, outbox_retention_days=7))
    async with AsyncTestClient(app):
        for _ in range(100):
            if await ids(sessionmaker, OutboxEvent.id) == [3]:
                break
            await asyncio.sleep(0.05)
    assert await ids(sessionmaker, OutboxEvent.id) == [3]


async def test_service_level_minutes_go_after_the_longest_slo_window_and_a_margin(database_url):
    from gateway.service_levels import MinuteCounts
    from registry.db.models import ApiServiceMinute
    from registry.slo import minutes as service_minutes

    sessionmaker = await migrated(database_url)
    counts = MinuteCounts()
    counts.requests = 1
    counts.buckets[0] = 1
    now_minute = int(NOW.timestamp() // 60)
    ages = {"30 days ago": 30 * 1440, "31 days ago": 31 * 1440, "33 days ago": 33 * 1440}
    async with sessionmaker() as session:
        await service_minutes.add_minutes(
            session, {("hcm", label, now_minute - age): counts for label, age in ages.items()}
        )
        await session.commit()
    pruned = await retention.prune(sessionmaker, KEPT, now=NOW)
    assert pruned.service_minutes == 1 and KEPT.service_minutes_days == 32
    async with sessionmaker() as session:
        kept = set(await session.scalars(select(ApiServiceMinute.version)))
    assert kept == {"30 days ago", "31 days ago"}
    await sessionmaker.kw["bind"].dispose()
