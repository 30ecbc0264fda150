"""Flows through the gateway: a process API bound to a durable flow whose steps call a system API
(a real HTTP downstream on loopback, bound through the registry) through the gateway's own chain."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import sqlite3
import sys
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, make_url, select, update

from gateway.flows.adapter import keyed_run_id
from gateway.flows.runs import RunQuery
from policies.auth import Principal
from registry.app import create_app
from registry.cli import flows_table
from registry.db.models import AuditEvent, FlowRun, OutboxEvent, utcnow
from registry.flows import flow_system_database
from tests import acme_flows
from tests.gateway.conftest import settled
from tests.loopback import serving
from tests.registry.support import CLIENTS, bearer, fetch_token, make_settings

T = TypeVar("T")
ERP = {
    "openapi": "3.1.0",
    "info": {"title": "ERP", "version": "1.0.0"},
    "security": [],
    "paths": {
        "/clients": {"post": {"operationId": "upsertClient", "responses": {"201": {"description": "ok"}}}},
        "/projects": {"post": {"operationId": "createProject", "responses": {"201": {"description": "ok"}}}},
        "/projects/{projectId}": {
            "parameters": [
                {"name": "projectId", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "delete": {"operationId": "closeProject", "responses": {"204": {"description": "closed"}}},
        },
        "/engagements": {
            "post": {
                "operationId": "createEngagement",
                # Called with the flow's own client: its scopes decide.
                "security": [{"oauth": ["erp:write"]}],
                "responses": {"201": {"description": "ok"}},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "oauth": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {"erp:write": "Write"}}
                },
            }
        }
    },
}
# The onboarding flow's own client at the gateway.
FLOW_CLIENT = {"client_id": "onboarding-flow", "client_secret": "flow-secret", "scopes": ["erp:write"]}
WON = {
    "operationId": "winOpportunity",
    "parameters": [
        {"name": "opportunityId", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string"}},
    ],
    "requestBody": {
        "content": {
            "application/json": {"schema": {"type": "object", "properties": {"client": {"type": "string"}}}}
        }
    },
    "responses": {"201": {"description": "project set up"}, "202": {"description": "still running"}},
}
ONBOARDING = {
    "openapi": "3.1.0",
    "info": {"title": "Onboarding", "version": "1.0.0"},
    "security": [],
    "paths": {
        "/opportunities/{opportunityId}/won": {"post": WON},
        "/status": {
            "get": {
                "operationId": "status",
                "responses": {
                    "200": {"description": "ok", "content": {"application/json": {"example": {"up": True}}}}
                },
            }
        },
    },
}


class Erp:
    """A system API on loopback that counts calls, records headers, and fails on demand."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, list[int]] = {}  # "POST /engagements" -> statuses of the next calls
        self.headers: list[dict[str, str]] = []
        self.held: set[str] = set()  # routes that wait until released
        self.released = threading.Event()
        self._ids = itertools.count(1)

    def fail(self, route: str, times: int, status: int = 503) -> None:
        self.faults[route] = [status] * times

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        route = f"{scope['method']} {scope['path']}"
        key = "DELETE /projects/{id}" if route.startswith("DELETE /projects/") else route
        self.calls[key] += 1
        self.headers.append({k.decode(): v.decode() for k, v in scope["headers"]})
        while key in self.held and not self.released.is_set():
            await asyncio.sleep(0.02)
        pending = self.faults.get(key)
        if pending:
            status = pending.pop(0)
            body = {
                "type": "/problems/erp-down",
                "title": "ERP unavailable",
                "status": status,
                "detail": "maintenance",
            }
            return await _reply(send, status, body, "application/problem+json")
        if scope["method"] == "DELETE":
            return await _reply(send, 204, None)
        await _reply(send, 201, {"id": f"{scope['path'].strip('/').rstrip('s')}-{next(self._ids)}"})


async def _reply(send: Any, status: int, body: Any, media: str = "application/json") -> None:
    content = b"" if body is None else json.dumps(body).encode()
    headers = [(b"content-type", media.encode())] if content else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


