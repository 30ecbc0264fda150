"""Events: the transactional outbox relayed, after commit, to subscribers on the in-process bus.

The outbox row is written in the transaction of the change it announces, so an event leaves if and
only if its change committed; the relay delivers at least once, in commit order per replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.db.engine import begin_write
from registry.db.models import OutboxEvent, utcnow

log = logging.getLogger("charter.events")


class Event(msgspec.Struct, frozen=True):
    id: int
    topic: str
    at: dt.datetime
    payload: dict[str, Any]


Handler = Callable[[Event], Awaitable[None]]


class InProcessBus:
    """Topic-prefix subscriptions in this process; a failing subscriber never stops the others."""

    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Handler]] = []

    def subscribe(self, prefix: str, handler: Handler) -> None:
        self._subscribers.append((prefix, handler))

    async def publish(self, item: Event) -> None:
        for prefix, handler in self._subscribers:
            if item.topic.startswith(prefix):
                try:
                    await handler(item)
                except Exception:
                    log.exception("subscriber of %s failed on event %s", prefix, item.id)


class OutboxRelay:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: InProcessBus,
        *,
        poll_seconds: float = 2.0,
        batch: int = 100,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bus = bus
        self._poll_seconds = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        # Any commit may have written outbox rows: wake up instead of waiting for the next poll.
        event.listen(sessionmaker.kw["sync_session_class"], "after_commit", lambda _session: self._wake.set())

    async def relay_once(self) -> int:
        async with self._sessionmaker() as session:
            await begin_write(session)
            stmt = select(OutboxEvent).where(OutboxEvent.relayed_at.is_(None)).order_by(OutboxEvent.id)
            if session.bind.dialect.name == "postgresql":
                # Replicas share the outbox: each row is taken by one relay.
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.scalars(stmt.limit(self._batch))).all()
            if not rows:
                await session.rollback()
                return 0
            for row in rows:
                await self._bus.publish(Event(id=row.id, topic=row.topic, at=row.at, payload=row.payload))
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id.in_([r.id for r in rows]))
                .values(relayed_at=utcnow())
            )
            await session.commit()
            return len(rows)

    def stop(self) -> None:
        """Finish the batch under way, then return from `run`. Cancelling it instead could leave a
        connection checked out in the middle of a write, holding SQLite's lock past shutdown."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                while await self.relay_once() == self._batch:
                    pass
            except Exception:
                log.exception("outbox relay failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)
