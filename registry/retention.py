"""Rows that would otherwise only grow: relayed outbox events, finished webhook deliveries, signing
keys no live token can name, and per-minute service-level measurements past the longest SLO window.
The audit log is never pruned: it is the record.

Every replica prunes on its own schedule; deleting what another replica already deleted is a no-op.
Rows go in batches, each in its own short transaction, so a large backlog never holds SQLite's one
write lock (or PostgreSQL row locks) for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import msgspec
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.flows.runs import FINISHED
from registry import signing_keys
from registry.db.engine import begin_write, database_unavailable
from registry.db.models import (
    ApiServiceMinute,
    DeliveryState,
    FlowRun,
    FlowRunKey,
    OutboxEvent,
    WebhookDelivery,
    utcnow,
)

log = logging.getLogger("charter.retention")

BATCH = 1000


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    outbox_days: int = 7
    deliveries_days: int = 30
    token_lifetime: int = 3600  # signing keys stay while a token they signed may be alive
    # The SLO's longest window is 30 days (registry.slo.compliance); a margin past it for late writers.
    service_minutes_days: int = 32
    flow_runs_days: int = 90


class Pruned(msgspec.Struct, frozen=True):
    outbox_events: int
    webhook_deliveries: int
    signing_keys: int
    service_minutes: int = 0
    flow_runs: int = 0


# Deletes finished runs from the flow engine (FlowRunner.forget); None where this server hosts no flows.
ForgetRuns = Callable[[list[str]], Awaitable[None]]


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession],
    retention: Retention,
    *,
    now: dt.datetime | None = None,
    forget_runs: ForgetRuns | None = None,
) -> Pruned:
    now = now or utcnow()
    outbox_cutoff = now - dt.timedelta(days=retention.outbox_days)
    # SQLite gives a new row max(id) + 1, so an emptied outbox would hand out ids again, and a new
    # event would meet the old one's delivery rows (unique per webhook and event) and be dropped as
    # sent. The newest row stays, whatever its age.
    newest = select(func.max(OutboxEvent.id)).scalar_subquery()
    outbox = await _delete_in_batches(
        sessionmaker,
        OutboxEvent,
        OutboxEvent.relayed_at.is_not(None),
        OutboxEvent.relayed_at < outbox_cutoff,
        OutboxEvent.id < newest,
    )
    deliveries_cutoff = now - dt.timedelta(days=retention.deliveries_days)
    deliveries = await _delete_in_batches(
        sessionmaker,
        WebhookDelivery,
        WebhookDelivery.state != DeliveryState.PENDING.value,
        func.coalesce(WebhookDelivery.last_attempt_at, WebhookDelivery.created_at) < deliveries_cutoff,
    )
    keys = await signing_keys.prune_expired(sessionmaker, token_lifetime=retention.token_lifetime, now=now)
    minutes = await _delete_in_batches(
        sessionmaker,
        ApiServiceMinute,
        ApiServiceMinute.minute < now - dt.timedelta(days=retention.service_minutes_days),
    )
    runs = 0
    if forget_runs is not None:
        runs = await _prune_flow_runs(
            sessionmaker, forget_runs, now - dt.timedelta(days=retention.flow_runs_days)
        )
    return Pruned(outbox, deliveries, keys, minutes, runs)


async def _prune_flow_runs(
    sessionmaker: async_sessionmaker[AsyncSession], forget_runs: ForgetRuns, cutoff: dt.datetime
) -> int:
    """Finished runs last updated before `cutoff`: the engine's rows first, then the index's, so that a
    crash between the two leaves an index row that the next pass deletes, never an engine row that no
    pass would find again."""
    finished = [state.value for state in FINISHED]
    pruned = 0
    while True:
        async with sessionmaker() as session:
            ids = list(
                (
                    await session.scalars(
                        select(FlowRun.id)
                        .where(FlowRun.state.in_(finished), FlowRun.updated_at < cutoff)
                        .order_by(FlowRun.updated_at)
                        .limit(BATCH)
                    )
                ).all()
            )
        if not ids:
            return pruned
        await forget_runs(ids)
        async with sessionmaker() as session:
            await begin_write(session)
            await session.execute(delete(FlowRunKey).where(FlowRunKey.run_id.in_(ids)))
            await session.execute(delete(FlowRun).where(FlowRun.id.in_(ids)))
            await session.commit()
        pruned += len(ids)
        if len(ids) < BATCH:
            return pruned


async def run(
    sessionmaker: async_sessionmaker[AsyncSession],
    retention: Retention,
    stop: asyncio.Event,
    *,
    every: float = 3600.0,
    forget_runs: ForgetRuns | None = None,
) -> None:
    """Prune now and then every `every` seconds until `stop` is set."""
    while not stop.is_set():
        try:
            pruned = await prune(sessionmaker, retention, forget_runs=forget_runs)
            if pruned != Pruned(0, 0, 0, 0, 0):
                log.info("pruned %s", msgspec.json.encode(pruned).decode())
        except Exception as exc:
            if not database_unavailable(exc):
                log.exception("pruning failed; trying again in %s s", every)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


async def _delete_in_batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    model: type[OutboxEvent] | type[WebhookDelivery] | type[ApiServiceMinute],
    *conditions: ColumnElement[bool],
) -> int:
    deleted = 0
    while True:
        async with sessionmaker() as session:
            await begin_write(session)
            batch = select(model.id).where(*conditions).limit(BATCH)
            result = await session.execute(delete(model).where(model.id.in_(batch)))
            await session.commit()
        deleted += result.rowcount
        if result.rowcount < BATCH:
            return deleted