@pytest.fixture
def erp() -> Iterator[tuple[Erp, str]]:
    downstream = Erp()
    with serving(downstream) as url:
        yield downstream, url


@pytest.fixture
def flow_package(tmp_path: Path) -> Iterator[None]:
    """The firm's flows, found only through their entry point."""
    directory = str(acme_flows.install(tmp_path / "site"))
    sys.path.insert(0, directory)
    yield
    sys.path.remove(directory)


@pytest.fixture
def flow_scopes() -> list[str]:
    return FLOW_CLIENT["scopes"]  # type: ignore[return-value]


@pytest.fixture
def app(database_url: str, flow_package: None, flow_scopes: list[str]) -> Litestar:
    clients = [*CLIENTS, {**FLOW_CLIENT, "scopes": flow_scopes}]
    return create_app(make_settings(database_url, clients_json=json.dumps(clients)))


@pytest.fixture
async def delivery(client: AsyncTestClient, admin: dict[str, str]) -> dict[str, str]:
    """A member of `delivery`, the team that owns the flow and the APIs."""
    created = await client.post(
        "/api/v1/teams", json={"name": "delivery", "members": ["delivery-ci"]}, headers=admin
    )
    assert created.status_code == 201, created.text
    return bearer(await fetch_token(client, "delivery-ci", "delivery-secret"))


@pytest.fixture
async def bound(
    app: Litestar, client: AsyncTestClient, delivery: dict[str, str], erp: tuple[Erp, str]
) -> Erp:
    downstream, url = erp
    for name, document in (("erp", ERP), ("onboarding", ONBOARDING)):
        published = await client.post(
            f"/api/v1/apis/{name}/versions",
            content=json.dumps(document),
            params={"owner": "delivery"},
            headers={**delivery, "Content-Type": "application/json"},
        )
        assert published.status_code == 201, published.text
    erp_bound = await client.put(
        "/api/v1/apis/erp/adapter", json={"kind": "http", "url": url}, headers=delivery
    )
    assert erp_bound.status_code == 200, erp_bound.text
    await bind_onboarding(client, delivery)
    await on_server(client, settled, app)
    return downstream


async def on_server(client: AsyncTestClient, function: Callable[..., Awaitable[T]], *args: Any) -> T:
    """Run `function` on the app's own event loop (the test client serves it from another thread;
    asyncpg connections belong to the loop that opened them)."""
    return await asyncio.to_thread(client.blocking_portal.call, function, *args)


async def outbox_topics(app: Litestar) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(OutboxEvent.topic).order_by(OutboxEvent.id))).all())


async def flow_actions(app: Litestar) -> list[str]:
    async with app.state.sessionmaker() as session:
        return list(
            (await session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("flow.%")))).all()
        )


async def bind_onboarding(client: AsyncTestClient, headers: dict[str, str], **flow_binding: Any) -> None:
    binding = {
        "kind": "mock",
        "operations": {"winOpportunity": {"kind": "flow", "flow": "onboarding", **flow_binding}},
    }
    response = await client.put("/api/v1/apis/onboarding/adapter", json=binding, headers=headers)
    assert response.status_code == 200, response.text


async def win(
    client: AsyncTestClient,
    opportunity: str,
    key: str,
    body: Any = None,
    *,
    token: dict[str, str] | None = None,
) -> Any:
    """Win an opportunity: anonymously (the operation declares no security), or as `token`'s client."""
    return await client.post(
        f"/gw/onboarding/v1/opportunities/{opportunity}/won",
        json=body if body is not None else {"client": "ACME"},
        headers={"Idempotency-Key": key, **(token or {})},
    )


