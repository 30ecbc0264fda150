"""The demo's process APIs bound to their flows: a person's tour of retries, parking and compensation.

Runs where the flow engine (`gateway.flows`) is installed; the steps call the simulated systems
through the gateway with the `demo-flows` client the demo registers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

pytest.importorskip("gateway.flows", reason="the flow engine is not installed")

from gateway.flows.declaration import Flow, RetryPolicy
from registry.app import create_app
from registry.demo.flows import FLOWS
from tests.gateway.conftest import settled
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings

# The process APIs' consumer: a sales app and a finance app in one.
CONSUMER = {
    "client_id": "back-office",
    "client_secret": "back-office-secret",
    "scopes": ["lead-to-project:run", "time-to-bill:run"],
}
QUICK = RetryPolicy(attempts=3, backoff_seconds=0.01, jitter=0, timeout_seconds=10)


def quick(flow: Flow) -> Flow:
    """The demo flow with retries milliseconds apart, so that a test sees a run park quickly."""
    return dataclasses.replace(flow, steps=tuple(dataclasses.replace(s, retry=QUICK) for s in flow.steps))


@pytest.fixture
def app(tmp_path) -> Litestar:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/charter.db", demo=True, clients_json=json.dumps([*CLIENTS, CONSUMER])
    )
    return create_app(settings, flows={flow.name: quick(flow) for flow in FLOWS})


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app) as test_client:
        admin = bearer(await fetch_token(test_client, *ADMIN))
        for name in ("lead-to-project", "time-to-bill"):
            bound = await test_client.put(
                f"/api/v1/apis/{name}/adapter", json={"kind": "flow", "flow": name}, headers=admin
            )
            assert bound.status_code == 200, bound.text
        await settled(app)
        yield test_client


@pytest.fixture
async def admin(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, *ADMIN))


@pytest.fixture
async def consumer(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, "back-office", "back-office-secret"))


async def topics(app: Litestar) -> list[str]:
    from sqlalchemy import select

    from registry.db.models import OutboxEvent

    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.id))).all())


async def finished(
    client: AsyncTestClient, admin: dict[str, str], run_id: str, *, not_in: tuple[str, ...] = ("running",)
) -> dict[str, Any]:
    """The run once its state has left `not_in`."""
    for _ in range(200):
        run = (await client.get(f"/api/v1/flows/runs/{run_id}", headers=admin)).json()
        if run["state"] not in not_in:
            return run
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def test_a_won_opportunity_becomes_a_staffed_project(app, client, consumer, admin):
    response = await client.post("/gw/lead-to-project/v1/opportunities/opp-1001/won", headers=consumer)
    assert response.status_code == 201, response.text
    setup = response.json()
    assert setup["clientId"] == "acme"
    assert setup["manager"] == {"personId": "e-100", "name": "Maria Keller"}
    assert [(m["personId"], m["role"]) for m in setup["members"]] == [
        ("e-201", "consultant"),
        ("e-202", "consultant"),
        ("e-301", "architect"),
    ]

    systems = app.state.demo_systems
    assert systems.erp.projects[setup["projectId"]]["status"] == "open"
    assert systems.psa.engagements[setup["engagementId"]]["status"] == "staffed"
    assert systems.crm.opportunities["opp-1001"]["sync"]["projectId"] == setup["projectId"]
    assert "delivery.project.created" in await topics(app)

    run = await finished(client, admin, response.headers["charter-flow-run"])
    assert run["keys"]["opportunityId"] == "opp-1001"
    assert run["keys"]["projectId"] == setup["projectId"]

    # The opportunity is set up: a second conversion (another key) creates nothing.
    again = await client.post("/gw/lead-to-project/v1/opportunities/opp-1001/won", headers=consumer)
    assert again.status_code == 409
    assert systems.erp.calls["createProject"] == 1


async def test_an_engagement_the_psa_refuses_closes_the_erp_project_again(app, client, consumer):
    response = await client.post("/gw/lead-to-project/v1/opportunities/opp-1003/won", headers=consumer)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["problem"]["type"] == "/problems/unsupported-billing-model"

    erp = app.state.demo_systems.erp
    (project,) = [p for p in erp.projects.values() if p["opportunityId"] == "opp-1003"]
    assert project["status"] == "closed"
    assert app.state.demo_systems.psa.calls["createEngagement"] == 1  # refused for good: no retry
    assert "delivery.project.created" not in await topics(app)


async def test_invalid_contract_attributes_stop_the_run_before_any_write(app, client, consumer):
    response = await client.post("/gw/lead-to-project/v1/opportunities/opp-1002/won", headers=consumer)
    assert response.status_code == 409, response.text
    detail = response.json()["error"]["problem"]["detail"]
    assert "the contract value must be positive" in detail
    assert "the contract names no manager" in detail
    assert sum(app.state.demo_systems.erp.calls.values()) == 0


async def test_an_erp_outage_parks_the_billing_run_and_a_retry_finishes_it(app, client, consumer, admin):
    await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 100}, headers=admin)
    response = await client.post(
        "/gw/time-to-bill/v1/billing-runs", json={"client": "acme", "period": "2026-11"}, headers=consumer
    )
    assert response.status_code == 202, response.text
    run_id = response.json()["run"]
    run = await finished(client, admin, run_id)
    assert (run["state"], run["failed_step"]) == ("failed", "post-billing-lines")
    assert app.state.demo_systems.erp.calls["postBillingLines"] == QUICK.attempts

    await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 0}, headers=admin)
    retried = await client.post(f"/api/v1/flows/runs/{run_id}/retry", headers=admin)
    assert retried.status_code in (200, 201, 202), retried.text
    run = await finished(client, admin, run_id, not_in=("running", "failed"))
    assert run["state"] == "succeeded"
    assert run["result"]["body"]["total"] == {"amount": "2925.00", "currency": "EUR"}
    # The completed step did not run again: the PSA was read once.
    assert app.state.demo_systems.psa.calls["listApprovedTimeEntries"] == 1
    assert (await topics(app)).count("finance.invoice.ready") == 1


async def test_billing_a_month_twice_answers_the_first_invoice(app, client, consumer):
    body = {"client": "acme", "period": "2026-10"}
    first = await client.post("/gw/time-to-bill/v1/billing-runs", json=body, headers=consumer)
    second = await client.post("/gw/time-to-bill/v1/billing-runs", json=body, headers=consumer)
    assert first.status_code == second.status_code == 201, (first.text, second.text)
    assert first.json()["invoiceId"] == second.json()["invoiceId"]
    assert first.json()["hours"] == 14.5
    assert len(app.state.demo_systems.erp.invoices) == 1
    assert (await topics(app)).count("finance.invoice.ready") == 1


async def test_finished_runs_leave_the_index_and_the_engine_after_their_retention(
    app, client, consumer, admin
):
    import datetime as dt

    from dbos import DBOS
    from sqlalchemy import update

    from registry import retention
    from registry.db.models import FlowRun, utcnow

    won = await client.post("/gw/lead-to-project/v1/opportunities/opp-1001/won", headers=consumer)
    assert won.status_code == 201, won.text
    done = (await finished(client, admin, won.headers["charter-flow-run"]))["id"]
    await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 100}, headers=admin)
    billing = await client.post(
        "/gw/time-to-bill/v1/billing-runs", json={"client": "acme", "period": "2026-11"}, headers=consumer
    )
    parked = (await finished(client, admin, billing.json()["run"]))["id"]
    assert (await client.get(f"/api/v1/flows/runs/{parked}", headers=admin)).json()["state"] == "failed"

    kept = retention.Retention(flow_runs_days=90)
    forget = app.state.flow_runner.forget
    sessionmaker = app.state.sessionmaker
    assert (await retention.prune(sessionmaker, kept, forget_runs=forget)).flow_runs == 0  # too young
    async with sessionmaker() as session:
        await session.execute(update(FlowRun).values(updated_at=utcnow() - dt.timedelta(days=91)))
        await session.commit()

    assert (await retention.prune(sessionmaker, kept, forget_runs=forget)).flow_runs == 1
    assert (await client.get(f"/api/v1/flows/runs/{done}", headers=admin)).status_code == 404
    assert await DBOS.get_workflow_status_async(done) is None
    # A parked run waits for an operator, however old.
    assert (await client.get(f"/api/v1/flows/runs/{parked}", headers=admin)).json()["state"] == "failed"
    assert await DBOS.get_workflow_status_async(parked) is not None
