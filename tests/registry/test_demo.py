"""The embedded default starts with the demo contracts, and a restart changes nothing."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.demo import demo_apis
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings


async def test_demo_contracts_are_loaded_once(database_url):
    settings = make_settings(database_url, demo=True)
    async with AsyncTestClient(create_app(settings)) as client:
        headers = bearer(await fetch_token(client, *ADMIN))
        found = (await client.get("/api/v1/search", params={"limit": 100}, headers=headers)).json()
        audit_total = (await client.get("/api/v1/audit", headers=headers)).json()["total"]
        projects = (await client.get("/api/v1/apis/projects", headers=headers)).json()

    expected = {api.name for api in demo_apis()}
    assert {hit["name"] for hit in found["items"]} == expected
    assert projects["latest_version"] == "1.1.0"
    assert projects["sla"]["tier"] == "gold"
    assert projects["layer"] == "system"

    async with AsyncTestClient(create_app(settings)) as client:
        headers = bearer(await fetch_token(client, *ADMIN))
        again = (await client.get("/api/v1/audit", headers=headers)).json()["total"]
        events = await client.get(
            "/api/v1/search", params={"q": "invoice paid", "kind": "asyncapi"}, headers=headers
        )
    assert again == audit_total
    assert [hit["name"] for hit in events.json()["items"]] == ["invoice-events"]
