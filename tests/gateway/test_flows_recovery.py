"""Runs left pending by a dead process are recovered by the processes that start after it, each
taking its share (on real PostgreSQL, in processes of their own: DBOS is one per process)."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from dbos._utils import INTERNAL_QUEUE_NAME

from gateway.flows import Flow, FlowInput, RetryPolicy, Step, StepContext, step_check
from gateway.flows.runner import recovery_queue
from gateway.flows.runs import RunState
from gateway.flows.system_database import SystemDatabaseSettings
from tests.conftest import PG_ADMIN_DSN
from tests.gateway.flow_runners import postgres_url, running

HOST = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
RUNS = 10
AT_ONCE = 2  # recovered runs each process executes at once


async def wait_for_marker(context: StepContext) -> dict:
    marker = Path(context.input.body["marker"])
    while not marker.exists():
        await asyncio.sleep(0.05)
    return {"step": context.step}


ONCE = RetryPolicy(attempts=1, timeout_seconds=None)
STEPS = (Step("wait", wait_for_marker, retry=ONCE), Step("after", wait_for_marker))
FLOW = Flow(name="held", owner="platform", steps=STEPS)


def test_the_dbos_internals_recovery_relies_on_are_there() -> None:
    # The internal queue's limit and DBOS's startup recovery are DBOS internals (see runner and
    # startup_recovery): an upgrade must fail here until they are looked at again.
    assert importlib.metadata.version("dbos") == step_check.DBOS_VERSION
    queue = recovery_queue()
    assert queue.name == INTERNAL_QUEUE_NAME and hasattr(queue, "_worker_concurrency")
    assert isinstance(queue._polling_interval_sec, float)


async def test_the_internal_queue_is_polled_often_from_launch_and_at_dbos_pace_idle(tmp_path: Path) -> None:
    # At DBOS's pace (a second) recovery stalled between polls and began a second after launch;
    # a process with nothing to recover must not keep polling any faster than DBOS would.
    dbos_pace = recovery_queue()._polling_interval_sec
    async with running({"held": FLOW}, f"sqlite+aiosqlite:///{tmp_path}/c.db"):
        assert recovery_queue()._polling_interval_sec < dbos_pace
        for _ in range(600):
            if recovery_queue()._polling_interval_sec == dbos_pace:
                break
            await asyncio.sleep(0.05)
        assert recovery_queue()._polling_interval_sec == dbos_pace
    assert recovery_queue()._polling_interval_sec == dbos_pace


async def boom(context: StepContext) -> dict:
    raise RuntimeError("the system is down")


async def test_runs_parked_here_widen_the_limit_on_recovered_runs(tmp_path: Path) -> None:
    # A parked run waits for an operator, maybe for days: were it recovered, it would hold a place
    # under the limit all that time, and enough of them would stop this process recovering any run.
    failing = Flow(name="failing", owner="platform", steps=(Step("boom", boom, retry=ONCE),))
    settings = SystemDatabaseSettings(recovery_concurrency=AT_ONCE)
    async with running({"failing": failing}, f"sqlite+aiosqlite:///{tmp_path}/c.db", settings) as (runner, _):
        assert recovery_queue()._worker_concurrency == AT_ONCE
        run_id = await runner.start_run("failing", FlowInput())
        record = await runner.wait(run_id, 30)
        assert record is not None and record.state is RunState.FAILED
        assert recovery_queue()._worker_concurrency == AT_ONCE + 1
        await runner.cancel(run_id)
        for _ in range(600):  # the parked run wakes to the operator's message, and ends
            record = await runner.wait(run_id, 30)
            if record is None or record.state is not RunState.FAILED:
                break
            await asyncio.sleep(0.05)
        assert record is not None and record.state is RunState.CANCELLED
        assert recovery_queue()._worker_concurrency == AT_ONCE


async def leave_pending(database: str, marker: str) -> None:
    """The process that dies: RUNS runs held at their first step, then a hard exit."""
    async with running({"held": FLOW}, await postgres_url(database)) as (runner, _):
        for n in range(RUNS):
            await runner.start_run("held", FlowInput(body={"marker": marker, "n": n}))
        while await executing(database, "local") < RUNS:
            await asyncio.sleep(0.05)
        os._exit(9)


async def recover(database: str, executor: str) -> None:
    """A process started after it: runs until every run has succeeded."""
    settings = SystemDatabaseSettings(recovery_concurrency=AT_ONCE)
    url = f"postgresql+asyncpg://postgres@{HOST}/{database}"
    async with running({"held": FLOW}, url, settings, executor_id=executor):
        while await succeeded(database) < RUNS:
            await asyncio.sleep(0.1)


async def query(database: str, sql: str, *args: object) -> int:
    connection = await asyncpg.connect(f"postgresql://postgres@{HOST}/{database}")
    try:
        return int(await connection.fetchval(sql, *args) or 0)
    finally:
        await connection.close()


async def executing(database: str, executor: str) -> int:
    return await query(
        database,
        "SELECT count(*) FROM dbos.workflow_status WHERE status = 'PENDING' AND executor_id = $1",
        executor,
    )


async def succeeded(database: str) -> int:
    return await query(database, "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'")


def until(condition, what: str, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not asyncio.run(condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.postgres
def test_two_processes_started_after_a_crash_share_its_pending_runs(
    tmp_path: Path, postgres_database: str
) -> None:
    marker = tmp_path / "release"
    command = [sys.executable, "-m", "tests.gateway.test_flows_recovery", postgres_database]
    died = subprocess.run([*command, "leave", str(marker)], check=False)
    assert died.returncode == 9
    processes = []

    async def left_enqueued(count: int) -> bool:
        sql = "SELECT count(*) FROM dbos.workflow_status WHERE status = 'ENQUEUED'"
        return await query(postgres_database, sql) == count

    try:
        # The dead process's executor id recovers its runs as it launches, and takes its share.
        processes.append(subprocess.Popen([*command, "recover", "local"]))
        until(lambda: left_enqueued(RUNS - AT_ONCE), "the first process to take its share of the runs")
        # One started later finds runs left for it on the queue (the first took only its share).
        processes.append(subprocess.Popen([*command, "recover", "second"]))
        until(lambda: executing(postgres_database, "second"), "the second process to take runs")
        marker.touch()
        for process in processes:
            assert process.wait(timeout=120) == 0
    finally:
        for process in processes:
            process.kill()

    async def finished_by(executor: str) -> int:
        sql = "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND executor_id = $1"
        return await query(postgres_database, sql, executor)

    first, second = asyncio.run(finished_by("local")), asyncio.run(finished_by("second"))
    assert first + second == RUNS and first >= AT_ONCE and second >= AT_ONCE


if __name__ == "__main__":
    name, mode, argument = sys.argv[1:4]
    if mode == "leave":
        asyncio.run(leave_pending(name, argument))
    else:
        asyncio.run(recover(name, argument))
