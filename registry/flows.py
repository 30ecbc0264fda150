"""The registry's side of flows: the run index in its database (status and business events leave
through its outbox in the same transactions), and operator actions (retry, replay, cancel) with
their authorization and audit."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import Executable, delete, func, make_url, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from gateway.app import AdapterFactory, Gateway
from gateway.flows.adapter import FlowAdapter
from gateway.flows.client import GatewayClient
from gateway.flows.declaration import Flow
from gateway.flows.metrics import FlowMetrics
from gateway.flows.runner import EventCheck, FlowRunner, RunConflict, UnknownRun, step_idempotency_key
from gateway.flows.runs import FINISHED, RunQuery, RunRecord, RunState, RunWrite
from gateway.flows.system_database import SystemDatabaseSettings
from gateway.source import AdapterBinding
from gateway.tracing import NO_TRACING, Tracing
from policies.auth import ClientCredentialsIssuer, Principal
from registry import audit
from registry.access import ADMIN, WRITE, require_owner, require_scope, team_names
from registry.catalog import get_team
from registry.db import engine as db_engine
from registry.db.engine import begin_write
from registry.db.models import FlowRun, FlowRunKey, OutboxEvent, utcnow
from registry.errors import Forbidden, IllegalTransition, InvalidRequest, NotFound

log = logging.getLogger("charter.flows")
STATUS_TOPIC_PREFIX = "flow.run."


class _IndexStatements(NamedTuple):
    runs: Executable
    keys: Executable
    outbox: Executable


class SqlRunIndex:
    """Runs in the registry's own database, so they are searched with the rest of the catalog."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, event_check: EventCheck | None = None
    ) -> None:
        self._sessionmaker = sessionmaker
        self._event_check = event_check
        self._keys_written: dict[str, dict[str, str]] = {}  # by run: the business keys last written
        self._built: dict[str, _IndexStatements] = {}  # by dialect
        # The index's writes are one batch at a time (see gateway.flows.progress), on a connection of
        # their own, kept: a pooled one was pinged on every checkout (a round trip and a fifth of the
        # write's CPU) for nothing but the first write after a database restart, which fails, drops
        # the connection and is retried by the writer on a fresh (pinged) one.
        self._connection: AsyncConnection | None = None
        self._writing = asyncio.Lock()

    async def save_many(self, writes: Sequence[RunWrite]) -> None:
        """Upsert the runs in one transaction, with their events in the outbox. Measured: one
        statement for many runs costs about what one ORM load-and-update of one run did; the
        statements are built once (building an upsert cost as much CPU as running it), and a run's
        business keys are written only when they change (keyless runs write none)."""
        if not writes:
            return
        rows: dict[str, dict[str, Any]] = {}
        for write in writes:  # a run written twice in one batch keeps its last state
            run = write.record
            rows[run.id] = {
                "id": run.id,
                "flow": run.flow,
                "state": run.state.value,
                "created_at": run.created_at,
                "updated_at": run.updated_at,
                "record": msgspec.to_builtins(run),
            }
        changed_keys: dict[str, dict[str, str]] = {}
        gone: dict[str, list[str]] = {}  # by run: names of keys it had and no longer has
        for run_id, row in rows.items():
            keys = {name[:100]: value[:500] for name, value in row["record"]["keys"].items()}
            before = self._keys_written.get(run_id)
            # Unknown before (a run new here, or one recovered from another process): its keys
            # only ever grow from those of its input and recorded outputs, so an upsert suffices.
            if keys != (before if before is not None else {}):
                changed_keys[run_id] = keys
                if before and (names := [name for name in before if name not in keys]):
                    gone[run_id] = names
        events = [
            {"topic": topic, "payload": msgspec.to_builtins(payload)}
            for write in writes
            for topic, payload in write.events
            if self._sends(topic, payload)
        ]
        async with self._writing:
            connection = self._connection
            if connection is None:
                bind = self._sessionmaker.kw["bind"]
                connection = self._connection = await bind.connect()
                await connection.execution_options(**db_engine.WRITE)
            try:
                await self._write(connection, rows, changed_keys, gone, events)
            except BaseException:
                # Not trusted after a failure (or a cancel mid-statement, which a close would wait on).
                self._connection = None
                with contextlib.suppress(Exception):
                    await connection.invalidate()
                raise
        for run_id, keys in changed_keys.items():
            self._keys_written[run_id] = keys
        for write in writes:
            if write.record.state in FINISHED:  # not written again, but by a recovery
                self._keys_written.pop(write.record.id, None)

    async def close(self) -> None:
        async with self._writing:
            connection, self._connection = self._connection, None
            if connection is not None:
                await connection.close()

    async def _write(
        self,
        connection: AsyncConnection,
        rows: dict[str, dict[str, Any]],
        changed_keys: dict[str, dict[str, str]],
        gone: dict[str, list[str]],
        events: list[dict[str, Any]],
    ) -> None:
        # A session (not the bare connection) for its commit, which the outbox relay listens for.
        async with self._sessionmaker(bind=connection) as session:
            statements = self._statements(connection.dialect.name)
            # One statement compiled once and cached, sent with many rows (executemany).
            await session.execute(statements.runs, list(rows.values()))
            for run_id, names in gone.items():
                await session.execute(
                    delete(FlowRunKey).where(FlowRunKey.run_id == run_id, FlowRunKey.name.in_(names))
                )
            key_rows = [
                {"run_id": run_id, "name": name, "value": value}
                for run_id, keys in changed_keys.items()
                for name, value in keys.items()
            ]
            if key_rows:
                await session.execute(statements.keys, key_rows)
            if events:
                await session.execute(statements.outbox, events)
            await session.commit()

    def _statements(self, dialect: str) -> _IndexStatements:
        statements = self._built.get(dialect)
        if statements is None:
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            runs = insert(FlowRun)
            runs = runs.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "state": runs.excluded.state,
                    "updated_at": runs.excluded.updated_at,
                    "record": runs.excluded.record,
                },
            )
            keys = insert(FlowRunKey)
            keys = keys.on_conflict_do_update(
                index_elements=["run_id", "name"], set_={"value": keys.excluded.value}
            )
            # Core, not the ORM's unit of work: the outbox rows are only inserted (the relay wakes
            # on the session's commit all the same).
            statements = self._built[dialect] = _IndexStatements(runs, keys, insert(OutboxEvent))
        return statements

    def _sends(self, topic: str, payload: dict[str, Any]) -> bool:
        """Whether an event may leave. Business events were checked when their step completed (a
        breaking one failed it); a status event cannot fail the run it reports on, so one that breaks
        a contract registered for its topic is held back and logged, and the run index stays the
        record of the run's state."""
        if self._event_check is None or not topic.startswith(STATUS_TOPIC_PREFIX):
            return True
        violations = self._event_check(topic, payload)
        if violations:
            run = payload.get("run")
            log.warning("status event %s of run %s held back: %s", topic, run, "; ".join(violations))
        return not violations

    async def get(self, run_id: str) -> RunRecord | None:
        async with self._sessionmaker() as session:
            record = await session.scalar(select(FlowRun.record).where(FlowRun.id == run_id))
            return msgspec.convert(record, RunRecord) if record is not None else None

    async def search(self, query: RunQuery) -> tuple[list[RunRecord], int]:
        stmt = select(FlowRun.record)
        if query.flow:
            stmt = stmt.where(FlowRun.flow == query.flow)
        if query.state:
            stmt = stmt.where(FlowRun.state == query.state.value)
        if query.since:
            stmt = stmt.where(FlowRun.created_at >= query.since)
        if query.flows is not None:
            stmt = stmt.where(FlowRun.flow.in_(query.flows))
        if query.key or query.key_name:
            keyed = select(FlowRunKey.run_id)
            if query.key:
                keyed = keyed.where(FlowRunKey.value == query.key)
            if query.key_name:
                keyed = keyed.where(FlowRunKey.name == query.key_name)
            stmt = stmt.where(FlowRun.id.in_(keyed))
        async with self._sessionmaker() as session:
            total = await session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            rows = await session.scalars(
                stmt.order_by(FlowRun.created_at.desc(), FlowRun.id).limit(query.limit).offset(query.offset)
            )
            return [msgspec.convert(record, RunRecord) for record in rows], total

    async def counts(self) -> dict[str, dict[str, int]]:
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(FlowRun.flow, FlowRun.state, func.count()).group_by(FlowRun.flow, FlowRun.state)
            )
            counts: dict[str, dict[str, int]] = {}
            for flow, state, count in rows:
                counts.setdefault(flow, {})[state] = count
            return counts

    async def late(self, flow: str, older_than: dt.datetime) -> int:
        async with self._sessionmaker() as session:
            stmt = select(func.count()).where(
                FlowRun.flow == flow,
                FlowRun.state.in_([state.value for state in UNFINISHED]),
                FlowRun.created_at < older_than,
            )
            return await session.scalar(stmt) or 0

    async def recent(
        self, flow: str, states: Sequence[RunState], *, older_than: dt.datetime | None = None, limit: int = 20
    ) -> list[FlowRun]:
        """The `limit` newest runs of `flow` in `states` (created before `older_than`), keys loaded:
        what the flows list names as blocked (late) or waiting for an operator (failed)."""
        stmt = select(FlowRun).where(FlowRun.flow == flow, FlowRun.state.in_([s.value for s in states]))
        if older_than is not None:
            stmt = stmt.where(FlowRun.created_at < older_than)
        async with self._sessionmaker() as session:
            rows = await session.scalars(stmt.order_by(FlowRun.created_at.desc(), FlowRun.id).limit(limit))
            return list(rows)


