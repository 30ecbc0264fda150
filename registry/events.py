"""Events: the transactional outbox relayed, after commit, to subscribers.

The outbox row is written in the transaction of the change it announces, so an event leaves if and
only if its change committed; the relay delivers at least once, in commit order per replica.

Subscribers are of two kinds, on two in-process buses:
- cache subscribers keep this replica's copies in step with the database (the gateway's routing
  table, the event contracts, the issuer's clients). Every replica must see every event. Without
  NATS the relay hands events to them directly; with NATS (`registry.nats_bus`) the relay publishes
  to JetStream and every replica's follower hands the stream's events to them.
- once subscribers cause effects outside the cluster (webhook deliveries) that must happen once per
  event, not once per replica: the relay that took the outbox row runs them, after the event was
  published, on that replica only.
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
    """Takes unrelayed outbox rows in id order and hands each to `deliver`; marks the rows delivered.
    A `deliver` that raises (JetStream did not acknowledge) stops the batch: the rows before it are
    marked, that row and the rest are taken again on the next round."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        deliver: Handler,
        *,
        poll_seconds: float = 2.0,
        batch: int = 100,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._deliver = deliver
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
            delivered: list[int] = []
            failure: Exception | None = None
            for row in rows:
                try:
                    await self._deliver(Event(id=row.id, topic=row.topic, at=row.at, payload=row.payload))
                except Exception as exc:
                    failure = exc
                    break
                delivered.append(row.id)
            if delivered:
                await session.execute(
                    update(OutboxEvent).where(OutboxEvent.id.in_(delivered)).values(relayed_at=utcnow())
                )
            await session.commit()
            if failure is not None:
                raise failure
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
            except ConnectionError as exc:  # the broker is away: the rows wait, no traceback each round
                log.warning("outbox relay waits: %s", exc)
            except Exception:
                log.exception("outbox relay failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)


def in_process_delivery(cache: InProcessBus, once: InProcessBus) -> Handler:
    """Without NATS: the relaying process's caches and its once subscribers see each event."""

    async def deliver(item: Event) -> None:
        await cache.publish(item)
        await once.publish(item)

    return deliver
