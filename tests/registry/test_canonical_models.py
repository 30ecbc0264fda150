"""Canonical models through the real app: a steward team publishes `client`, a system API declares it
with `x-canonical`, its dependents are listed, and a breaking change names them and tells their owners."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from contracts.events import EventSchemaCatalog, compile_event_schemas
from contracts.loading import load_document
from registry.api.event_schema import EVENTS_CONTRACT
from registry.db.engine import create_engine, session_factory
from registry.db.models import OutboxEvent
from registry.settings import Settings
from tests.loopback import serving
from tests.registry.support import bearer, fetch_token, make_settings
from tests.registry.test_webhook_subscriptions import hook, receiver, subscribe, until
from tests.samples import JSON_HEADERS, as_json, client_model

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def hook_base():
    with serving(receiver) as base:
        yield base


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url, webhook_first_retry_seconds=0.05, webhook_attempts=3, public_catalog=True
    )


def crm(version: str = "1.0.0", client: Doc | None = None, declared: str = "client@^1") -> Doc:
    schema = client or {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRM", "version": version},
        "paths": {
            "/clients/{id}": {
                "get": {
                    "operationId": "getClient",
                    "security": [],
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "responses": {
                        "200": {
                            "description": "The client",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Client"}}
                            },
                        }
                    },
                }
            }
        },
        "components": {"schemas": {"Client": {"x-canonical": declared, **schema}}},
    }


async def publish(
    client: AsyncTestClient, headers: dict, api: str, doc: Doc, version: str, **params: str
) -> Any:
    return await client.post(
        f"/api/v1/apis/{api}/versions",
        content=as_json(doc),
        params={"version": version, **params},
        headers={**headers, **JSON_HEADERS},
    )


@pytest.fixture
async def teams(client: AsyncTestClient, admin_headers: dict) -> dict[str, dict]:
    """`delivery` stewards the canonical `client`; the `sales` team (`sales-ci`) owns the CRM."""
    for name, member in (("delivery", "delivery-ci"), ("sales", "sales-ci")):
        made = await client.post(
            "/api/v1/teams", json={"name": name, "members": [member]}, headers=admin_headers
        )
        assert made.status_code == 201, made.text
    steward = bearer(await fetch_token(client, "delivery-ci", "delivery-secret"))
    created = await client.post(
        "/api/v1/apis",
        json={"name": "client", "owner": "delivery", "title": "Client", "layer": "canonical"},
        headers=steward,
    )
    assert created.status_code == 201, created.text
    assert created.json()["compatibility"] == "FULL"
    first = await publish(client, steward, "client", client_model(), "1.0.0")
    assert first.status_code == 201, first.text
    assert first.json()["kind"] == "json-schema"
    return {"steward": steward, "sales": admin_headers}


async def test_a_dependent_is_listed_and_a_breaking_change_names_it_and_tells_its_owner(
    client, admin_headers, teams, hook_base, settings
):
    steward, sales = teams["steward"], teams["sales"]
    made = await client.post(
        "/api/v1/apis",
        json={"name": "crm", "owner": "sales", "title": "CRM", "layer": "system"},
        headers=sales,
    )
    assert made.status_code == 201, made.text
    published = await publish(client, sales, "crm", crm(), "1.0.0")
    assert published.status_code == 201, published.text
    drafted = await publish(client, sales, "crm", crm("1.1.0"), "1.1.0", draft="true")
    assert drafted.status_code == 201, drafted.text

    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    listed = await client.get("/api/v1/apis/client/dependents", headers=reader)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "canonical": "client",
        "items": [
            {
                "api": "crm",
                "owner": "sales",
                "version": "1.0.0",
                "state": "published",
                "range": "^1",
                "pointers": ["/components/schemas/Client"],
                "in_range": None,
            }
        ],
    }  # the draft promised nothing: not a dependent
    system = await client.get("/api/v1/apis/crm/dependents", headers=reader)
    assert (system.status_code, system.json()["items"]) == (200, [])
    assert (await client.get("/api/v1/apis/nothing/dependents", headers=reader)).status_code == 404
    assert (await client.get("/api/v1/apis/client/dependents")).status_code == 401

    webhook = await subscribe(client, sales, team="sales", url=hook(hook_base)[0], topics=["canonical.*"])
    # The steward's own subscription hears its contract events, not its dependents' notices.
    stewards = await subscribe(
        client, steward, team="delivery", url=hook(hook_base)[0], topics=["canonical.*", "contract.*"]
    )
    breaking = client_model()
    breaking["properties"]["name"] = {"type": "string", "maxLength": 100}  # narrower: writers break

    # A minor version with a breaking change is refused; the verdict names who it would reach.
    checked = await client.post(
        "/api/v1/apis/client/compatibility",
        content=as_json(breaking),
        params={"version": "1.1.0"},
        headers={**steward, **JSON_HEADERS},
    )
    assert checked.status_code == 200, checked.text
    verdict = checked.json()
    assert verdict["verdict"] == "incompatible" and verdict["compatibility"] == "FULL"
    assert [c["id"] for c in verdict["offending"]] == ["model-property-max-length-added"]
    assert [(d["api"], d["version"], d["in_range"]) for d in verdict["dependents"]] == [
        ("crm", "1.0.0", True)
    ]
    refused = await publish(client, steward, "client", breaking, "1.1.0")
    assert refused.status_code == 422, refused.text

    major = await publish(client, steward, "client", breaking, "2.0.0")
    assert major.status_code == 201, major.text
    assert major.json()["breaking"] is True

    async with session_factory_for(settings) as session:
        rows = (
            await session.scalars(select(OutboxEvent).where(OutboxEvent.topic == "canonical.breaking-change"))
        ).all()
    [event] = [row.payload for row in rows]
    assert event == {
        "canonical": "client",
        "version": "2.0.0",
        "base_version": "1.0.0",
        "api": "crm",
        "owner": "sales",
        "changes": ["model-property-max-length-added"],
        "dependents": [
            {"version": "1.0.0", "range": "^1", "pointers": ["/components/schemas/Client"], "in_range": False}
        ],
    }
    assert events_contract().violations("canonical.breaking-change", event) == []
    sales_url = f"/api/v1/teams/sales/webhooks/{webhook['webhook']['id']}/deliveries"
    found: list[dict] = []

    async def delivered() -> bool:
        found[:] = (await client.get(sales_url, headers=sales)).json()["items"]
        return bool(found) and all(item["state"] == "delivered" for item in found)

    await until(delivered, "the dependent's owner told")
    assert [item["topic"] for item in found] == ["canonical.breaking-change"]
    steward_url = f"/api/v1/teams/delivery/webhooks/{stewards['webhook']['id']}/deliveries"
    heard = (await client.get(steward_url, headers=steward)).json()["items"]
    assert "canonical.breaking-change" not in {item["topic"] for item in heard}

    # A breaking draft tells the dependents of its base when it is released, not when drafted.
    # (Produced, its `name` must now keep the model's `maxLength`: the check reads 2.0.0.)
    fitted = {
        "type": "object",
        "required": ["id", "name"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string", "maxLength": 100}},
    }
    moved = await publish(client, sales, "crm", crm("2.0.0", fitted, declared="client@^2"), "2.0.0")
    assert moved.status_code == 201, moved.text
    tighter = copy.deepcopy(breaking)
    tighter["properties"]["name"]["maxLength"] = 50
    drafted = await publish(client, steward, "client", tighter, "3.0.0", draft="true")
    assert drafted.status_code == 201, drafted.text
    assert await breaking_notices(settings) == [("crm", "2.0.0", ["1.0.0"])]
    released = await client.post("/api/v1/apis/client/versions/3.0.0/release", headers=steward)
    assert released.status_code == 200, released.text
    assert await breaking_notices(settings) == [("crm", "2.0.0", ["1.0.0"]), ("crm", "3.0.0", ["2.0.0"])]


async def test_publishing_checks_each_declaration_against_the_published_model(client, admin_headers, teams):
    sales = teams["sales"]
    # `segment` is no property of client 1.0.0; the produced projection leaves the required `name` out.
    wrong = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}, "segment": {}}}
    refused = await publish(client, sales, "crm", crm(client=wrong), "1.0.0", owner="sales")
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"].endswith("/ruleset-violation"), problem
    messages = sorted(e["message"] for e in problem["errors"])
    assert {e["pointer"] for e in problem["errors"]} == {"/components/schemas/Client"}
    assert messages == [
        "canonical-projection: client@1.0.0 `name`: property removed "
        "(produced here; the canonical model is the base)",
        "canonical-projection: client@1.0.0 `segment`: not a property of the canonical model",
    ]
    beyond = await publish(client, sales, "crm", crm(declared="client@^2"), "1.0.0", owner="sales")
    assert beyond.status_code == 422
    assert "no published version of client is in range ^2" in beyond.text
    unknown = await publish(client, sales, "crm", crm(declared="customer@^1"), "1.0.0", owner="sales")
    assert unknown.status_code == 422 and "no canonical model 'customer'" in unknown.text

    # A team's ruleset sets the level: as a warning, the mismatch no longer refuses the publish.
    relaxed = "extends: charter:minimal\nrules:\n  canonical-projection: warning\n"
    stored = await client.put(
        "/api/v1/teams/sales/ruleset", content=relaxed, headers={**sales, "Content-Type": "application/yaml"}
    )
    assert stored.status_code in (200, 201), stored.text
    accepted = await publish(client, sales, "crm", crm(client=wrong), "1.0.0", owner="sales")
    assert accepted.status_code == 201, accepted.text


async def test_a_canonical_api_holds_json_schema_and_nothing_else(client, admin_headers, teams):
    steward = teams["steward"]
    openapi = await publish(client, steward, "client", crm(), "1.1.0")
    assert openapi.status_code == 422, openapi.text
    stray = await publish(client, steward, "projects", client_model(), "1.0.0", owner="delivery")
    assert stray.status_code == 201, stray.text  # a first publish creates a canonical API for it
    shown = await client.get("/api/v1/apis/projects", headers=steward)
    assert (shown.json()["layer"], shown.json()["compatibility"]) == ("canonical", "FULL")
    system = await client.post(
        "/api/v1/apis",
        json={"name": "ledger", "owner": "delivery", "title": "Ledger", "layer": "system"},
        headers=steward,
    )
    assert system.status_code == 201
    misplaced = await publish(client, steward, "ledger", client_model(), "1.0.0")
    assert misplaced.status_code == 422 and "layer `canonical`" in misplaced.text
    full = await client.patch("/api/v1/apis/ledger", json={"compatibility": "FULL"}, headers=steward)
    assert full.status_code == 422, full.text
    found = await client.get("/api/v1/search", params={"layer": "canonical"}, headers=steward)
    assert sorted(hit["name"] for hit in found.json()["items"]) == ["client", "projects"]
    page = await client.get("/apis/client/versions/1.0.0", headers=steward)
    assert page.status_code == 200 and "vatId" in page.text and "Dependents" in page.text


async def breaking_notices(settings: Settings) -> list[tuple[str, str, list[str]]]:
    """(dependent API, model version, dependent versions) of each breaking-change event, in order."""
    async with session_factory_for(settings) as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.topic == "canonical.breaking-change")
            .order_by(OutboxEvent.id)
        )
        return [
            (e.payload["api"], e.payload["version"], [d["version"] for d in e.payload["dependents"]])
            for e in rows.all()
        ]


def events_contract() -> EventSchemaCatalog:
    doc = load_document(EVENTS_CONTRACT.read_bytes(), media_type="application/yaml")
    return EventSchemaCatalog([compile_event_schemas("charter-events", doc)])


class session_factory_for:
    """A session on the app's database, beside the app."""

    def __init__(self, settings: Settings) -> None:
        self._engine = create_engine(settings.database_url)
        self._session = session_factory(self._engine)()

    async def __aenter__(self):
        return self._session

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()
        await self._engine.dispose()
