"""The runner: flows executed as DBOS workflows (see `workflow`), started and awaited here.

DBOS is a process-wide singleton: one runner is active per process (`start` / `stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping

import msgspec
from dbos import DBOS, SetWorkflowID
from dbos._core import WorkflowHandleAsyncTask  # the handle of a workflow executing in this process
from dbos._dbos import _get_dbos_instance, _get_or_create_dbos_registry
from dbos._queue import Queue
from sqlalchemy import make_url

from gateway.flows import actions, engine, startup_recovery, step_check
from gateway.flows.actions import RunConflict, UnknownRun
from gateway.flows.declaration import Flow, FlowInput, SystemClient
from gateway.flows.metrics import FlowMetrics
from gateway.flows.progress import IndexWriter
from gateway.flows.runs import FINISHED, RunIndex, RunRecord, RunState
from gateway.flows.steps import MAX_EVENT_BYTES, EventCheck, now, step_idempotency_key
from gateway.flows.system_database import SystemDatabaseSettings, dbos_engine_config
from gateway.flows.workflow import charter_flow_run
from gateway.tracing import NO_TRACING, Tracing

__all__ = [
    "MAX_EVENT_BYTES",
    "ClientFactory",
    "EventCheck",
    "FlowRunner",
    "RunConflict",
    "UnknownFlow",
    "UnknownRun",
    "step_idempotency_key",
]

_INDEXED_WITHIN_SECONDS = 5.0  # a run started here is in the index within its first batch
_POLL_SECONDS = 0.25
# DBOS's internal queue is polled this often while this process recovers runs (see _poll_recovery),
# and at DBOS's own interval once it has executed none for _RECOVERED_ALL_SECONDS.
_RECOVERY_POLL_SECONDS = 0.05
_RECOVERED_ALL_SECONDS = 2.0

ClientFactory = Callable[[Flow, str, str, str], SystemClient]  # flow, run id, step, traceparent


class UnknownFlow(Exception):
    pass


class _Waiters:
    """Callers waiting for one run to settle, and the record it settled with."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.record: RunRecord | None = None
        self.count = 0


