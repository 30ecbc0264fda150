"""PostgreSQL stops and starts again under a running `charter serve`.

While the database is away, requests that need it answer 503 problem+json with Retry-After at once
(never a 500, never a hang); when it is back the service recovers by itself (the pool's pre-ping
replaces connections the restart broke), no publish that was acknowledged is lost, and the
background tasks (outbox relay, usage flusher, flow heartbeat) pick up again without a restart.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from prometheus_client import CollectorRegistry

from gateway.flows import Flow
from gateway.flows.declaration import SystemClient
from gateway.flows.metrics import FlowMetrics
from gateway.flows.runner import FlowRunner
from registry import flows as flow_host
from registry.db.engine import create_engine, session_factory
from tests import acme_flows
from tests.faults.deployment import (
    API,
    VERSIONS,
    admin_headers,
    create_api,
    edition,
    is_problem,
    replica_env,
    token,
    until,
)
from tests.faults.servers import PrivatePostgres
from tests.gateway.conftest import CONSUMERS
from tests.gateway.test_flows import FLOW_CLIENT, Erp
from tests.gateway.test_flows_restart import publish_onboarding
from tests.loopback import serving
from tests.registry.support import CLIENTS, LOOPBACK, charter_process

# The engine's connect timeout is 5 s; a request during an outage must end well before that adds up.
REQUEST_BOUND_SECONDS = 10.0
# A gateway route to the loopback ERP: the usage flusher counts a consumer's calls to it.
ERP_CLIENTS = "/gw/erp/v1/clients"


@dataclass
class Deployment:
    url: str
    headers: dict[str, str]
    database_url: str
    dsn: str
    postgres: PrivatePostgres
    erp: Erp


@pytest.fixture(scope="module")
def deployment(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """One replica (the acme onboarding flow over a loopback ERP, 1 s heartbeats) on a
    database of the private cluster."""
    root = tmp_path_factory.mktemp("pg-restart")
    site = str(acme_flows.install(root / "site"))
    database = private_postgres.create_database()
    workdir = root / "replica"
    workdir.mkdir()
    env = replica_env(
        private_postgres.url(database),
        workdir,
        clients=json.dumps([*CLIENTS, *CONSUMERS, FLOW_CLIENT]),
        egress_allow=LOOPBACK,
        flows_heartbeat_seconds="1",
        flows_lease_seconds="3",
    )
    erp = Erp()
    with serving(erp) as erp_url, charter_process(workdir, python_path=site, **env) as (url, _):
        headers = admin_headers(url)
        publish_onboarding(url, headers, erp_url)
        with httpx.Client(base_url=url, timeout=30) as client:
            create_api(client, headers)
        yield Deployment(
            url, headers, env["database_url"], private_postgres.dsn(database), private_postgres, erp
        )


def query(dsn: str, sql: str) -> object:
    async def run() -> object:
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetchval(sql)
        finally:
            await connection.close()

    return asyncio.run(run())


def test_requests_during_an_outage_answer_503_problem_json_then_the_service_recovers(
    deployment: Deployment,
) -> None:
    headers = deployment.headers
    with httpx.Client(base_url=deployment.url, timeout=REQUEST_BOUND_SECONDS) as client:
        deployment.postgres.stop("fast")
        try:
            answers = [
                client.get("/api/v1/teams", headers=headers),
                client.get(f"{VERSIONS}/1.0.0", headers=headers),
                client.post(VERSIONS, content=edition("1.0.1"), headers=headers),
                client.put(
                    f"/api/v1/apis/{API}/sla",
                    json={"tier": "gold", "rate_limit": {"requests": 5, "per_seconds": 60, "burst": 5}},
                    headers=headers,
                ),
            ]
            for answer in answers:
                assert is_problem(answer, 503), (answer.request.url, answer.status_code, answer.text)
                assert answer.json()["type"] == "/problems/database-unavailable"
                assert int(answer.headers["retry-after"]) >= 1
            health = client.get("/health")
            assert health.status_code == 503
        finally:
            deployment.postgres.start()

        # Connections the restart broke are found by the pool's pre-ping, not by a user's request.
        until(lambda: client.get("/health").status_code == 200, "the database answers again")
        for _ in range(5):
            assert client.get("/api/v1/teams", headers=headers).status_code == 200
        published = client.post(VERSIONS, content=edition("1.0.1"), headers=headers)
        assert published.status_code == 201, published.text


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_no_acknowledged_publish_is_lost_across_a_restart(deployment: Deployment, mode: str) -> None:
    """Publishes run in a loop while the database stops (cleanly, or as a crash) and starts; every
    one that got a 2xx is stored with its content, and none got a 500."""
    headers = deployment.headers
    minor = {"fast": 1, "immediate": 2}[mode]
    acknowledged: dict[str, bytes] = {}
    refused: list[httpx.Response] = []
    stop = threading.Event()

    def publish_in_a_loop() -> None:
        with httpx.Client(base_url=deployment.url, timeout=REQUEST_BOUND_SECONDS) as client:
            patch = 0
            while not stop.is_set():
                version = f"1.{minor}.{patch}"
                document = edition(version)
                response = client.post(VERSIONS, content=document, headers=headers)
                if response.status_code in (200, 201):
                    acknowledged[version] = document
                    patch += 1
                else:
                    refused.append(response)

    publisher = threading.Thread(target=publish_in_a_loop)
    publisher.start()
    try:
        until(lambda: len(acknowledged) >= 3, "some publishes went through")
        deployment.postgres.stop(mode)
        until(lambda: len(refused) >= 3, "publishes were refused during the outage")
        deployment.postgres.start()
        seen = len(acknowledged)
        until(lambda: len(acknowledged) >= seen + 3, "publishes went through again")
    finally:
        stop.set()
        publisher.join(timeout=60)
        if not deployment.postgres.data.joinpath("postmaster.pid").exists():
            deployment.postgres.start()

    for response in refused:
        assert is_problem(response, 503), (response.status_code, response.text)
    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        for version, document in acknowledged.items():
            stored = client.get(f"{VERSIONS}/{version}", headers=headers)
            assert stored.status_code == 200, (version, stored.text)
            assert stored.content == document


def test_background_tasks_pick_up_again_after_an_outage(deployment: Deployment) -> None:
    """The outbox relay, the usage flusher and the flow heartbeat log the outage and carry on."""
    dsn = deployment.dsn
    consumer = token(deployment.url, FLOW_CLIENT["client_id"], FLOW_CLIENT["client_secret"])
    beats_before = query(dsn, "SELECT max(beats) FROM flow_executors")
    deployment.postgres.stop("fast")
    try:
        # Long enough for each task to meet the outage at least once (heartbeat 1 s, relay on commit).
        with httpx.Client(base_url=deployment.url, timeout=REQUEST_BOUND_SECONDS) as client:
            for _ in range(3):
                assert client.post(ERP_CLIENTS, json={"name": "ACME"}, headers=consumer).status_code == 201
                client.get("/health")
                threading.Event().wait(0.7)
    finally:
        deployment.postgres.start()

    with httpx.Client(base_url=deployment.url, timeout=30) as client:
        until(lambda: client.get("/health").status_code == 200, "the database answers again")
        published = client.post(VERSIONS, content=edition("1.9.0"), headers=deployment.headers)
        assert published.status_code == 201, published.text
        for _ in range(3):
            assert client.post(ERP_CLIENTS, json={"name": "ACME"}, headers=consumer).status_code == 201

    pending = "SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL"
    until(lambda: query(dsn, pending) == 0, "the outbox relay sent every event")
    beats = "SELECT max(beats) FROM flow_executors"
    until(lambda: (query(dsn, beats) or 0) > (beats_before or 0) + 1, "the heartbeat beats again")
    calls = "SELECT coalesce(sum(calls), 0) FROM api_usage WHERE api = 'erp'"
    # The flusher stores every 5 s; counts of a flush that failed during the outage are dropped.
    until(lambda: (query(dsn, calls) or 0) >= 3, "the usage flusher stored calls", timeout=15)


def _no_system_calls(flow: Flow, run_id: str, step: str, traceparent: str) -> SystemClient:
    raise AssertionError("the late-runs watcher runs no step")


async def test_the_late_runs_watcher_survives_an_outage(deployment: Deployment) -> None:
    """The task that keeps the `late` gauge current outlives a database outage and reports again."""
    engine = create_engine(deployment.database_url)
    index = flow_host.SqlRunIndex(session_factory(engine))
    metrics = FlowMetrics(CollectorRegistry())
    runner = FlowRunner(
        {"onboarding": acme_flows.onboarding},
        index=index,
        client_factory=_no_system_calls,
        system_database_url=deployment.database_url,
        metrics=metrics,
    )
    late = metrics.late.labels("onboarding")
    watching = asyncio.create_task(flow_host.watch_late_runs(runner, index, every_seconds=0.1))
    try:
        await asyncio.to_thread(deployment.postgres.stop, "fast")
        try:
            await asyncio.sleep(0.5)
            assert not watching.done(), watching.exception()
        finally:
            await asyncio.to_thread(deployment.postgres.start)
        late.set(-1)
        for _ in range(100):
            if late._value.get() == 0:
                break
            await asyncio.sleep(0.1)
        assert late._value.get() == 0, "the watcher did not report again"
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await engine.dispose()


@pytest.mark.parametrize("step_ends", ["after the restart", "during the outage"])
def test_a_flow_run_in_flight_across_a_restart_finishes(deployment: Deployment, step_ends: str) -> None:
    """A run waits in a step's call to the ERP while PostgreSQL restarts; the step's answer comes
    back once the database is there again, or while it is still away; either way the flow engine's
    connections recover and the run records its step and finishes."""
    erp = deployment.erp
    key = f"opp-{step_ends.split()[0]}"
    erp.released.clear()
    erp.held.add("POST /engagements")
    calls = erp.calls["POST /engagements"]
    started = httpx.post(
        f"{deployment.url}/gw/onboarding/v1/opportunities/{key}/won",
        json={"client": "ACME"},
        headers={"Idempotency-Key": key},
    )
    assert started.status_code == 202, started.text
    until(lambda: erp.calls["POST /engagements"] > calls, "the third step is in flight")
    deployment.postgres.stop("fast")
    if step_ends == "during the outage":
        erp.released.set()
        time.sleep(1.0)
    deployment.postgres.start()
    erp.released.set()

    def state() -> str | None:
        runs = httpx.get(
            f"{deployment.url}/api/v1/flows/runs", params={"key": key}, headers=deployment.headers
        )
        items = runs.json()["items"] if runs.status_code == 200 else []
        return items[0]["state"] if items else None

    until(lambda: state() in ("succeeded", "failed"), "the run finished", timeout=30)
    assert state() == "succeeded"
