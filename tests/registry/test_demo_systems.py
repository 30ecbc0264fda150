"""The demo's simulated CRM, ERP, PSA and HCM behind the gateway, and the faults an admin injects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.settings import Settings
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings

SYSTEM_SCOPES = ["crm:read", "crm:write", "erp:read", "erp:write", "psa:read", "psa:write", "hcm:read"]
# The clients the demo's flows and another integration would use: the system APIs' own scopes.
INTEGRATIONS = [
    {"client_id": "demo-flows", "client_secret": "flows-secret", "scopes": SYSTEM_SCOPES},
    {"client_id": "other-integration", "client_secret": "other-secret", "scopes": SYSTEM_SCOPES},
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # One database for the module: the demo contracts are published once, later starts find them.
    database = tmp_path_factory.mktemp("demo-systems") / "charter.db"
    return make_settings(
        f"sqlite+aiosqlite:///{database}", demo=True, clients_json=json.dumps(CLIENTS + INTEGRATIONS)
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def admin(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, *ADMIN))


@pytest.fixture
async def flows(client: AsyncTestClient) -> dict[str, str]:
    return bearer(await fetch_token(client, "demo-flows", "flows-secret"))


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


NEW_PROJECT = {
    "clientId": "acme",
    "name": "Acme ERP rollout",
    "opportunityId": "opp-1001",
    "contractValue": {"amount": "240000.00", "currency": "EUR"},
    "startDate": "2027-01-04",
}


async def test_lead_to_project_calls_through_the_gateway(client, flows):
    opportunity = await client.get("/gw/crm/v1/opportunities/opp-1001", headers=flows)
    assert opportunity.status_code == 200, opportunity.text
    contract = opportunity.json()["contract"]
    assert contract["managerId"] == "e-100"
    assert opportunity.json()["client"]["id"] == "acme"

    created = await client.put(
        "/gw/erp/v1/clients/initech", json={"name": "Initech Inc", "country": "US"}, headers=flows
    )
    updated = await client.put(
        "/gw/erp/v1/clients/initech", json={"name": "Initech Inc.", "country": "US"}, headers=flows
    )
    assert (created.status_code, updated.status_code) == (201, 200)
    assert updated.json() == {"id": "initech", "name": "Initech Inc.", "country": "US"}

    project = await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=flows)
    assert project.status_code == 201, project.text
    project_id = project.json()["id"]
    assert project.json()["status"] == "open"

    engagement_in = {
        "projectId": project_id,
        "clientId": "acme",
        "opportunityId": "opp-1001",
        "billingModel": "time-and-materials",
        "startDate": "2027-01-04",
        "managerId": "e-100",
        "roles": contract["roles"],
    }
    engagement = await client.post("/gw/psa/v1/engagements", json=engagement_in, headers=flows)
    assert engagement.status_code == 201, engagement.text

    manager = (await client.get("/gw/hcm/v1/employees/e-100", headers=flows)).json()
    consultants = await client.get("/gw/hcm/v1/people", params={"role": "consultant"}, headers=flows)
    assert manager["managerId"] == "e-001"
    assert [p["id"] for p in consultants.json()] == ["e-201", "e-202"]

    team = {
        "manager": {"personId": manager["id"], "name": manager["name"]},
        "members": [{"personId": p["id"], "name": p["name"], "role": p["role"]} for p in consultants.json()],
    }
    staffed = await client.put(
        f"/gw/psa/v1/engagements/{engagement.json()['id']}/team", json=team, headers=flows
    )
    assert staffed.status_code == 200, staffed.text
    assert staffed.json()["status"] == "staffed"

    synced = await client.post(
        "/gw/crm/v1/opportunities/opp-1001/sync",
        json={"projectId": project_id, "engagementId": engagement.json()["id"]},
        headers=flows,
    )
    assert synced.status_code == 200, synced.text
    assert synced.json()["sync"]["projectId"] == project_id


async def test_the_psa_refuses_an_engagement_for_good_and_the_erp_project_closes(client, flows):
    project = (await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=flows)).json()
    refused = await client.post(
        "/gw/psa/v1/engagements",
        json={
            "projectId": project["id"],
            "clientId": "acme",
            "billingModel": "retainer",
            "startDate": "2027-01-11",
            "managerId": "e-100",
            "roles": [{"role": "consultant", "hours": 300}],
        },
        headers=flows,
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/unsupported-billing-model"

    closed = await client.post(
        f"/gw/erp/v1/projects/{project['id']}/close", json={"reason": "the PSA refused"}, headers=flows
    )
    again = await client.post(
        f"/gw/erp/v1/projects/{project['id']}/close", json={"reason": "twice"}, headers=flows
    )
    assert closed.json()["status"] == "closed"
    assert again.json()["closeReason"] == "the PSA refused"  # closing twice changes nothing


async def test_time_to_bill_calls_bill_each_time_entry_once(client, flows):
    entries = await client.get(
        "/gw/psa/v1/time-entries/approved", params={"client": "acme", "period": "2026-11"}, headers=flows
    )
    assert entries.status_code == 200, entries.text
    assert [e["id"] for e in entries.json()] == ["te-5003", "te-5004", "te-5005"]  # te-5006 is submitted

    lines = [
        {
            "timeEntryId": e["id"],
            "projectId": e["projectId"],
            "date": e["date"],
            "hours": e["hours"],
            "rate": e["rate"],
            "amount": {"amount": f"{e['hours'] * 150:.2f}", "currency": "EUR"},
        }
        for e in entries.json()
    ]
    body = {"clientId": "acme", "period": "2026-11", "lines": lines}
    first = await client.post("/gw/erp/v1/billing-lines", json=body, headers=keyed(flows, "lines-1"))
    second = await client.post("/gw/erp/v1/billing-lines", json=body, headers=keyed(flows, "lines-2"))
    assert first.json() == {"clientId": "acme", "period": "2026-11", "accepted": 3, "lines": 3}
    assert second.json() == {"clientId": "acme", "period": "2026-11", "accepted": 0, "lines": 3}

    request = {"clientId": "acme", "period": "2026-11"}
    invoice = await client.post("/gw/erp/v1/invoices", json=request, headers=keyed(flows, "invoice-1"))
    assert invoice.status_code == 201, invoice.text
    assert invoice.json()["total"] == {"amount": "2925.00", "currency": "EUR"}  # 19.5 h at 150
    replayed = await client.post("/gw/erp/v1/invoices", json=request, headers=keyed(flows, "invoice-1"))
    assert (replayed.status_code, replayed.json()) == (201, invoice.json())
    twice = await client.post("/gw/erp/v1/invoices", json=request, headers=keyed(flows, "invoice-2"))
    assert twice.status_code == 409
    late_lines = await client.post("/gw/erp/v1/billing-lines", json=body, headers=flows)
    assert late_lines.status_code == 409

    nothing = await client.post(
        "/gw/erp/v1/invoices", json={"clientId": "acme", "period": "2026-12"}, headers=flows
    )
    assert nothing.status_code == 422
    assert nothing.json()["type"] == "/problems/nothing-to-bill"


async def test_a_write_with_the_same_idempotency_key_creates_one_record(client, app_state, flows, admin):
    erp = app_state.demo_systems.erp
    before = len(erp.projects)
    first = await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=keyed(flows, "k-1"))
    second = await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=keyed(flows, "k-1"))
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert len(erp.projects) == before + 1

    other_body = {**NEW_PROJECT, "name": "Something else"}
    reused = await client.post("/gw/erp/v1/projects", json=other_body, headers=keyed(flows, "k-1"))
    assert reused.status_code == 422
    assert reused.json()["type"] == "/problems/idempotency-key-reused"

    # Keys belong to their consumer: another one's same key is a request of its own.
    other = bearer(await fetch_token(client, "other-integration", "other-secret"))
    theirs = await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=keyed(other, "k-1"))
    assert theirs.json()["id"] != first.json()["id"]

    # A failed attempt is not remembered: the retry with the same key does the work.
    await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 1}, headers=admin)
    failed = await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=keyed(flows, "k-2"))
    retried = await client.post("/gw/erp/v1/projects", json=NEW_PROJECT, headers=keyed(flows, "k-2"))
    assert (failed.status_code, retried.status_code) == (503, 201)
    assert len(erp.projects) == before + 3


async def test_fail_next_fails_the_next_calls_through_the_gateway_and_counts_them(client, admin, flows):
    injected = await client.put(
        "/api/v1/demo/systems/hcm/faults", json={"fail_next": 2, "status": 503}, headers=admin
    )
    assert injected.status_code == 200, injected.text
    assert injected.json()["faults"] == {"fail_next": 2, "status": 503, "delay_ms": 0}

    answers = [await client.get("/gw/hcm/v1/employees/e-100", headers=flows) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[0].headers["content-type"].startswith("application/problem+json")
    assert answers[0].json()["type"] == "/problems/injected-fault"

    seen = await client.get("/api/v1/demo/systems/hcm", headers=admin)
    assert seen.status_code == 200
    assert seen.json() == {
        "name": "hcm",
        "calls": {"getEmployee": 3},
        "faults": {"fail_next": 0, "status": 503, "delay_ms": 0},
    }

    every = (await client.get("/api/v1/demo/systems", headers=admin)).json()
    assert [s["name"] for s in every] == ["crm", "erp", "psa", "hcm"]
    assert every[3]["calls"] == {"getEmployee": 3}

    await client.put("/api/v1/demo/systems/hcm/faults", json={"fail_next": 1, "status": 429}, headers=admin)
    assert (await client.get("/gw/hcm/v1/people?role=analyst", headers=flows)).status_code == 429
    assert (await client.get("/gw/hcm/v1/people?role=analyst", headers=flows)).status_code == 200


async def test_faults_are_for_admins_only(client, flows):
    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    publisher = bearer(await fetch_token(client, "delivery-ci", "delivery-secret"))
    for headers in (reader, publisher, flows):
        put = await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 5}, headers=headers)
        get = await client.get("/api/v1/demo/systems/erp", headers=headers)
        listed = await client.get("/api/v1/demo/systems", headers=headers)
        assert (put.status_code, get.status_code, listed.status_code) == (403, 403, 403)
        assert put.headers["content-type"].startswith("application/problem+json")
    anonymous = await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 5})
    assert anonymous.status_code == 401
    assert client.app.state.demo_systems.erp.fault.fail_next == 0


async def test_fault_changes_are_audited(client, admin):
    await client.put("/api/v1/demo/systems/psa/faults", json={"delay_ms": 5}, headers=admin)
    await client.put("/api/v1/demo/systems/psa/faults", json={}, headers=admin)
    audit = await client.get("/api/v1/audit", params={"subject": "demo/systems/psa"}, headers=admin)
    assert [e["action"] for e in audit.json()["items"]][:2] == ["demo.fault.set", "demo.fault.set"]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/api/v1/demo/systems/billing/faults", {"fail_next": 1}, 404),
        ("/api/v1/demo/systems/erp/faults", {"fail_next": -1}, 400),
        ("/api/v1/demo/systems/erp/faults", {"status": 200}, 400),
        ("/api/v1/demo/systems/erp/faults", {"delay_ms": 3_600_000}, 400),
        ("/api/v1/demo/systems/erp/faults", {"fail_next": 1, "retry": True}, 400),
    ],
)
async def test_bad_fault_requests_are_refused(client, admin, path, body, status):
    response = await client.put(path, json=body, headers=admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert client.app.state.demo_systems.erp.fault.fail_next == 0


async def test_without_the_demo_there_are_no_demo_systems(tmp_path: Path):
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/plain.db")
    async with AsyncTestClient(create_app(settings)) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        response = await client.get("/api/v1/demo/systems/erp", headers=admin)
        assert response.status_code == 404
        assert client.app.state.demo_systems is None


@pytest.fixture
def app_state(client: AsyncTestClient) -> Any:
    return client.app.state
