"""The settings of DBOS's connections to its system database: no ping before each transaction,
and on PostgreSQL `synchronous_commit` as configured for DBOS's connections only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from dbos._dbos import _get_dbos_instance
from sqlalchemy import text

from gateway.flows import Flow, FlowInput, Step, StepContext
from gateway.flows.runs import RunState
from gateway.flows.system_database import SystemDatabaseSettings, dbos_engine_config
from registry.app import create_app
from registry.settings import Settings
from tests.gateway.flow_runners import postgres_url, running
from tests.registry.support import make_settings


async def echo(context: StepContext) -> dict:
    return {"step": context.step}


FLOW = Flow(name="echo", owner="platform", steps=(Step("one", echo), Step("two", echo)))


def test_postgresql_connections_are_not_pinged_and_commit_as_configured() -> None:
    url = "postgresql://postgres@127.0.0.1/charter"
    durable = dbos_engine_config(url, SystemDatabaseSettings())
    assert durable == {
        "max_executor_threads": 16,
        "db_engine_kwargs": {"pool_pre_ping": False, "connect_args": {"application_name": "dbos_transact"}},
    }
    relaxed = dbos_engine_config(url, SystemDatabaseSettings(synchronous_commit=False, pool_size=8))
    assert relaxed["db_engine_kwargs"]["connect_args"]["options"] == "-c synchronous_commit=off"
    assert relaxed["sys_db_pool_size"] == 8


def test_sqlite_keeps_the_settings_of_dbos() -> None:
    relaxed = SystemDatabaseSettings(synchronous_commit=False, executor_threads=None)
    assert dbos_engine_config("sqlite:///runs.sqlite", relaxed) == {}


def test_a_server_commits_checkpoints_without_waiting_for_the_flush_unless_told() -> None:
    assert Settings.from_env(environ={}).flows_synchronous_commit is False
    on = Settings.from_env(environ={"CHARTER_FLOWS_SYNCHRONOUS_COMMIT": "on"})
    assert on.flows_synchronous_commit is True


async def session_setting(
    runner_settings: SystemDatabaseSettings, database_url: str
) -> tuple[str, str, bool]:
    """synchronous_commit of DBOS's connections and of the registry's, and whether DBOS pings,
    with a run through the flow in between (DBOS works with these connections)."""
    async with running({"echo": FLOW}, database_url, runner_settings) as (runner, engine):
        run_id = await runner.start_run("echo", FlowInput(body={}))
        record = await runner.wait(run_id, 30)
        assert record is not None and record.state is RunState.SUCCEEDED
        dbos_engine = _get_dbos_instance()._sys_db.engine

        def dbos_setting() -> str:
            with dbos_engine.connect() as connection:
                return str(connection.execute(text("SHOW synchronous_commit")).scalar())

        dbos_value = await asyncio.to_thread(dbos_setting)
        async with engine.connect() as connection:
            registry_value = str((await connection.execute(text("SHOW synchronous_commit"))).scalar())
        return dbos_value, registry_value, dbos_engine.pool._pre_ping


@pytest.mark.postgres
async def test_only_dbos_connections_commit_without_waiting_for_the_flush(postgres_database: str) -> None:
    url = await postgres_url(postgres_database)
    relaxed = await session_setting(SystemDatabaseSettings(synchronous_commit=False), url)
    assert relaxed == ("off", "on", False)
    durable = await session_setting(SystemDatabaseSettings(synchronous_commit=True), url)
    assert durable == ("on", "on", False)


def test_the_server_hands_its_setting_to_the_flow_runner(tmp_path: Path) -> None:
    for synchronous in (False, True):
        settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/c.db", flows_synchronous_commit=synchronous)
        runner = create_app(settings, flows={"echo": FLOW}).state.flow_runner
        assert runner.system_database == SystemDatabaseSettings(synchronous_commit=synchronous)