UNFINISHED = (RunState.RUNNING, RunState.FAILED)  # the states in which a run can be late


def is_late(run: RunRecord, flow: Flow | None, now: dt.datetime | None = None) -> bool:
    if flow is None or run.state not in UNFINISHED:
        return False
    return ((now or utcnow()) - run.created_at).total_seconds() > flow.sla_seconds


async def get_run(runner: FlowRunner, run_id: str) -> RunRecord:
    run = runner.current(run_id) or await runner.index.get(run_id)
    if run is None:
        raise NotFound(f"flow run {run_id!r} does not exist")
    return run


class RunReader:
    """Whose runs' business data (keys, input, answer, step errors and output summaries) one caller
    may see: its teams' flows' runs, the runs it started, or all (admins). The REST API and the
    console both read runs through it."""

    def __init__(self, principal: Principal | None, teams: frozenset[str]) -> None:
        self.principal = principal
        self.admin = principal is not None and ADMIN in principal.scopes
        self.teams = teams

    @classmethod
    async def of(cls, session: AsyncSession, principal: Principal | None) -> RunReader:
        teams = await team_names(session, principal) if principal is not None else frozenset()
        await session.rollback()
        return cls(principal, teams)

    def started(self, run: RunRecord) -> bool:
        principal = self.principal
        return (
            principal is not None
            and run.consumer is not None
            and ((principal.client_id or principal.subject) == run.consumer)
        )

    def owns(self, flow: Flow | None) -> bool:
        return self.admin or (flow is not None and flow.owner in self.teams)

    def sees_data(self, run: RunRecord, declared: Mapping[str, Flow]) -> bool:
        return self.owns(declared.get(run.flow)) or self.started(run)

    def searchable(self, declared: Mapping[str, Flow]) -> frozenset[str] | None:
        """The flows whose runs this caller may find by a business key value (None: all). A key value
        is business data: searching other teams' runs by it would tell who is a client."""
        return None if self.admin else frozenset(f.name for f in declared.values() if self.owns(f))

    def shown(self, run: RunRecord, declared: Mapping[str, Flow]) -> RunRecord:
        """The run as this caller sees it: without its business data unless it may see that."""
        if self.sees_data(run, declared):
            return run
        return msgspec.structs.replace(
            run,
            keys={},
            steps=[msgspec.structs.replace(step, error=None, output_summary=None) for step in run.steps],
            input={},
            outputs={},
            result=None,
        )


