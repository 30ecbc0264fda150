"""Consumer applications registered through the API get tokens and are throttled as themselves."""

from __future__ import annotations

import base64

from tests.gateway.conftest import settled
from tests.registry.support import bearer, fetch_token
from tests.samples import JSON_HEADERS, as_json, projects, rescoped


async def test_registered_app_calls_the_gateway_as_itself(app, client, admin):
    created = await client.post(
        "/api/v1/clients",
        json={
            "client_id": "payroll-sync",
            "name": "Payroll sync",
            "team": "delivery",
            "scopes": ["projects:read"],
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["scopes"] == ["projects:read"] and len(body["client_secret"]) >= 32

    token = await fetch_token(client, "payroll-sync", body["client_secret"])
    response = await client.get("/gw/projects/v1/projects", headers=bearer(token))
    assert response.status_code == 200
    refused = await client.post(
        "/gw/projects/v1/projects", json={"name": "x", "client": "y"}, headers=bearer(token)
    )
    assert refused.status_code == 403

    wrong = base64.b64encode(b"payroll-sync:guess").decode()
    denied = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {wrong}"}
    )
    assert denied.status_code == 401

    again = await client.post(
        "/api/v1/clients",
        json={"client_id": "payroll-sync", "name": "again", "team": "delivery"},
        headers=admin,
    )
    assert again.status_code == 409
    configured = await client.post(
        "/api/v1/clients", json={"client_id": "billing-app", "name": "x", "team": "delivery"}, headers=admin
    )
    assert configured.status_code == 409
    await settled(app)


async def test_a_team_registers_its_own_apps_but_grants_no_registry_scopes(client, admin):
    team = await client.post(
        "/api/v1/teams", json={"name": "finance-ops", "members": ["delivery-ci"]}, headers=admin
    )
    assert team.status_code == 201, team.text
    member = bearer(await fetch_token(client, "delivery-ci", "delivery-secret"))
    ledger = await client.post(
        "/api/v1/apis/ledger/versions",
        content=as_json(rescoped(projects(), "ledger")),
        params={"owner": "finance-ops"},
        headers={**member, **JSON_HEADERS},
    )
    assert ledger.status_code == 201, ledger.text
    own = await client.post(
        "/api/v1/clients",
        json={
            "client_id": "ledger-bot",
            "name": "Ledger bot",
            "team": "finance-ops",
            "scopes": ["ledger:read"],
        },
        headers=member,
    )
    assert own.status_code == 201, own.text
    escalation = await client.post(
        "/api/v1/clients",
        json={"client_id": "sneaky", "name": "x", "team": "finance-ops", "scopes": ["registry:admin"]},
        headers=member,
    )
    assert escalation.status_code == 403
    other_team = await client.post(
        "/api/v1/clients", json={"client_id": "x-bot", "name": "x", "team": "delivery"}, headers=member
    )
    assert other_team.status_code == 403


async def test_registered_clients_survive_a_restart(tmp_path):
    from litestar.testing import AsyncTestClient

    from registry.app import create_app
    from tests.gateway.conftest import gateway_settings
    from tests.registry.support import ADMIN

    settings = gateway_settings(tmp_path)
    async with AsyncTestClient(create_app(settings)) as first:
        admin = bearer(await fetch_token(first, *ADMIN))
        created = await first.post(
            "/api/v1/clients",
            json={
                "client_id": "nightly",
                "name": "Nightly export",
                "team": "delivery",
                "scopes": ["projects:read"],
            },
            headers=admin,
        )
        secret = created.json()["client_secret"]
    async with AsyncTestClient(create_app(settings)) as second:
        token = await fetch_token(second, "nightly", secret)
        assert (await second.get("/gw/projects/v1/projects", headers=bearer(token))).status_code == 200