async def test_a_won_opportunity_runs_the_flow_and_answers_its_result(app, client, bound, admin):
    response = await win(client, "opp-1", "k-1")
    assert response.status_code == 201, response.text
    assert response.json() == {
        "opportunityId": "opp-1",
        "projectId": "project-2",
        "engagementId": "engagement-3",
    }
    run_id = response.headers["charter-flow-run"]

    # The other operations of the API keep the API's default binding (the mock).
    assert (await client.get("/gw/onboarding/v1/status")).json() == {"up": True}

    # Each outgoing call carried an idempotency key of its run and step, and the caller's trace.
    trace_id = response.headers["traceparent"].split("-")[1]
    keys = [h["idempotency-key"] for h in bound.headers]
    assert len(set(keys)) == 3
    assert all(h["traceparent"].split("-")[1] == trace_id for h in bound.headers)

    run = (await client.get(f"/api/v1/flows/runs/{run_id}", headers=admin)).json()
    assert run["state"] == "succeeded" and run["trace_id"] == trace_id and run["late"] is False
    assert run["keys"] == {"opportunityId": "opp-1", "projectId": "project-2"}
    assert [(s["name"], s["state"], s["attempts"]) for s in run["steps"]] == [
        ("upsert-client", "succeeded", 1),
        ("create-project", "succeeded", 1),
        ("provision-engagement", "succeeded", 1),
    ]
    assert run["steps"][1]["output_summary"] == '{"projectId":"project-2"}'

    for key in ("opp-1", "project-2"):
        found = (await client.get("/api/v1/flows/runs", params={"key": key}, headers=admin)).json()
        assert [r["id"] for r in found["items"]] == [run_id]
    assert (await client.get("/api/v1/flows/runs", params={"key": "opp-2"}, headers=admin)).json()[
        "total"
    ] == 0

    flows = (await client.get("/api/v1/flows", headers=admin)).json()["items"]
    assert [(f["name"], f["runs"], f["operations"]) for f in flows] == [
        ("onboarding", {"succeeded": 1}, [{"api": "onboarding", "operation_id": "winOpportunity"}]),
        ("strict-onboarding", {}, []),
    ]
    topics = await on_server(client, outbox_topics, app)
    assert [t for t in topics if t.startswith(("project.", "flow."))] == [
        "project.created",
        "flow.run.succeeded",
    ]


async def test_runs_are_found_by_an_exact_business_key_value(client, bound, delivery):
    run_id = (await win(client, "Opp-1", "k", token=delivery)).headers["charter-flow-run"]

    async def found(**params: str) -> list[str]:
        page = await client.get("/api/v1/flows/runs", params=params, headers=delivery)
        assert page.status_code == 200, page.text
        return [run["id"] for run in page.json()["items"]]

    assert await found(key="Opp-1") == [run_id]
    assert await found(key="opp-1") == [] and await found(key="Opp") == [] and await found(key="Opp-1 ") == []
    assert await found(key="Opp-1", key_name="opportunityId") == [run_id]
    assert await found(key="Opp-1", key_name="projectId") == []
    assert await found(key="project-2", key_name="projectId") == [run_id]
    assert await found(key_name="projectId") == [run_id] and await found(key_name="invoiceId") == []


async def key_search_plan(app: Litestar) -> str:
    """The database's plan of the key search's query (with sequential scans off on PostgreSQL, where
    a table this small would be scanned anyway): whether an index serves it."""
    engine = app.state.engine
    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "flow_run_keys" in statement and "count(" not in statement:
            statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        await app.state.flow_runner.index.search(RunQuery(key="Opp-1", key_name="opportunityId"))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    (statement, parameters), *_ = statements
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.exec_driver_sql("SET enable_seqscan = off")
            rows = await conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        else:
            rows = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)


async def test_the_business_key_search_is_served_by_an_index(app, client, bound, delivery):
    await win(client, "Opp-1", "k", token=delivery)
    plan = await on_server(client, key_search_plan, app)
    assert "ix_flow_run_keys_value" in plan, plan


