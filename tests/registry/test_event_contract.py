"""Charter's own events keep the AsyncAPI contract it serves and publishes as `charter-events`."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import msgspec
from litestar.testing import AsyncTestClient

from contracts.events import EventSchemaCatalog, compile_event_schemas
from contracts.loading import load_document
from gateway.flows.declaration import RetryPolicy
from registry import usage
from registry.api.event_schema import EVENTS_CONTRACT
from registry.app import create_app
from registry.demo.flows import FLOWS
from registry.events import Event
from registry.slo import burn_alerts
from tests.gateway.conftest import settled
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects

CONSUMER = {
    "client_id": "back-office",
    "client_secret": "back-office-secret",
    "scopes": ["lead-to-project:run", "hcm:read"],
}
QUICK = RetryPolicy(attempts=2, backoff_seconds=0.01, jitter=0, timeout_seconds=10)
# Topics Charter announces itself; the demo flows' business events (`delivery.project.created`) are theirs.
OWN_PREFIXES = ("contract.", "api.", "consumer.", "client.", "access.", "flow.run.", "slo.")


def contract() -> EventSchemaCatalog:
    doc = load_document(EVENTS_CONTRACT.read_bytes(), media_type="application/yaml")
    return EventSchemaCatalog([compile_event_schemas("charter-events", doc)])


async def test_every_event_of_a_day_at_the_registry_keeps_the_contract(tmp_path):
    flows = {
        f.name: dataclasses.replace(f, steps=tuple(dataclasses.replace(s, retry=QUICK) for s in f.steps))
        for f in FLOWS
    }
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/charter.db", demo=True, clients_json=json.dumps([*CLIENTS, CONSUMER])
    )
    app = create_app(settings, flows=flows)
    seen: list[Event] = []

    async def collect(item: Event) -> None:
        seen.append(item)

    app.state.bus.subscribe("", collect)
    async with AsyncTestClient(app) as client:
        admin = {**bearer(await fetch_token(client, *ADMIN)), **JSON_HEADERS}

        async def ok(response, status: int = 200):
            assert response.status_code == status, response.text
            return response.json()

        served = await client.get("/schema/asyncapi.yaml")
        assert served.status_code == 200
        assert served.content == EVENTS_CONTRACT.read_bytes()
        listed = await ok(await client.get("/api/v1/apis/charter-events", headers=admin))
        assert listed["name"] == "charter-events"

        await ok(
            await client.post(
                "/api/v1/teams", json={"name": "ledger-team", "members": ["finance-ci"]}, headers=admin
            ),
            201,
        )
        await ok(
            await client.post(
                "/api/v1/apis/ledger/versions",
                content=as_json(projects()),
                params={"owner": "delivery"},
                headers=admin,
            ),
            201,
        )
        breaking = projects("1.1.0")
        del breaking["paths"]["/projects/{projectId}"]
        await ok(
            await client.post(
                "/api/v1/apis/ledger/versions",
                content=as_json(breaking),
                params={"force": "true"},
                headers=admin,
            ),
            201,
        )
        await ok(
            await client.post(
                "/api/v1/apis/ledger/versions",
                content=as_json(projects("1.2.0")),
                params={"draft": "true"},
                headers=admin,
            ),
            201,
        )
        await ok(
            await client.post(
                "/api/v1/apis/ledger/versions/1.0.0/deprecate",
                json={"sunset": "2030-01-01", "replacement": "1.1.0", "reason": "moved"},
                headers=admin,
            )
        )
        await ok(await client.post("/api/v1/apis/ledger/versions/1.0.0/retire", json={}, headers=admin))
        await ok(await client.patch("/api/v1/apis/ledger", json={"title": "Ledger"}, headers=admin))
        await ok(
            await client.post(
                "/api/v1/apis/ledger/consumers",
                json={
                    "consumer": "books",
                    "team": "delivery",
                    "versions": "^1",
                    "operations": ["listProjects"],
                },
                headers=admin,
            ),
            201,
        )
        await ok(
            await client.post(
                "/api/v1/clients",
                json={"client_id": "books", "name": "Books", "team": "ledger-team"},
                headers=admin,
            ),
            201,
        )
        url = "/api/v1/apis/ledger/access-requests"
        asked = await ok(
            await client.post(
                url,
                json={"client_id": "books", "scopes": ["projects:read"], "reason": "lines"},
                headers=admin,
            ),
            201,
        )
        await ok(await client.post(f"{url}/{asked['id']}/approve", json={}, headers=admin))
        await ok(await client.post(f"{url}/{asked['id']}/revoke", json={}, headers=admin))
        again = await ok(
            await client.post(url, json={"client_id": "books", "scopes": ["projects:write"]}, headers=admin),
            201,
        )
        await ok(await client.post(f"{url}/{again['id']}/reject", json={"reason": "no"}, headers=admin))

        await ok(
            await client.put(
                "/api/v1/apis/lead-to-project/adapter",
                json={"kind": "flow", "flow": "lead-to-project"},
                headers=admin,
            )
        )
        await settled(app)
        consumer = bearer(await fetch_token(client, "back-office", "back-office-secret"))
        won = await client.post("/gw/lead-to-project/v1/opportunities/opp-1001/won", headers=consumer)
        assert won.status_code == 201, won.text
        refused = await client.post("/gw/lead-to-project/v1/opportunities/opp-1002/won", headers=consumer)
        assert refused.status_code == 409, refused.text
        # HCM answers 5xx to one call in two: its error budget burns, and the registry says so.
        await ok(
            await client.put(
                "/api/v1/demo/systems/hcm/faults", json={"fail_next": 2, "status": 503}, headers=admin
            )
        )
        for _ in range(4):
            await client.get("/gw/hcm/v1/employees/e-100", headers=consumer)
        gateway = app.state.gateway
        await usage.flush(app.state.sessionmaker, gateway.usage, gateway.service_levels)
        assert await burn_alerts.evaluate(app.state.sessionmaker) == 2
        for _ in range(500):
            if {"flow.run.succeeded", "flow.run.failed", "access.rejected", "slo.burn"} <= {
                e.topic for e in seen
            }:
                break
            await asyncio.sleep(0.02)

    catalog = contract()
    own = [e for e in seen if e.topic.startswith(OWN_PREFIXES)]
    assert {e.topic for e in own} >= {
        "contract.published",
        "contract.drafted",
        "contract.deprecated",
        "contract.retired",
        "api.updated",
        "consumer.registered",
        "client.registered",
        "client.updated",
        "access.requested",
        "access.approved",
        "access.revoked",
        "access.rejected",
        "flow.run.succeeded",
        "flow.run.failed",
        "slo.burn",
    }
    assert any("forced" in e.payload for e in own if e.topic == "contract.published")
    problems = {
        f"{e.topic} #{e.id}": catalog.violations(e.topic, msgspec.to_builtins(e.payload))
        for e in own
        if not catalog.covers(e.topic) or catalog.violations(e.topic, msgspec.to_builtins(e.payload))
    }
    assert problems == {}