class FlowRunner:
    def __init__(
        self,
        flows: Mapping[str, Flow],
        *,
        index: RunIndex,
        client_factory: ClientFactory,
        system_database_url: str,
        app_name: str = "charter-flows",
        executor_id: str = "local",
        metrics: FlowMetrics | None = None,
        event_check: EventCheck | None = None,
        tracing: Tracing = NO_TRACING,
        system_database: SystemDatabaseSettings | None = None,
    ) -> None:
        self.flows = dict(flows)
        self.tracing = tracing
        self.index = index
        self.writer = IndexWriter(index)
        self.client_factory = client_factory
        self.system_database_url = system_database_url
        self.system_database = system_database or SystemDatabaseSettings()
        self.app_name = app_name
        self.executor_id = executor_id
        self.metrics = metrics
        self.event_check = event_check
        self._waiters: dict[str, _Waiters] = {}
        self._running: dict[str, RunRecord] = {}  # runs executing here, as they stand
        self._starting: set[str] = set()  # runs started here whose workflow has not begun yet
        self.completed_attempts: dict[str, dict] = {}  # by run: its last successful attempt's outcome
        self._parked: set[str] = set()  # runs executing here that wait for an operator
        self._recovery_queue: Queue | None = None
        self._idle_poll_seconds = 1.0  # the internal queue's own interval, put back after recovery
        self._recovery_poller: asyncio.Task[None] | None = None

    # Lifecycle: DBOS recovers this process's pending runs on launch, on the running event loop.
    async def start(self) -> None:
        engine.activate(self)
        self.writer.start()
        # Not in a thread: with an `asyncio.to_thread` here, before DBOS is made, every run was
        # 1.5x slower on PostgreSQL (bench side by side); the pragma takes about a millisecond.
        _journal_ahead(self.system_database_url)
        step_check.install(self.system_database.one_statement_check)
        startup_recovery.install(self.system_database.batched_recovery)
        dbos = DBOS(
            config={
                "name": self.app_name,
                "system_database_url": self.system_database_url,
                "log_level": "WARNING",
                "executor_id": self.executor_id,
                # Every deployment runs the flows it has: recovery must not skip runs started by
                # an earlier build of the same flows.
                "application_version": "charter",
                **dbos_engine_config(self.system_database_url, self.system_database),  # type: ignore[typeddict-item]
            }
        )
        self._recovery_queue = recovery_queue()
        self._limit_recovery()
        self._poll_fast(dbos)
        DBOS.launch()

    def _limit_recovery(self) -> None:
        """How many recovered runs this process may execute at once: DBOS recovers a run by putting it
        on its internal queue, whose every process takes all it finds at its next poll unless its
        `worker_concurrency` says otherwise; so after a restart of several processes, or a takeover,
        the first to poll took every run and the others none. With a limit each takes its share,
        and takes more as it finishes some, at its next poll (every 50 ms while it recovers). Runs
        parked here wait for an operator, possibly for days, while they count against the limit:
        they widen it."""
        limit = self.system_database.recovery_concurrency
        if self._recovery_queue is not None:
            self._recovery_queue._worker_concurrency = None if limit is None else limit + len(self._parked)

    def _poll_fast(self, dbos: DBOS) -> None:
        """Poll DBOS's internal queue often until this process has recovered what it can.

        At DBOS's interval (a second, from launch) a process that finished the runs it took under
        its limit waited for the next poll to take more: recovering 1,000 runs went in steps of
        250 a second with the CPU idle a third of the time, and the first poll came a second after
        launch. DBOS's worker thread reads the interval before each wait, and starts from it (only
        a lengthened interval applies at once: a shortened one it approaches by 10% a poll), so it
        is short from launch; once this process has executed no recovered run for a while it goes
        back to DBOS's, and an idle process polls no more often than before."""
        queue = self._recovery_queue
        if queue is None:
            return
        if self._recovery_poller is None:
            self._idle_poll_seconds = queue._polling_interval_sec
        queue._polling_interval_sec = _RECOVERY_POLL_SECONDS
        if self._recovery_poller is None or self._recovery_poller.done():
            self._recovery_poller = asyncio.get_running_loop().create_task(self._poll_recovery(dbos, queue))

    async def _poll_recovery(self, dbos: DBOS, queue: Queue) -> None:
        last_busy = time.monotonic()
        try:
            while time.monotonic() - last_busy < _RECOVERED_ALL_SECONDS:
                await asyncio.sleep(_RECOVERY_POLL_SECONDS * 4)
                # A parked run (recovered or not) may wait here for days: not a recovery going on.
                if dbos._active_workflows_set.count_for_queue(queue.name) > len(self._parked):
                    last_busy = time.monotonic()
        finally:
            queue._polling_interval_sec = self._idle_poll_seconds

    async def recover_executor(self, executor_id: str) -> int:
        """Queue the unfinished runs of another executor, known to be dead, for a live replica to
        resume (whichever dequeues each first); the number queued.

        DBOS's startup recovery covers only this executor's own runs, and its recovery of other
        executors' runs is `DBOS._recover_pending_workflows` alone (no public equivalent in 3.4;
        tests/gateway/test_flows_takeover.py fails if it changes). It re-enqueues each run only while
        the run is still pending under `executor_id`, and one executor dequeues it, so two survivors
        recovering the same dead executor resume each run once."""
        handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [executor_id])
        if handles:
            self._poll_fast(_get_dbos_instance())
        return len(handles)

    async def forget(self, run_ids: list[str]) -> None:
        """Delete finished runs from the engine (their steps, outputs and status): what the registry's
        retention calls before it deletes the same runs from the index."""
        await DBOS.delete_workflows_async(run_ids)
        for run_id in run_ids:
            self.completed_attempts.pop(run_id, None)

    async def stop(self) -> None:
        if not engine.deactivate(self):
            return
        if self._recovery_poller is not None:
            self._recovery_poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery_poller
        await asyncio.to_thread(DBOS.destroy)
        await self.writer.close()

    # Starting runs, and operator actions on them.
    async def start_run(
        self,
        flow_name: str,
        flow_input: FlowInput,
        *,
        run_id: str | None = None,
        traceparent: str = "",
        request_hash: str | None = None,
    ) -> str:
        flow = self.flow(flow_name)
        run_id = run_id or str(uuid.uuid4())
        meta = {"traceparent": traceparent, "request_hash": request_hash, "created_at": now().isoformat()}
        with SetWorkflowID(run_id):
            handle = await DBOS.start_workflow_async(
                charter_flow_run, flow.name, msgspec.to_builtins(flow_input), 0, {}, meta
            )
        self.starting(run_id, handle)
        return run_id

    def starting(self, run_id: str, handle: object) -> None:
        """Note a run that DBOS has just started executing here (not one it found started or
        finished before): its waiters need not look for it in the index."""
        if isinstance(handle, WorkflowHandleAsyncTask) and run_id not in self._running:
            self._starting.add(run_id)

    async def replay(self, run_id: str, from_step: str) -> str:
        return await actions.replay(self, run_id, from_step)

    async def retry(self, run_id: str) -> None:
        await actions.retry(self, run_id)

    async def cancel(self, run_id: str) -> None:
        await actions.cancel(self, run_id)

    async def wait(self, run_id: str, timeout: float) -> RunRecord | None:
        """The run's record once it has finished or parked; when `timeout` passes first, the record
        as it stands (waiting on past `timeout` only for the run to be indexed at all).

        A run executing in this process wakes its waiters when it settles, with the record it
        wrote; one that another replica executes is polled for in the index."""
        deadline = time.monotonic() + timeout
        indexed_deadline = deadline + _INDEXED_WITHIN_SECONDS
        waiters = self._waiters.setdefault(run_id, _Waiters())
        waiters.count += 1
        try:
            while True:
                waiters.event.clear()
                if waiters.record is not None:
                    return waiters.record
                live = self._running.get(run_id)
                here = live is not None or run_id in self._starting
                if live is not None:
                    record: RunRecord | None = _copy(live)
                elif here:
                    record = None
                else:
                    record = await self.index.get(run_id)
                if record is not None and (record.state in FINISHED or record.state is RunState.FAILED):
                    return record
                now_ = time.monotonic()
                if (record is not None and now_ >= deadline) or now_ >= indexed_deadline:
                    if live is not None:  # answered as it stands: where to poll must exist
                        await self.writer.write_now()
                    return record
                left = (deadline if record is not None else indexed_deadline) - now_
                # A run executing here says when it begins and when it settles; elsewhere, poll.
                poll = left if here else min(left, _POLL_SECONDS)
                # `timeout`, not `wait_for`: no task of its own per wait (twice a run, measured ~1% of CPU).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(poll):
                        await waiters.event.wait()
        finally:
            waiters.count -= 1
            if waiters.count == 0 and self._waiters.get(run_id) is waiters:
                del self._waiters[run_id]

    def current(self, run_id: str) -> RunRecord | None:
        """The run as it stands now if it executes in this process (fresher than the index, which
        is written behind); None otherwise."""
        live = self._running.get(run_id)
        return _copy(live) if live is not None else None

    # Called by the workflow of a run executing here.
    def running(self, record: RunRecord) -> None:
        self._running[record.id] = record
        self._starting.discard(record.id)
        self._mark_parked(record.id, False)
        waiters = self._waiters.get(record.id)
        if waiters is not None:
            waiters.event.set()

    def settled(self, record: RunRecord) -> None:
        """The run finished or parked, and its index record says so."""
        self._running.pop(record.id, None)
        self._mark_parked(record.id, record.state is RunState.FAILED)
        waiters = self._waiters.pop(record.id, None)
        if waiters is not None:
            waiters.record = _copy(record)
            waiters.event.set()

    def stopped(self, run_id: str) -> None:
        """The run's workflow is no longer executing here (it ended, or was stopped)."""
        self._running.pop(run_id, None)
        self._starting.discard(run_id)
        self.completed_attempts.pop(run_id, None)
        self._mark_parked(run_id, False)

    def _mark_parked(self, run_id: str, parked: bool) -> None:
        """Whether a run executing here waits for an operator; the recovery limit follows."""
        if parked != (run_id in self._parked):
            (self._parked.add if parked else self._parked.discard)(run_id)
            self._limit_recovery()

    def flow(self, name: str) -> Flow:
        flow = self.flows.get(name)
        if flow is None:
            raise UnknownFlow(name)
        return flow


def recovery_queue() -> Queue:
    """DBOS's internal queue, on which DBOS puts the runs it recovers (DBOS 3.4 gives its limits no
    public setter; tests/gateway/test_flows_recovery.py fails if that changes)."""
    return _get_or_create_dbos_registry().get_internal_queue()


def _journal_ahead(system_database_url: str) -> None:
    """Put DBOS's SQLite file in WAL mode (a setting the file keeps) before DBOS opens it.

    DBOS leaves SQLite in its default rollback-journal mode, where each of a step's transactions
    syncs the journal and the database file; with a write-ahead log a commit syncs the log once
    (DBOS's connections keep `synchronous=FULL`, so a committed step survives a power loss as before).
    """
    url = make_url(system_database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    with contextlib.closing(sqlite3.connect(url.database, timeout=30)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def _copy(record: RunRecord) -> RunRecord:
    return msgspec.json.decode(msgspec.json.encode(record), type=RunRecord)
