"""Access requests on each database: `finance` asks for the scopes of `projects`, owned by `delivery`."""

from __future__ import annotations

from tests.registry.support import bearer, fetch_token


async def test_request_approve_and_revoke(client, admin_headers, publisher_headers, published):
    team = await client.post(
        "/api/v1/teams", json={"name": "finance", "members": ["finance-ci"]}, headers=admin_headers
    )
    assert team.status_code == 201, team.text
    finance = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    taken = await client.post(
        "/api/v1/clients",
        json={"client_id": "billing", "name": "Billing", "team": "finance", "scopes": ["projects:read"]},
        headers=finance,
    )
    assert (taken.status_code, taken.json()["type"]) == (403, "/problems/scope-not-owned")
    registered = await client.post(
        "/api/v1/clients",
        json={"client_id": "billing", "name": "Billing", "team": "finance"},
        headers=finance,
    )
    assert registered.status_code == 201, registered.text

    asked = await client.post(
        "/api/v1/apis/projects/access-requests",
        json={"client_id": "billing", "scopes": ["projects:read"], "reason": "invoice lines name projects"},
        headers=finance,
    )
    assert asked.status_code == 201, asked.text
    url = f"/api/v1/apis/projects/access-requests/{asked.json()['id']}"
    listed = await client.get(
        "/api/v1/apis/projects/access-requests", params={"state": "pending"}, headers=publisher_headers
    )
    assert listed.json()["total"] == 1
    assert (await client.post(f"{url}/approve", headers=finance)).status_code == 403
    approved = await client.post(f"{url}/approve", headers=publisher_headers)
    assert (approved.status_code, approved.json()["state"]) == (200, "approved")
    assert (await client.get("/api/v1/clients/billing", headers=finance)).json()["scopes"] == [
        "projects:read"
    ]

    revoked = await client.post(f"{url}/revoke", headers=publisher_headers)
    assert (revoked.status_code, revoked.json()["state"]) == (200, "revoked")
    assert (await client.get("/api/v1/clients/billing", headers=finance)).json()["scopes"] == []
    mine = await client.get("/api/v1/clients/billing/access-requests", headers=finance)
    assert [r["state"] for r in mine.json()["items"]] == ["revoked"]


async def test_handing_an_api_to_a_team_must_not_share_its_scopes(
    client, admin_headers, publisher_headers, published
):
    """Two teams declaring one scope would both open each other's operations: refused."""
    await client.post("/api/v1/teams", json={"name": "finance"}, headers=admin_headers)
    copy = await client.post(
        "/api/v1/apis/projects-copy/versions",
        content=(await client.get("/api/v1/apis/projects/versions/2.0.0", headers=publisher_headers)).content,
        params={"owner": "delivery"},
        headers={**publisher_headers, "Content-Type": "application/json"},
    )
    assert copy.status_code == 201, copy.text
    handed = await client.patch(
        "/api/v1/apis/projects-copy", json={"owner": "finance"}, headers=admin_headers
    )
    assert (handed.status_code, handed.json()["type"]) == (409, "/problems/scope-taken")
    assert (await client.get("/api/v1/apis/projects-copy", headers=admin_headers)).json()[
        "owner"
    ] == "delivery"