async def test_the_same_key_answers_the_first_run_without_running_again(client, bound, delivery):
    first = await win(client, "opp-1", "same", token=delivery)
    again = await win(client, "opp-1", "same", token=delivery)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert bound.calls["POST /projects"] == 1

    other_body = await win(client, "opp-1", "same", {"client": "Globex"}, token=delivery)
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "/problems/idempotency-key-reused"

    missing = await client.post("/gw/onboarding/v1/opportunities/opp-1/won", json={})
    assert missing.status_code == 400  # the contract requires the header


async def test_one_callers_key_does_not_answer_another_caller(client, bound, delivery):
    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    mine = await win(client, "opp-1", "1", token=delivery)
    theirs = await win(client, "opp-1", "1", token=reader)
    assert mine.headers["charter-flow-run"] != theirs.headers["charter-flow-run"]


async def test_an_anonymous_callers_answer_is_not_given_to_a_repeat_of_its_key(client, bound):
    first = await win(client, "opp-1", "1")
    assert first.status_code == 201, first.text
    # Anyone may send an anonymous request with a guessed key: the first answer is not theirs.
    again = await win(client, "opp-1", "1")
    assert again.status_code == 409, again.text
    problem = again.json()
    assert problem["type"] == "/problems/idempotency-key-replayed"
    assert "project-2" not in again.text and "charter-flow-run" not in again.headers
    assert bound.calls["POST /projects"] == 1  # and the key still made the request run once

    other_body = await win(client, "opp-1", "1", {"client": "Globex"})
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "/problems/idempotency-key-reused"


async def test_concurrent_duplicates_run_once(client, bound, delivery):
    answers = await asyncio.gather(*(win(client, "opp-9", "burst", token=delivery) for _ in range(20)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.headers["charter-flow-run"] for a in answers}) == 1
    assert bound.calls["POST /projects"] == 1 and bound.calls["POST /engagements"] == 1


async def test_concurrent_anonymous_duplicates_run_once_and_one_gets_the_answer(client, bound):
    answers = await asyncio.gather(*(win(client, "opp-9", "burst") for _ in range(20)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 19
    assert bound.calls["POST /projects"] == 1 and bound.calls["POST /engagements"] == 1


async def test_a_failing_step_is_retried_with_backoff(client, bound, admin):
    bound.fail("POST /engagements", 2)
    response = await win(client, "opp-1", "k")
    assert response.status_code == 201, response.text
    run = (
        await client.get(f"/api/v1/flows/runs/{response.headers['charter-flow-run']}", headers=admin)
    ).json()
    assert run["steps"][2]["attempts"] == 3 and run["steps"][2]["error"] is None
    assert bound.calls["POST /engagements"] == 3 and bound.calls["POST /projects"] == 1
    retried = [h["idempotency-key"] for h in bound.headers[2:]]
    assert len(set(retried)) == 1  # every attempt of a step sends the same key


async def parked(client: AsyncTestClient, bound: Erp, admin: dict[str, str]) -> dict:
    bound.fail("POST /engagements", 3)
    response = await win(client, "opp-7", "k", token=admin)
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "failed"
    run = (await client.get(response.headers["location"], headers=admin)).json()
    assert run["state"] == "failed" and run["failed_step"] == "provision-engagement"
    step = run["steps"][2]
    assert (step["state"], step["attempts"], step["error"]["status"]) == ("failed", 3, 503)
    assert step["error"]["problem"]["type"] == "/problems/erp-down"
    assert run["input"]["body"] == {"client": "ACME"}
    other_team = bearer(await fetch_token(client, "reader", "reader-secret"))
    seen = (await client.get(response.headers["location"], headers=other_team)).json()
    assert seen["state"] == "failed" and seen["input"] is None
    queue = (await client.get("/api/v1/flows/runs", params={"state": "failed"}, headers=admin)).json()
    assert [r["id"] for r in queue["items"]] == [run["id"]]
    return run


async def reached(bound: Erp, route: str) -> None:
    """Until a step has called `route` (a held route: the steps before it have completed)."""
    for _ in range(500):
        if bound.calls[route]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"no step called {route}")


async def wait_for(client: AsyncTestClient, run_id: str, headers: dict[str, str], state: str) -> dict:
    for _ in range(200):
        run = (await client.get(f"/api/v1/flows/runs/{run_id}", headers=headers)).json()
        if run.get("state") == state:
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} is {run.get('state')}, not {state}")