async def operate(
    session: AsyncSession,
    principal: Principal | None,
    runner: FlowRunner,
    run_id: str,
    action: str,
    *,
    from_step: str | None = None,
) -> str:
    """Retry, replay or cancel a run: for members of the flow's owning team, or admins. Audited."""
    run = await get_run(runner, run_id)
    flow = runner.flows.get(run.flow)
    if flow is None:
        raise IllegalTransition(f"flow {run.flow!r} is not registered in this server")
    actor = await _require_flow_owner(session, principal, flow)
    await session.rollback()
    try:
        if action == "retry":
            await runner.retry(run_id)
            subject_run = run_id
        elif action == "cancel":
            await runner.cancel(run_id)
            subject_run = run_id
        else:
            assert from_step is not None
            try:
                subject_run = await runner.replay(run_id, from_step)
            except KeyError:
                raise InvalidRequest(f"flow {flow.name} has no step {from_step!r}") from None
    except RunConflict as exc:
        raise IllegalTransition(str(exc)) from None
    except UnknownRun:
        raise NotFound(f"flow run {run_id!r} does not exist") from None
    await begin_write(session)
    audit.record(
        session,
        actor=actor.subject,
        action=f"flow.run.{action}",
        subject=f"flows/runs/{run_id}",
        before={"state": run.state.value, "failed_step": run.failed_step},
        after={"run": subject_run, "from_step": from_step} if action == "replay" else None,
    )
    await session.commit()
    return subject_run


