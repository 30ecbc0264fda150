"""Two real `charter serve` replicas sharing PostgreSQL: when one is killed with SIGKILL in the
middle of a run, the survivor takes the run over once the dead replica's lease runs out; a live
replica's runs stay with it."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from cryptography.fernet import Fernet
from dbos import DBOS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.db.engine import create_engine, migrate, session_factory
from registry.flow_replicas import ExecutorLeases, ExecutorSlot
from tests import acme_flows
from tests.conftest import PG_ADMIN_DSN, reset_postgres
from tests.gateway.test_flows import FLOW_CLIENT, Erp
from tests.gateway.test_flows_restart import publish_onboarding, token, until
from tests.loopback import serving
from tests.registry.support import ADMIN, CLIENTS, LOOPBACK, charter_process

HEARTBEAT_SECONDS = 1
LEASE_SECONDS = 3


def test_the_recovery_entry_point_of_dbos_is_still_there() -> None:
    # FlowRunner.recover_executor relies on this private DBOS method (no public one recovers another
    # executor's runs); a DBOS upgrade that renames or reshapes it must fail here first.
    assert list(inspect.signature(DBOS._recover_pending_workflows).parameters) == ["executor_ids"]


@pytest.mark.postgres
def test_live_processes_hold_distinct_executor_slots_and_a_freed_slot_is_taken_again(database: str) -> None:
    async def slots() -> list[str | None]:
        engines = [create_engine(database) for _ in range(3)]
        slots = [ExecutorSlot(engines[0], "host"), ExecutorSlot(engines[1], "host")]
        try:
            taken = [await slots[0].take(), await slots[1].take()]
            await slots[0].release()  # the process holding slot 0 died: its session ended
            slots += [ExecutorSlot(engines[2], "host"), ExecutorSlot(engines[0], "other")]
            taken += [await slots[2].take(), await slots[3].take()]
            return taken
        finally:
            for slot in slots:
                await slot.release()
            for engine in engines:
                await engine.dispose()

    assert asyncio.run(slots()) == ["host-0", "host-1", "host-0", "other-0"]


@pytest.mark.postgres
def test_a_process_whose_slot_lock_was_lost_takes_its_slot_again_before_a_newcomer(database: str) -> None:
    async def slots() -> list[str]:
        engine = create_engine(database)
        holder, newcomer = ExecutorSlot(engine, "host"), ExecutorSlot(engine, "host")
        try:
            taken = [await holder.take()]
            # The session holding the lock ends (a database restart ends them all) while its process lives.
            admin = await asyncpg.connect(database.replace("+asyncpg", ""))
            try:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1",
                    "charter-executor host-0 pid %",
                )
            finally:
                await admin.close()
            await holder.hold()  # its next heartbeat
            taken.append(await newcomer.take())
            return taken
        finally:
            await holder.release()
            await newcomer.release()
            await engine.dispose()

    assert asyncio.run(slots()) == ["host-0", "host-1"]


@contextmanager
def replicas(tmp_path: Path, database: str, erp_url: str) -> Iterator[tuple[tuple[str, object], str]]:
    """Replica A (set up, with its process) and replica B (its URL), sharing `database` and keys."""
    site = str(acme_flows.install(tmp_path / "site"))
    shared = {
        "database_url": database,
        "secrets_key": Fernet.generate_key().decode(),
        "signing_key_file": str(tmp_path / "signing.pem"),
        "egress_allow": LOOPBACK,
        "access_log": "0",
        "clients": json.dumps([*CLIENTS, FLOW_CLIENT]),
        "flows_heartbeat_seconds": str(HEARTBEAT_SECONDS),
        "flows_lease_seconds": str(LEASE_SECONDS),
    }
    with ExitStack() as stack:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        url_a, process_a = stack.enter_context(
            charter_process(tmp_path / "a", python_path=site, flows_executor_id="replica-a", **shared)
        )
        admin = token(url_a, *ADMIN)
        publish_onboarding(url_a, admin, erp_url)
        url_b, _ = stack.enter_context(
            charter_process(tmp_path / "b", python_path=site, flows_executor_id="replica-b", **shared)
        )
        yield (url_a, process_a), url_b


@pytest.fixture
def database(postgres_database: str) -> str:
    asyncio.run(reset_postgres(postgres_database))
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{postgres_database}"


def start_run(url: str, opportunity: str) -> None:
    def started() -> bool:
        response = httpx.post(
            f"{url}/gw/onboarding/v1/opportunities/{opportunity}/won",
            json={"client": "ACME"},
            headers={"Idempotency-Key": opportunity},
        )
        return response.status_code == 202

    until(started, "the gateway to route to the flow")


def run_state(url: str, opportunity: str) -> str | None:
    admin = token(url, *ADMIN)
    runs = httpx.get(f"{url}/api/v1/flows/runs", params={"key": opportunity}, headers=admin).json()
    return runs["items"][0]["state"] if runs["items"] else None


def query(database: str, sql: str, *args: object) -> object:
    async def read() -> object:
        connection = await asyncpg.connect(database.replace("+asyncpg", ""))
        try:
            return await connection.fetchval(sql, *args)
        finally:
            await connection.close()

    return asyncio.run(read())


def beats(database: str, executor: str) -> int:
    return int(query(database, "SELECT beats FROM flow_executors WHERE id = $1", executor) or 0)  # type: ignore[call-overload]


def executor_of(database: str, url: str, opportunity: str) -> object:
    admin = token(url, *ADMIN)
    runs = httpx.get(f"{url}/api/v1/flows/runs", params={"key": opportunity}, headers=admin).json()
    run_id = runs["items"][0]["id"]
    return query(database, "SELECT executor_id FROM dbos.workflow_status WHERE workflow_uuid = $1", run_id)


@pytest.mark.postgres
def test_a_surviving_replica_takes_over_the_run_of_a_killed_one(tmp_path: Path, database: str) -> None:
    erp = Erp()
    erp.held.add("POST /engagements")
    with serving(erp) as erp_url, replicas(tmp_path, database, erp_url) as ((url_a, process_a), url_b):
        start_run(url_a, "opp-1")
        until(lambda: erp.calls["POST /engagements"] == 1, "the third step to be in flight on A")
        process_a.kill()  # type: ignore[attr-defined]
        process_a.wait(timeout=10)  # type: ignore[attr-defined]
        erp.released.set()
        until(lambda: run_state(url_b, "opp-1") == "succeeded", "B to take the run over and finish it", 30)
        assert executor_of(database, url_b, "opp-1") == "replica-b"
    assert erp.calls["POST /clients"] == 1 and erp.calls["POST /projects"] == 1
    assert erp.calls["POST /engagements"] == 2
    in_flight, again = (h["idempotency-key"] for h in erp.headers[2:4])
    assert in_flight == again


@pytest.mark.postgres
def test_a_live_replicas_run_is_not_taken_over(tmp_path: Path, database: str) -> None:
    erp = Erp()
    erp.held.add("POST /engagements")
    with serving(erp) as erp_url, replicas(tmp_path, database, erp_url) as ((url_a, _), url_b):
        start_run(url_a, "opp-2")
        until(lambda: erp.calls["POST /engagements"] == 1, "the third step to be in flight on A")
        # B watches A for more than a lease (counted in B's own heartbeats) while A's step is held.
        watched_from = beats(database, "replica-b")
        rounds = LEASE_SECONDS // HEARTBEAT_SECONDS + 2

        def watched() -> bool:
            return beats(database, "replica-b") >= watched_from + rounds

        until(watched, "B to watch A, beating undisturbed", 30)
        assert executor_of(database, url_b, "opp-2") == "replica-a"
        erp.released.set()
        until(lambda: run_state(url_b, "opp-2") == "succeeded", "A to finish its run")
        assert executor_of(database, url_b, "opp-2") == "replica-a"


LEASE = 1.0  # seconds of a clock the test turns: a loaded machine cannot stretch a round past a lease


class TurnedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> TurnedClock:
    return TurnedClock()


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await migrate(engine)
    yield session_factory(engine)
    await engine.dispose()


async def watch(clock: TurnedClock, *watchers: ExecutorLeases, rounds: int) -> list[str]:
    """What the watchers claim, beating and looking together every quarter lease for `rounds` rounds."""
    claimed: list[str] = []
    for _ in range(rounds):
        for watcher in watchers:
            await watcher.beat()
        for claims in await asyncio.gather(*(watcher.claim_dead() for watcher in watchers)):
            claimed.extend(claims)
        clock.now += LEASE / 4
    return claimed


async def test_a_still_heartbeat_is_claimed_by_one_survivor_only(sessionmaker, clock) -> None:
    dead, first, second = (ExecutorLeases(sessionmaker, n, lease_seconds=LEASE, clock=clock) for n in "abc")
    await dead.beat()
    assert await watch(clock, first, second, rounds=6) == ["a"]  # 1.5 leases: claimed once, then not again


async def test_a_beating_replica_is_never_claimed(sessionmaker, clock) -> None:
    live, watcher = (ExecutorLeases(sessionmaker, n, lease_seconds=LEASE, clock=clock) for n in "ab")
    for _ in range(8):
        await live.beat()
        assert await watch(clock, watcher, rounds=1) == []


async def test_a_watcher_that_was_paused_watches_a_whole_lease_again(sessionmaker, clock) -> None:
    dead, watcher = (ExecutorLeases(sessionmaker, n, lease_seconds=LEASE, clock=clock) for n in "ab")
    await dead.beat()
    assert await watcher.claim_dead() == []
    clock.now += LEASE  # the watcher did not look meanwhile: the stillness it missed proves nothing
    assert await watcher.claim_dead() == []
    assert await watch(clock, watcher, rounds=6) == ["a"]