async def test_a_runs_data_is_for_its_flows_team_admins_and_the_consumer_that_started_it(
    client, bound, admin, delivery
):
    # The consumer holds no registry scope: it polls the run it started at `Location`.
    starter = bearer(await fetch_token(client, FLOW_CLIENT["client_id"], FLOW_CLIENT["client_secret"]))
    bound.fail("POST /engagements", 3)
    response = await win(client, "opp-7", "k", token=starter)
    assert response.status_code == 202, response.text
    location, run_id = response.headers["location"], response.json()["run"]

    for who in (admin, delivery, starter):
        run = (await client.get(location, headers=who)).json()
        assert run["input"]["body"] == {"client": "ACME"} and run["keys"]["opportunityId"] == "opp-7"
        assert run["steps"][2]["error"]["problem"]["type"] == "/problems/erp-down"
        assert run["steps"][1]["output_summary"] == '{"projectId":"project-2"}'

    # Another team's reader sees that the run exists, its state and timestamps: no business data.
    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    seen = (await client.get(location, headers=reader)).json()
    assert (seen["state"], seen["failed_step"]) == ("failed", "provision-engagement")
    assert seen["input"] is None and seen["result"] is None and seen["keys"] == {}
    assert all(s["error"] is None and s["output_summary"] is None for s in seen["steps"])
    assert [s["state"] for s in seen["steps"]] == ["succeeded", "succeeded", "failed"]
    assert (await client.get(location)).status_code == 401

    listed = (await client.get("/api/v1/flows/runs", headers=reader)).json()["items"]
    assert [(r["id"], r["keys"], r["steps"][2]["error"]) for r in listed] == [(run_id, {}, None)]
    listed = (await client.get("/api/v1/flows/runs", headers=delivery)).json()["items"]
    assert listed[0]["keys"]["opportunityId"] == "opp-7" and listed[0]["steps"][2]["error"]["status"] == 503
    # A business key finds runs only for those who may see the runs' keys.
    by_key = {"key": "opp-7"}
    assert (await client.get("/api/v1/flows/runs", params=by_key, headers=reader)).json()["total"] == 0
    assert (await client.get("/api/v1/flows/runs", params=by_key, headers=delivery)).json()["total"] == 1
    # Another consumer's token does not reach the run.
    other = await client.get(
        location, headers=bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    )
    assert other.status_code == 200 and other.json()["input"] is None


async def test_the_console_pages_keep_a_runs_data_to_the_same_readers_as_the_api(client, bound, delivery):
    bound.fail("POST /engagements", 3)
    response = await win(client, "opp-7", "k", token=delivery)
    assert response.status_code == 202, response.text
    run_page = f"/flows/runs/{response.json()['run']}"
    page = (await client.get(run_page, headers=delivery)).text
    assert "opp-7" in page and "maintenance" in page and "project-2" in page

    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    page = await client.get(run_page, headers=reader)
    assert page.status_code == 200 and "provision-engagement" in page.text
    assert "opp-7" not in page.text and "maintenance" not in page.text and "project-2" not in page.text
    assert "ACME" not in page.text  # the request
    queue = (await client.get("/flows", headers=reader)).text
    assert "provision-engagement" in queue and "opp-7" not in queue
    by_key = (await client.get("/flows", params={"key": "opp-7"}, headers=reader)).text
    assert "provision-engagement" not in by_key
    assert "opp-7" in (await client.get("/flows", params={"key": "opp-7"}, headers=delivery)).text