async def _require_flow_owner(session: AsyncSession, principal: Principal | None, flow: Flow) -> Principal:
    caller = require_scope(principal, WRITE)
    if ADMIN in caller.scopes:
        return caller
    try:
        team = await get_team(session, flow.owner)
    except NotFound:
        raise Forbidden(
            f"{caller.subject} is not a member of {flow.owner}, which owns flow {flow.name}"
        ) from None
    return require_owner(caller, team)


async def watch_late_runs(runner: FlowRunner, index: SqlRunIndex, *, every_seconds: float = 30.0) -> None:
    """Keep the `late` gauge current: unfinished runs older than their flow's SLA."""
    while True:
        if runner.metrics is not None:
            now = utcnow()
            try:
                for flow in runner.flows.values():
                    late = await index.late(flow.name, now - dt.timedelta(seconds=flow.sla_seconds))
                    runner.metrics.late.labels(flow.name).set(late)
            except Exception:  # a database outage must not end the watch: the next round tries again
                log.exception("could not count late flow runs")
        await asyncio.sleep(every_seconds)


def flow_system_database(database_url: str) -> str:
    """DBOS's system database: PostgreSQL shared with the registry (its own `dbos` schema, so
    replicas share and recover runs), or a SQLite file of its own beside the registry's."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    database = url.database or ""
    if not database or database == ":memory:":
        raise ValueError("flows need a file or PostgreSQL database, not an in-memory one")
    path = Path(database)
    return f"sqlite:///{path.with_name(path.stem + '-flows.sqlite')}"


class FlowTokens:
    """Bearer tokens of flows' own clients, minted in process and reused for half their life."""

    def __init__(self, issuer: ClientCredentialsIssuer, lifetime: int) -> None:
        self._issuer = issuer
        self._reuse_seconds = lifetime / 2
        self._tokens: dict[str, tuple[str, float]] = {}

    def for_flow(self, flow: Flow) -> Callable[[], Awaitable[str | None]]:
        async def token() -> str | None:
            if flow.client_id is None:
                return None
            cached = self._tokens.get(flow.client_id)
            if cached is not None and time.monotonic() - cached[1] < self._reuse_seconds:
                return cached[0]
            minted = self._issuer.mint(flow.client_id)
            if minted is not None:
                self._tokens[flow.client_id] = (minted, time.monotonic())
            return minted

        return token


def create_runner(
    flows: Mapping[str, Flow],
    *,
    database_url: str,
    index: SqlRunIndex,
    gateway: Gateway,
    prefix: str,
    tokens: FlowTokens,
    executor_id: str = "local",
    event_check: EventCheck | None = None,
    tracing: Tracing = NO_TRACING,
    system_database: SystemDatabaseSettings | None = None,
) -> FlowRunner:
    def client(flow: Flow, run_id: str, step: str, traceparent: str) -> GatewayClient:
        return GatewayClient(
            gateway,
            prefix=prefix,
            idempotency_key=step_idempotency_key(run_id, step),
            traceparent=traceparent,
            token=tokens.for_flow(flow),
        )

    return FlowRunner(
        flows,
        index=index,
        client_factory=client,
        system_database_url=flow_system_database(database_url),
        executor_id=executor_id,
        metrics=FlowMetrics(gateway.metrics.registry),
        event_check=event_check,
        tracing=tracing,
        system_database=system_database,
    )


def flow_adapter_factory(runner: Callable[[], FlowRunner]) -> AdapterFactory:
    def build(binding: AdapterBinding, api: str) -> FlowAdapter | None:
        if binding.flow is None:
            return None
        return FlowAdapter(runner(), binding.flow, wait_seconds=binding.wait_seconds)

    return build
