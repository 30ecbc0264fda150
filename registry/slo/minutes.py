"""The per-minute measurements in the database: added to by every replica, read back per window.

Written behind in batches with the usage counts (registry.usage), never per request. A minute's row
is upserted with its counts and buckets added to those stored, so replicas writing the same minute
add up exactly, and a restart loses only what was not yet flushed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.service_levels import MinuteCounts
from registry.db.models import LATENCY_COLUMNS, ApiServiceMinute

_TABLE = ApiServiceMinute.__table__
_SUMMED = ("requests", "errors", "throttled", *LATENCY_COLUMNS)
_ROWS_PER_STATEMENT = 400


async def add_minutes(session: AsyncSession, minutes: Mapping[tuple[str, str, int], MinuteCounts]) -> None:
    """Add drained counts to the stored minutes, in the caller's write transaction."""
    if not minutes:
        return
    rows = []
    for (api, version, minute), counts in minutes.items():
        row: dict[str, object] = {
            "api": api,
            "version": version,
            "minute": dt.datetime.fromtimestamp(minute * 60, dt.UTC),
            "requests": counts.requests,
            "errors": counts.errors,
            "throttled": counts.throttled,
        }
        row.update(zip(LATENCY_COLUMNS, counts.buckets, strict=True))
        rows.append(row)
    insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
    # 68 bound values a row: chunks keep a statement under SQLite's 32,766 and PostgreSQL's 65,535.
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        stmt = insert(_TABLE).values(rows[start : start + _ROWS_PER_STATEMENT])
        stmt = stmt.on_conflict_do_update(
            index_elements=["api", "version", "minute"],
            set_={name: _TABLE.c[name] + stmt.excluded[name] for name in _SUMMED},
        )
        await session.execute(stmt)


async def totals_since(session: AsyncSession, api: str, since: dt.datetime) -> dict[str, MinuteCounts]:
    """The API's minutes from `since` on, summed per version (one indexed, grouped query)."""
    stmt = (
        select(_TABLE.c.version, *(func.sum(_TABLE.c[name]) for name in _SUMMED))
        .where(_TABLE.c.api == api, _TABLE.c.minute >= since)
        .group_by(_TABLE.c.version)
    )
    totals: dict[str, MinuteCounts] = {}
    for version, requests, errors, throttled, *buckets in await session.execute(stmt):
        counts = totals[version] = MinuteCounts()
        counts.requests, counts.errors, counts.throttled = int(requests), int(errors), int(throttled)
        counts.buckets = [int(n) for n in buckets]
    return totals