async def test_a_parked_run_retried_after_the_fault_clears_skips_completed_steps(
    app, client, bound, admin, delivery
):
    run = await parked(client, bound, admin)
    outsider = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    refused = await client.post(f"/api/v1/flows/runs/{run['id']}/retry", headers=outsider)
    assert refused.status_code == 403

    retried = await client.post(f"/api/v1/flows/runs/{run['id']}/retry", headers=delivery)
    assert retried.status_code == 202, retried.text
    done = await wait_for(client, run["id"], admin, "succeeded")
    assert done["steps"][2]["attempts"] == 4
    assert bound.calls["POST /clients"] == 1 and bound.calls["POST /projects"] == 1
    again = await client.post(f"/api/v1/flows/runs/{run['id']}/retry", headers=delivery)
    assert again.status_code == 409
    # The first caller's key now answers the result.
    assert (await win(client, "opp-7", "k", token=admin)).status_code == 201
    assert await on_server(client, flow_actions, app) == ["flow.run.retry"]
    metrics = (await client.get("/metrics")).text
    for line in (
        'charter_flow_runs_parked_total{flow="onboarding"} 1.0',
        'charter_flow_step_retries_total{flow="onboarding",step="provision-engagement"} 2.0',
        'charter_flow_runs_total{flow="onboarding",state="failed"} 1.0',
        'charter_flow_runs_total{flow="onboarding",state="succeeded"} 1.0',
        'charter_flow_step_duration_seconds_count{flow="onboarding",step="provision-engagement"} 4.0',
    ):
        assert line in metrics


def printed(table: Table) -> str:
    console = Console(record=True, width=400)
    console.print(table)
    return console.export_text()


async def test_the_flows_list_names_the_keys_of_failed_and_late_runs_to_the_owning_team(
    app, client, bound, admin, delivery
):
    run = await parked(client, bound, admin)

    async def age(run_id: str, seconds: float) -> None:
        # The index's creation time, moved back: the run looks as old as a run would be that long after.
        async with app.state.sessionmaker() as session:
            await session.execute(
                update(FlowRun)
                .where(FlowRun.id == run_id)
                .values(created_at=utcnow() - dt.timedelta(seconds=seconds))
            )
            await session.commit()

    def onboarding(listed: dict) -> dict:
        return next(f for f in listed["items"] if f["name"] == "onboarding")

    listed = onboarding((await client.get("/api/v1/flows", headers=delivery)).json())
    assert (listed["late"], listed["late_runs"]) == (0, [])  # failed, but within its SLA of 600 s
    assert [(r["id"], r["state"], r["keys"]) for r in listed["failed_runs"]] == [
        (run["id"], "failed", {"opportunityId": "opp-7", "projectId": "project-2"})
    ]

    await on_server(client, age, run["id"], 601)
    every = (await client.get("/api/v1/flows", headers=delivery)).json()
    listed = onboarding(every)
    assert listed["late"] == 1
    assert [(r["id"], r["keys"]["opportunityId"]) for r in listed["late_runs"]] == [(run["id"], "opp-7")]
    # `charter flows list` names them too.
    assert "opportunityId=opp-7 projectId=project-2" in printed(flows_table(every["items"]))
    # Another team's reader learns that runs are late or failed, not for which client or project.
    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    seen_all = (await client.get("/api/v1/flows", headers=reader)).json()
    seen = onboarding(seen_all)
    assert [(r["id"], r["keys"]) for r in seen["late_runs"] + seen["failed_runs"]] == [(run["id"], {})] * 2
    shown = printed(flows_table(seen_all["items"]))
    assert run["id"] in shown and "opportunityId=" not in shown


async def test_replay_from_a_step_reuses_the_recorded_outputs_before_it(client, bound, delivery, admin):
    first = await win(client, "opp-1", "k")
    run_id = first.headers["charter-flow-run"]
    replayed = await client.post(
        f"/api/v1/flows/runs/{run_id}/replay", json={"from_step": "provision-engagement"}, headers=delivery
    )
    assert replayed.status_code == 202, replayed.text
    new_id = replayed.json()["run"]
    assert new_id != run_id
    run = await wait_for(client, new_id, admin, "succeeded")
    assert run["replay_of"] == run_id and run["result"]["body"]["projectId"] == "project-2"
    assert bound.calls["POST /projects"] == 1 and bound.calls["POST /engagements"] == 2
    unknown = await client.post(
        f"/api/v1/flows/runs/{run_id}/replay", json={"from_step": "nope"}, headers=delivery
    )
    assert unknown.status_code == 422


