"""Replicas sharing PostgreSQL take over the flow runs of a replica that died.

Each replica counts heartbeats in `flow_executors`. A replica whose count stays still for a lease,
as timed by a survivor's own monotonic clock (so clocks of different hosts never need to agree),
is dead: the first survivor to advance its count from the value it saw claims it (a compare-and-set
only one survivor wins), hands its unfinished runs back to DBOS (which queues them for whichever live
replica dequeues each first), then deletes its row. A claimant that dies before deleting leaves a
row that goes still again, so another survivor claims it later; DBOS's recovery of a run is
idempotent, so a second claim resumes nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from gateway.flows.runner import FlowRunner
from registry.db.engine import begin_write
from registry.db.models import FlowExecutor, utcnow

log = logging.getLogger("charter.flows")
SINGLE_NODE_EXECUTOR = "local"


class ExecutorSlot:
    """This process's executor id on PostgreSQL: `<host>-<n>` for the lowest slot n that no live
    process holds, held by a session advisory lock on a connection of this process's own.

    A process that dies loses its connection and with it the lock, so the process started in its
    place (uvicorn restarts a dead worker; an orchestrator restarts a replica on the same host name)
    takes the same slot and DBOS resumes that slot's unfinished runs as it launches, instead of a
    survivor after a lease. Two live processes never hold one slot, so never share an id."""

    def __init__(self, engine: AsyncEngine, host: str | None = None) -> None:
        self._engine = engine
        self._host = (host or socket.gethostname())[:100]
        self._connection: AsyncConnection | None = None
        self.executor_id: str | None = None

    async def take(self) -> str:
        for slot in range(_MAX_SLOTS):
            executor = f"{self._host}-{slot}"
            if await self._lock(executor):
                self.executor_id = executor
                return executor
        raise RuntimeError(f"{_MAX_SLOTS} flow executors on host {self._host} already")

    async def hold(self) -> None:
        """Take this process's slot again if its session ended while the process lives on (the
        database restarted, or dropped the connection): else a process starting meanwhile would
        take the free slot and share this one's id. Called with each heartbeat."""
        if self.executor_id is None:
            return
        if self._connection is not None:
            try:
                await self._connection.scalar(select(1))
                await self._connection.commit()
                return
            except Exception:
                await self.release()
        if not await self._lock(self.executor_id):
            log.error("flow executor slot %s was taken by another process meanwhile", self.executor_id)

    async def _lock(self, executor: str) -> bool:
        connection = await self._engine.connect()
        try:
            if not await connection.scalar(select(func.pg_try_advisory_lock(_lock_key(executor)))):
                return False
            # Which process holds which slot, for an operator (pg_stat_activity) and tests.
            name = f"charter-executor {executor} pid {os.getpid()}"[-63:]
            await connection.execute(select(func.set_config("application_name", name, False)))
            await connection.commit()
            self._connection = connection
            return True
        finally:
            if self._connection is not connection:  # not kept: its session must end, not be pooled
                await connection.invalidate()
                await connection.close()

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Closed, not returned to the pool: the lock goes with its session.
            with contextlib.suppress(Exception):  # a connection already lost has no lock to drop
                await connection.invalidate()
            await connection.close()


_MAX_SLOTS = 1024


def _lock_key(executor: str) -> int:
    digest = hashlib.blake2b(f"charter-flow-executor:{executor}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class ExecutorLeases:
    """This replica's heartbeat, and its watch on the other replicas' heartbeats."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        executor_id: str,
        *,
        lease_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self.executor_id = executor_id
        self.lease_seconds = lease_seconds
        self._seen: dict[str, tuple[int, float]] = {}  # executor: (beats, when they last changed)
        self._looked_at: float | None = None

    async def beat(self) -> None:
        async with self._sessionmaker() as session:
            await begin_write(session)
            row = await session.get(FlowExecutor, self.executor_id)
            if row is None:
                session.add(FlowExecutor(id=self.executor_id, beats=0, beat_at=utcnow()))
            else:
                row.beats += 1
                row.beat_at = utcnow()
            await session.commit()

    async def claim_dead(self) -> list[str]:
        """The executors this replica has just claimed: still for a lease, and not claimed by another."""
        async with self._sessionmaker() as session:
            rows = (await session.execute(select(FlowExecutor.id, FlowExecutor.beats))).all()
        now = self._clock()
        if self._looked_at is not None and now - self._looked_at >= self.lease_seconds:
            self.forget()  # this replica was paused: others' stillness meanwhile proves nothing
        self._looked_at = now
        present = {executor for executor, _ in rows}
        for gone in self._seen.keys() - present:
            del self._seen[gone]
        claimed = []
        for executor, beats in rows:
            if executor == self.executor_id:
                continue
            seen = self._seen.get(executor)
            if seen is None or seen[0] != beats:
                self._seen[executor] = (beats, now)
            elif now - seen[1] >= self.lease_seconds and await self._claim(executor, beats):
                self._seen[executor] = (beats + 1, now)
                claimed.append(executor)
        return claimed

    async def _claim(self, executor: str, beats: int) -> bool:
        async with self._sessionmaker() as session:
            await begin_write(session)
            result = await session.execute(
                update(FlowExecutor)
                .where(FlowExecutor.id == executor, FlowExecutor.beats == beats)
                .values(beats=beats + 1, beat_at=utcnow())
            )
            await session.commit()
        return result.rowcount == 1  # type: ignore[attr-defined]

    def forget(self) -> None:
        """Start watching afresh: after an outage every replica gets a whole lease to beat again."""
        self._seen.clear()
        self._looked_at = None

    async def release(self, executor: str) -> None:
        """Forget a dead executor whose runs have been resumed."""
        async with self._sessionmaker() as session:
            await begin_write(session)
            await session.execute(delete(FlowExecutor).where(FlowExecutor.id == executor))
            await session.commit()
        self._seen.pop(executor, None)


async def take_over_dead_replicas(
    runner: FlowRunner, leases: ExecutorLeases, *, every_seconds: float, slot: ExecutorSlot | None = None
) -> None:
    """Beat (and keep this process's slot), and resume the runs of replicas that stopped beating."""
    while True:
        try:
            if slot is not None:
                await slot.hold()
            await leases.beat()
            for executor in await leases.claim_dead():
                resumed = await runner.recover_executor(executor)
                log.warning("executor %s stopped beating: re-enqueued %d of its runs", executor, resumed)
                await leases.release(executor)
        except Exception:  # a database outage must not end the watch: the next round tries again
            log.exception("flow executor heartbeat failed")
            leases.forget()
        await asyncio.sleep(every_seconds)
