"""What the gateway saw: calls per API version, operation and consumer (totals), and per version,
consumer and day (what the API page charts), kept in the database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.observability import UsageCounter
from gateway.service_levels import ServiceLevelCounter
from registry.db.engine import begin_write
from registry.db.models import ApiDailyUsage, ApiUsage, utcnow
from registry.slo import minutes as service_minutes

log = logging.getLogger("charter.usage")


async def flush(
    sessionmaker: async_sessionmaker[AsyncSession],
    counter: UsageCounter,
    service_levels: ServiceLevelCounter | None = None,
) -> int:
    """Add the counted calls (and the minutes measured against SLAs) to the stored ones, one upsert
    per key, in one transaction; returns how many usage keys."""
    calls = counter.drain()
    minutes = service_levels.drain() if service_levels is not None else {}
    if not calls and not minutes:
        return 0
    if not calls:
        async with sessionmaker() as session:
            await begin_write(session)
            await service_minutes.add_minutes(session, minutes)
            await session.commit()
        return 0
    now = utcnow()
    # Counts are dated when they are stored, a flush interval (seconds) after the calls at most.
    daily: dict[tuple[str, str, str], int] = {}
    for (api, version, _, consumer), n in calls.items():
        daily[api, version, consumer] = daily.get((api, version, consumer), 0) + n
    rows = [
        {
            "api": api,
            "version": version,
            "operation": operation,
            "consumer": consumer,
            "calls": n,
            "last_seen": now,
        }
        for (api, version, operation, consumer), n in calls.items()
    ]
    async with sessionmaker() as session:
        await begin_write(session)
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        stmt = insert(ApiUsage).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["api", "version", "operation", "consumer"],
            set_={"calls": ApiUsage.calls + stmt.excluded.calls, "last_seen": stmt.excluded.last_seen},
        )
        await session.execute(stmt)
        per_day = insert(ApiDailyUsage).values(
            [
                {"api": api, "version": version, "consumer": consumer, "day": now.date(), "calls": n}
                for (api, version, consumer), n in daily.items()
            ]
        )
        per_day = per_day.on_conflict_do_update(
            index_elements=["api", "version", "consumer", "day"],
            set_={"calls": ApiDailyUsage.calls + per_day.excluded.calls},
        )
        await session.execute(per_day)
        await service_minutes.add_minutes(session, minutes)
        await session.commit()
    return len(rows)


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    counter: UsageCounter,
    stop: asyncio.Event,
    every: float = 5.0,
    service_levels: ServiceLevelCounter | None = None,
) -> None:
    """Store the counts every `every` seconds until `stop` is set (never cancelled mid-write)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await flush(sessionmaker, counter, service_levels)
        except Exception:
            log.exception("could not store gateway usage; it is counted again from now on")


async def usage_of(session: AsyncSession, api: str) -> Sequence[ApiUsage]:
    stmt = select(ApiUsage).where(ApiUsage.api == api).order_by(ApiUsage.consumer, ApiUsage.operation)
    return (await session.scalars(stmt)).all()