async def test_cancel_compensates_the_completed_steps(client, bound, delivery, admin):
    run = await parked(client, bound, admin)
    cancelled = await client.post(f"/api/v1/flows/runs/{run['id']}/cancel", headers=delivery)
    assert cancelled.status_code == 202, cancelled.text
    done = await wait_for(client, run["id"], admin, "cancelled")
    assert [s["state"] for s in done["steps"]] == ["succeeded", "compensated", "failed"]
    assert bound.calls["DELETE /projects/{id}"] == 1


async def test_cancel_of_a_running_run_stops_at_the_next_step_and_compensates(client, bound, delivery, admin):
    await bind_onboarding(client, delivery, wait_seconds=0.2)
    await on_server(client, settled, client.app)
    bound.held.add("POST /projects")  # the second step waits on the downstream
    response = await win(client, "opp-8", "k")
    assert response.status_code == 202, response.text
    run_id = response.json()["run"]
    await reached(bound, "POST /projects")
    cancelled = await client.post(f"/api/v1/flows/runs/{run_id}/cancel", headers=delivery)
    assert cancelled.status_code == 202, cancelled.text
    bound.released.set()  # the step in flight completes; the next one never starts
    done = await wait_for(client, run_id, admin, "compensated")
    assert [s["state"] for s in done["steps"]] == ["succeeded", "compensated", "pending"]
    assert done["failed_step"] == "provision-engagement"
    assert bound.calls["POST /engagements"] == 0 and bound.calls["DELETE /projects/{id}"] == 1
    again = await client.post(f"/api/v1/flows/runs/{run_id}/cancel", headers=delivery)
    assert again.status_code == 409, again.text
    assert await on_server(client, flow_actions, client.app) == ["flow.run.cancel"]


async def test_cancel_of_a_running_run_with_nothing_to_undo_ends_cancelled(client, bound, delivery, admin):
    await bind_onboarding(client, delivery, wait_seconds=0.2)
    await on_server(client, settled, client.app)
    bound.held.add("POST /clients")  # the first step, which declares no compensation
    response = await win(client, "opp-9", "k")
    assert response.status_code == 202, response.text
    run_id = response.json()["run"]
    await reached(bound, "POST /clients")
    cancelled = await client.post(f"/api/v1/flows/runs/{run_id}/cancel", headers=delivery)
    assert cancelled.status_code == 202, cancelled.text
    bound.released.set()
    done = await wait_for(client, run_id, admin, "cancelled")
    assert [s["state"] for s in done["steps"]] == ["succeeded", "pending", "pending"]
    assert bound.calls["POST /projects"] == 0 and bound.calls["DELETE /projects/{id}"] == 0


async def test_a_step_refused_for_good_compensates_at_once_when_the_flow_says_so(
    client, bound, delivery, admin
):
    binding = {
        "kind": "mock",
        "operations": {"winOpportunity": {"kind": "flow", "flow": "strict-onboarding"}},
    }
    rebound = await client.put("/api/v1/apis/onboarding/adapter", json=binding, headers=delivery)
    assert rebound.status_code == 200, rebound.text
    await on_server(client, settled, client.app)
    bound.fail("POST /engagements", 1, status=422)
    response = await win(client, "opp-4", "k")
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "/problems/flow-run-compensated" and problem["error"]["status"] == 422
    run = (await client.get(response.headers["location"], headers=admin)).json()
    assert run["state"] == "compensated"
    assert [(s["state"], s["attempts"]) for s in run["steps"]] == [
        ("succeeded", 1),
        ("compensated", 1),
        ("failed", 1),
    ]
    assert bound.calls["POST /engagements"] == 1 and bound.calls["DELETE /projects/{id}"] == 1


