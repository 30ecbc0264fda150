"""Charter's own burn-rate alerts: the same page and ticket conditions as the generated Prometheus
rules (registry.slo.alert_rules), evaluated now and then from the per-minute measurements, announced
as `slo.burn` events that the owning team's webhook subscriptions hear.

One announcement per episode, not per evaluation: an episode is a row of `api_slo_alerts`, inserted
when the condition starts to hold and deleted when it stops. Whichever replica's insert (or delete)
takes effect writes the event to the outbox in the same transaction; the others' do nothing, so
several replicas evaluating at once still announce each start and end once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry import audit
from registry.db.engine import begin_write, database_unavailable
from registry.db.models import Api, ApiServiceMinute, ApiSloAlert, Team, utcnow
from registry.slo.alert_rules import BURN_ALERTS
from registry.slo.compliance import WINDOWS

log = logging.getLogger("charter.slo")
TOPIC = "slo.burn"


async def _ratios(session: AsyncSession, window: str, now: dt.datetime) -> dict[str, tuple[int, int]]:
    """Per API: (answers that count, 5xx) over the window; one grouped query for every API."""
    since = now.replace(second=0, microsecond=0) - WINDOWS[window] + dt.timedelta(minutes=1)
    m = ApiServiceMinute
    stmt = (
        select(m.api, func.sum(m.requests) - func.sum(m.throttled), func.sum(m.errors))
        .where(m.minute >= since)
        .group_by(m.api)
    )
    return {api: (int(counted), int(errors)) for api, counted, errors in await session.execute(stmt)}


def _burn(ratios: dict[str, tuple[int, int]], api: str, budget: float) -> float | None:
    counted, errors = ratios.get(api, (0, 0))
    return None if counted <= 0 else (errors / counted) / budget


async def evaluate(sessionmaker: async_sessionmaker[AsyncSession], *, now: dt.datetime | None = None) -> int:
    """Start and end episodes as the burn rates say; returns how many announcements it wrote."""
    now = now or utcnow()
    async with sessionmaker() as session:
        targets = [
            (name, team, float(sla["availability"]))
            for name, team, sla in await session.execute(
                select(Api.name, Team.name, Api.sla)
                .join(Team)
                .where(or_(Api.kind.is_(None), Api.kind != "asyncapi"))
            )
            if sla and sla.get("availability") is not None and float(sla["availability"]) < 100
        ]
        windows = {w for _, _, long, short in BURN_ALERTS for w in (long, short)}
        ratios = {window: await _ratios(session, window, now) for window in sorted(windows)}
        firing = {(row.api, row.severity) for row in await session.scalars(select(ApiSloAlert))}
        await session.rollback()
        announced = 0
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        for api, team, availability in targets:
            budget = (100 - availability) / 100
            for severity, rate, long, short in BURN_ALERTS:
                rates = {w: _burn(ratios[w], api, budget) for w in (long, short)}
                burning = all(r is not None and r > rate for r in rates.values())
                if burning == ((api, severity) in firing):
                    continue
                await begin_write(session)
                if burning:
                    stmt = insert(ApiSloAlert).values(api=api, severity=severity, since=now)
                    changed = (await session.execute(stmt.on_conflict_do_nothing())).rowcount
                else:
                    where = (ApiSloAlert.api == api, ApiSloAlert.severity == severity)
                    changed = (await session.execute(delete(ApiSloAlert).where(*where))).rowcount
                if changed == 1:
                    audit.emit(
                        session,
                        TOPIC,
                        {
                            "api": api,
                            "team": team,
                            "severity": severity,
                            "state": "firing" if burning else "resolved",
                            "availability_target": availability,
                            "threshold": rate,
                            "long_window": long,
                            "short_window": short,
                            "burn_rates": rates,
                            "at": now.isoformat(),
                        },
                    )
                    announced += 1
                await session.commit()
        # Episodes of APIs that lost their SLA (or the API) end quietly: nobody is to be told.
        gone = firing - {(api, severity) for api, _, _ in targets for severity, *_ in BURN_ALERTS}
        if gone:
            await begin_write(session)
            for api, severity in gone:
                await session.execute(
                    delete(ApiSloAlert).where(ApiSloAlert.api == api, ApiSloAlert.severity == severity)
                )
            await session.commit()
    return announced


async def run(
    sessionmaker: async_sessionmaker[AsyncSession], stop: asyncio.Event, *, every: float = 60.0
) -> None:
    """Evaluate every `every` seconds until `stop` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)
        try:
            await evaluate(sessionmaker)
        except Exception as exc:
            if not database_unavailable(exc):
                log.exception("could not evaluate the SLO burn rates; trying again in %s s", every)
