"""`charter serve --workers N`: worker processes on one port, each a replica with its own flow
executor slot; one killed with SIGKILL mid-run is started again in its slot, which resumes its runs at
once. Refused where workers would run wrongly."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests import acme_flows
from tests.gateway.test_flows import FLOW_CLIENT, Erp
from tests.gateway.test_flows_restart import publish_onboarding, token, until
from tests.gateway.test_flows_takeover import query, start_run
from tests.loopback import serving
from tests.registry.nats_support import SHARED_NATS, delete_stream, postgres_url, replica_env, unique_stream
from tests.registry.support import ADMIN, CLIENTS, charter_process, free_port
from tests.registry.test_cli import charter

RUNS = 4


def test_workers_are_refused_on_sqlite_without_nats_or_with_one_executor_id(tmp_path: Path) -> None:
    sqlite = f"sqlite+aiosqlite:///{tmp_path}/charter.db"
    postgres = {"CHARTER_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:9/none"}
    with_nats = {**postgres, "CHARTER_NATS_URL": SHARED_NATS}
    for env, message in (
        ({"CHARTER_DATABASE_URL": sqlite}, "--workers needs PostgreSQL"),
        (postgres, "--workers needs CHARTER_NATS_URL"),
        ({**with_nats, "CHARTER_FLOWS_EXECUTOR_ID": "a"}, "cannot share CHARTER_FLOWS_EXECUTOR_ID"),
    ):
        port = str(free_port())
        result = charter("serve", "--port", port, "--workers", "2", url="http://127.0.0.1:9", **env)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def executors(database: str) -> list[str]:
    rows = query(database, "SELECT string_agg(id, ' ' ORDER BY id) FROM flow_executors WHERE beats > 0")
    return str(rows).split() if rows else []


def executing(database: str) -> dict[str, str]:
    """The executor of each flow run, by run id."""
    rows = query(
        database,
        "SELECT string_agg(workflow_uuid || '=' || executor_id, ' ') FROM dbos.workflow_status"
        " WHERE name = 'charter_flow_run'",
    )
    return dict(item.split("=", 1) for item in str(rows).split()) if rows else {}


def worker_pid(database: str, executor: str) -> int | None:
    """The process holding `executor`'s slot (its lock connection is named after both)."""
    name = query(
        database,
        "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE $1",
        f"charter-executor {executor} pid %",
    )
    return int(str(name).rsplit(" ", 1)[1]) if name else None


@pytest.mark.postgres
def test_two_workers_each_run_flows_and_a_killed_one_resumes_its_runs_in_its_slot_at_once(
    tmp_path: Path, postgres_database: str
) -> None:
    database = postgres_url(postgres_database)
    stream, prefix = unique_stream()
    env = replica_env(database, SHARED_NATS, stream, prefix, str(tmp_path / "signing.pem"))
    site = str(acme_flows.install(tmp_path / "site"))
    erp = Erp()
    erp.held.add("POST /engagements")
    try:
        with (
            serving(erp) as erp_url,
            charter_process(
                tmp_path,
                python_path=site,
                workers="2",
                clients=json.dumps([*CLIENTS, FLOW_CLIENT]),
                flows_heartbeat_seconds="1",
                # No survivor takes a dead worker's runs over in this test: only its slot resumes them.
                flows_lease_seconds="3600",
                **{**env, "egress_allow": "127.0.0.0/8"},
            ) as (url, process),
        ):
            until(lambda: len(executors(database)) == 2, "both workers to beat as executors", 60)
            publish_onboarding(url, token(url, *ADMIN), erp_url)
            for n in range(RUNS):
                start_run(url, f"opp-{n}")
            until(lambda: erp.calls["POST /engagements"] == RUNS, "every run's third step to be in flight")
            owners = executing(database)
            assert len(owners) == RUNS and set(owners.values()) <= set(executors(database))
            victim = next(iter(owners.values()))
            slots = executors(database)
            killed_pid = worker_pid(database, victim)
            assert killed_pid is not None
            os.kill(killed_pid, signal.SIGKILL)
            erp.released.set()

            def all_succeeded() -> bool:
                admin = token(url, *ADMIN)
                page = httpx.get(f"{url}/api/v1/flows/runs", params={"state": "succeeded"}, headers=admin)
                return page.status_code == 200 and page.json()["total"] == RUNS

            until(all_succeeded, "every run to succeed, the killed worker's resumed in its slot", 120)
            assert worker_pid(database, victim) not in (None, killed_pid)
            assert process.poll() is None  # the server outlives one of its workers
            assert executors(database) == slots  # the restarted worker is no new executor
    finally:
        asyncio.run(delete_stream(SHARED_NATS, stream))
    # Each run's first two steps ran once; a step in flight on the killed worker ran again.
    assert erp.calls["POST /clients"] == RUNS and erp.calls["POST /projects"] == RUNS
    killed = sum(1 for owner in owners.values() if owner == victim)
    assert erp.calls["POST /engagements"] == RUNS + killed