async def test_a_run_longer_than_the_wait_budget_answers_202_and_location(client, bound, delivery, admin):
    await bind_onboarding(client, delivery, wait_seconds=0.2)
    await on_server(client, settled, client.app)
    bound.held.add("POST /engagements")
    response = await win(client, "opp-3", "slow")
    assert response.status_code == 202
    assert response.headers["location"].startswith("/api/v1/flows/runs/")
    await reached(bound, "POST /engagements")
    running = (await client.get(response.headers["location"], headers=admin)).json()
    assert running["state"] == "running"
    assert [s["state"] for s in running["steps"]] == ["succeeded", "succeeded", "running"]
    bound.released.set()
    run = await wait_for(client, response.json()["run"], admin, "succeeded")
    assert run["result"]["status"] == 201


async def test_a_binding_to_an_unknown_flow_is_refused(client, bound, delivery):
    response = await client.put(
        "/api/v1/apis/onboarding/adapter", json={"kind": "flow", "flow": "nope"}, headers=delivery
    )
    assert response.status_code == 422


async def test_another_team_cannot_bind_its_api_to_a_flow_it_does_not_own(client, bound, admin):
    """A flow calls system APIs with its own client's scopes: finance binding its own API to delivery's
    flow would start delivery's runs, with delivery's privileges, on finance's callers' input."""
    await client.post("/api/v1/teams", json={"name": "finance", "members": ["finance-ci"]}, headers=admin)
    finance = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    published = await client.post(
        "/api/v1/apis/ledger/versions",
        content=json.dumps(ONBOARDING),
        params={"owner": "finance"},
        headers={**finance, "Content-Type": "application/json"},
    )
    assert published.status_code == 201, published.text
    for binding in (
        {"kind": "flow", "flow": "onboarding"},
        {"kind": "mock", "operations": {"winOpportunity": {"kind": "flow", "flow": "onboarding"}}},
    ):
        response = await client.put("/api/v1/apis/ledger/adapter", json=binding, headers=finance)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/apis/ledger", headers=admin)).json()["adapter"] is None


@pytest.mark.parametrize("flow_scopes", [[]])
async def test_steps_call_with_the_flows_own_client_and_its_scopes(client, bound, admin):
    response = await win(client, "opp-5", "k")
    assert response.status_code == 202  # parked at once: a refusal is not retried
    run = (await client.get(response.headers["location"], headers=admin)).json()
    step = run["steps"][2]
    assert (step["state"], step["attempts"], step["error"]["status"]) == ("failed", 1, 403)
    assert step["error"]["problem"]["type"] == "/problems/insufficient-scope"
    assert bound.calls["POST /engagements"] == 0


def test_users_of_one_client_application_do_not_share_keys():
    def caller(subject: str, client_id: str | None) -> Principal:
        return Principal(subject=subject, client_id=client_id, scopes=frozenset(), expires_at=None, claims={})

    label = "POST /opportunities/{opportunityId}/won"
    ids = {
        keyed_run_id(principal, "onboarding", label, "1")
        for principal in (
            caller("alice", "portal"),
            caller("bob", "portal"),
            caller("portal", "portal"),  # the application's own client-credentials token
            caller("portal", None),
            None,
        )
    }
    assert len(ids) == 4  # a subject without a client id is that client's own


async def test_the_flow_engines_sqlite_file_keeps_a_write_ahead_log(client, bound, database_url):
    """DBOS's SQLite file is in WAL mode: a recorded step syncs the log once, where the rollback
    journal DBOS leaves it in syncs a journal and the file (runs measured 4-6x slower)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL has no journal mode")
    assert (await win(client, "opp-wal", "k-wal")).status_code == 201
    path = make_url(flow_system_database(database_url)).database
    assert path is not None
    with contextlib.closing(sqlite3.connect(path)) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
