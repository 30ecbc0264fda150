"""Write-behind of the run index: what runs executing here have done, written in batches.

The durable truth of a run is DBOS's (its recorded steps); the index is what people search. So a
step's progress need not reach the index before the run goes on: the writer keeps the latest state
of each changed run and writes all of them in one transaction, on a short timer or at once when a
run settles (finishes or parks), whose writer waits for that transaction. Runs that settle together
share it (a group commit), which is what makes many concurrent runs cheap. A crash loses only
progress that recovery rewrites: a run that had not settled is resumed by DBOS from its recorded
steps and writes its record again; a settled run's record was committed before it settled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import msgspec

from gateway.flows.runs import RunIndex, RunRecord, RunWrite

log = logging.getLogger("charter.flows")
FLUSH_SECONDS = 0.05  # how stale the index's view of a run in progress may be
RETRY_SECONDS = 0.5  # after a failed write (the database away): the batch is kept and written again


class IndexWriter:
    def __init__(self, index: RunIndex, *, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.index = index
        self.flush_seconds = flush_seconds
        self._changed: dict[str, tuple[RunRecord, list[tuple[str, dict[str, Any]]]]] = {}
        self._written: asyncio.Future[None] | None = None  # done when the changes so far are written
        self._urgent = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="charter-flow-index-writer")

    async def close(self) -> None:
        """Write what is left, and stop."""
        if self._task is None:
            return
        if self._changed:
            with contextlib.suppress(Exception):
                await self.write_now()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        await self.index.close()

    def changed(self, record: RunRecord, events: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """`record` (the live object: its state when the batch is taken is what is written) has
        changed; `events` leave in the transaction that writes it."""
        _, pending = self._changed.setdefault(record.id, (record, []))
        if events:
            pending.extend(events)
        self._wake.set()

    async def write(self, record: RunRecord, events: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """`record` has changed and must be in the index before the caller goes on."""
        self.changed(record, events)
        await self.write_now()

    async def write_now(self) -> None:
        if self._written is None:
            self._written = asyncio.get_running_loop().create_future()
        written = self._written
        self._urgent.set()
        self._wake.set()
        await asyncio.shield(written)

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_seconds):
                        await self._urgent.wait()
            self._wake.clear()
            self._urgent.clear()
            batch, self._changed = self._changed, {}
            written, self._written = self._written, None
            if not batch:
                if written is not None:
                    written.set_result(None)
                continue
            writes = [RunWrite(record=_snapshot(record), events=events) for record, events in batch.values()]
            try:
                await self.index.save_many(writes)
            except Exception:
                log.exception("could not write %d flow runs to the index; trying again", len(writes))
                self._restore(batch, written)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if written is not None:
                written.set_result(None)

    def _restore(self, batch: dict, written: asyncio.Future[None] | None) -> None:
        """Put a batch that was not written back in front of the changes made since."""
        for run_id, (record, events) in batch.items():
            _, later = self._changed.pop(run_id, (record, []))
            self._changed[run_id] = (record, [*events, *later])
        if written is not None:
            if self._written is None:
                self._written = written
            else:
                newer = self._written
                newer.add_done_callback(lambda _: written.done() or written.set_result(None))
        self._urgent.set()
        self._wake.set()


def _snapshot(record: RunRecord) -> RunRecord:
    return msgspec.json.decode(msgspec.json.encode(record), type=RunRecord)
