"""Scopes belong to the team whose API declares them: a client gets another team's only by its grant.

`finance-ci` is a member of `ledger`, which owns the `ledger` API (scopes `ledger:read`, `ledger:write`);
`delivery-ci` is a member of `growth`, whose `growth-bot` asks for them. `finance` owns the demo's
`invoices` and has no members: only an admin decides for it.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from registry import grants
from registry.bootstrap import SYSTEM
from registry.db.models import Api, ApiVersion, OutboxEvent, VersionScope
from registry.demo import FLOWS_CLIENT
from tests.gateway.conftest import settled
from tests.registry.support import bearer, fetch_token
from tests.samples import JSON_HEADERS, as_json, projects, rescoped

NEW_INVOICE = {"client": "acme", "projectId": "p-1", "periodEnd": "2026-11-30"}
NEW_ENTRY = {"name": "ERP rollout", "client": "acme"}


async def make_team(client, admin, name: str, member: str, secret: str) -> dict[str, str]:
    team = await client.post("/api/v1/teams", json={"name": name, "members": [member]}, headers=admin)
    assert team.status_code == 201, team.text
    return bearer(await fetch_token(client, member, secret))


async def publish(client, headers, api: str, doc: dict, owner: str, **params: str):
    return await client.post(
        f"/api/v1/apis/{api}/versions",
        content=as_json(doc),
        params={"owner": owner, **params},
        headers={**headers, **JSON_HEADERS},
    )


@pytest.fixture
async def growth(client, admin) -> dict[str, str]:
    return await make_team(client, admin, "growth", "delivery-ci", "delivery-secret")


@pytest.fixture
async def ledger(app, client, admin) -> dict[str, str]:
    """The `ledger` team's member, after publishing its API behind a mock adapter."""
    owner = await make_team(client, admin, "ledger", "finance-ci", "finance-secret")
    published = await publish(client, owner, "ledger", rescoped(projects(), "ledger"), "ledger")
    assert published.status_code == 201, published.text
    bound = await client.put("/api/v1/apis/ledger/adapter", json={"kind": "mock"}, headers=owner)
    assert bound.status_code == 200, bound.text
    await settled(app)
    return owner


async def register(client, headers, client_id: str, team: str, scopes: list[str]):
    return await client.post(
        "/api/v1/clients",
        json={"client_id": client_id, "name": client_id, "team": team, "scopes": scopes},
        headers=headers,
    )


async def ask(client, headers, scopes: list[str], api: str = "ledger", client_id: str = "growth-bot"):
    return await client.post(
        f"/api/v1/apis/{api}/access-requests",
        json={"client_id": client_id, "scopes": scopes, "reason": "nightly sync of projects"},
        headers=headers,
    )


async def test_a_team_cannot_give_its_client_another_teams_scope(client, growth):
    registered = await register(client, growth, "growth-bot", "growth", ["invoices:write"])
    if registered.status_code == 201:
        # What the attack achieved before scopes had owners: a token that writes another team's invoices.
        token = await fetch_token(client, "growth-bot", registered.json()["client_secret"], "invoices:write")
        through = await client.post("/gw/invoices/v1/invoices", json=NEW_INVOICE, headers=bearer(token))
        assert through.status_code == 403, f"another team's write operation answered {through.status_code}"
    assert registered.status_code == 403, registered.text
    problem = registered.json()
    assert problem["type"] == "/problems/scope-not-owned"
    assert "invoices:write" in problem["detail"] and "finance" in problem["detail"]
    assert problem["errors"][0]["pointer"] == "/scopes/0"
    assert "/api/v1/apis/invoices/access-requests" in problem["errors"][0]["message"]


async def test_a_team_gives_its_own_scopes_but_no_unknown_ones(client, growth, ledger):
    own = await register(client, ledger, "ledger-bot", "ledger", ["ledger:read", "ledger:write"])
    assert own.status_code == 201, own.text
    unknown = await register(client, growth, "growth-bot", "growth", ["growth:read"])
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"] == [
        {"pointer": "/scopes/0", "message": "no published API declares growth:read"}
    ]
    mixed = await register(client, ledger, "ledger-2", "ledger", ["ledger:read", "invoices:read"])
    assert (mixed.status_code, mixed.json()["errors"][0]["pointer"]) == (403, "/scopes/1")


async def test_a_team_cannot_claim_another_teams_scope_by_declaring_it(client, growth, ledger):
    claim = await publish(client, growth, "growth", rescoped(projects(), "ledger"), "growth")
    assert claim.status_code == 409, claim.text
    problem = claim.json()
    assert problem["type"] == "/problems/scope-taken"
    assert "ledger:read" in problem["detail"] and "ledger:write" in problem["detail"]
    # A draft may say anything, but it cannot be released while another team owns the scopes.
    draft = await publish(client, growth, "growth", rescoped(projects(), "ledger"), "growth", draft="true")
    assert draft.status_code == 201, draft.text
    release = await client.post("/api/v1/apis/growth/versions/1.0.0/release", headers=growth)
    assert (release.status_code, release.json()["type"]) == (409, "/problems/scope-taken")
    refused = await register(client, growth, "growth-bot", "growth", ["ledger:write"])
    assert refused.status_code == 403


async def test_grant_and_revoke_decide_what_the_clients_tokens_open(app, client, admin, growth, ledger):
    registered = await register(client, growth, "growth-bot", "growth", [])
    assert registered.status_code == 201, registered.text
    secret = registered.json()["client_secret"]
    before = bearer(await fetch_token(client, "growth-bot", secret))
    assert (await client.post("/gw/ledger/v1/projects", json=NEW_ENTRY, headers=before)).status_code == 403

    asked = await ask(client, growth, ["ledger:write", "ledger:read"])
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["state"], request["owner"], request["team"]) == ("pending", "ledger", "growth")
    assert request["scopes"] == ["ledger:read", "ledger:write"] and request["requested_by"] == "delivery-ci"
    again = await ask(client, growth, ["ledger:read", "ledger:write"])
    assert (again.status_code, again.json()["id"]) == (200, request["id"])

    url = f"/api/v1/apis/ledger/access-requests/{request['id']}"
    self_approved = await client.post(f"{url}/approve", headers=growth)
    assert self_approved.status_code == 403, self_approved.text
    pending = await client.get(
        "/api/v1/apis/ledger/access-requests", params={"state": "pending"}, headers=ledger
    )
    assert [r["id"] for r in pending.json()["items"]] == [request["id"]]

    approved = await client.post(f"{url}/approve", headers=ledger)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["decided_by"]) == ("approved", "finance-ci")
    assert (await client.post(f"{url}/approve", headers=ledger)).status_code == 409
    held = await client.get("/api/v1/clients/growth-bot", headers=growth)
    assert held.json()["scopes"] == ["ledger:read", "ledger:write"]

    granted = bearer(await fetch_token(client, "growth-bot", secret, "ledger:write"))
    created = await client.post("/gw/ledger/v1/projects", json=NEW_ENTRY, headers=granted)
    assert created.status_code == 201, created.text

    revoked = await client.post(f"{url}/revoke", json={"reason": "sync retired"}, headers=ledger)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["state"], revoked.json()["decision_reason"]) == ("revoked", "sync retired")
    # The token issued while the grant stood loses the scope at once, not when it expires.
    gone = await client.post("/gw/ledger/v1/projects", json=NEW_ENTRY, headers=granted)
    assert gone.status_code == 403, gone.text
    basic = {"grant_type": "client_credentials", "scope": "ledger:write"}
    refused = await client.post("/oauth/token", data=basic, auth=("growth-bot", secret))
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_scope")
    assert (await client.get("/api/v1/clients/growth-bot", headers=growth)).json()["scopes"] == []

    log = await client.get("/api/v1/audit", params={"subject": url.removeprefix("/api/v1/")}, headers=admin)
    assert [e["action"] for e in log.json()["items"]] == [
        "access.revoked",
        "access.approved",
        "access.requested",
    ]
    assert [e["actor"] for e in log.json()["items"]] == ["finance-ci", "finance-ci", "delivery-ci"]
    changes = await client.get("/api/v1/audit", params={"subject": "clients/growth-bot"}, headers=admin)
    assert [(e["action"], e["after"]["scopes"]) for e in changes.json()["items"]] == [
        ("client.scopes-changed", []),
        ("client.scopes-changed", ["ledger:read", "ledger:write"]),
        ("client.registered", []),
    ]
    await settled(app)
    async with app.state.sessionmaker() as session:
        events = (
            await session.execute(select(OutboxEvent.topic, OutboxEvent.payload).order_by(OutboxEvent.id))
        ).all()
    # Those of this story: the demo registers a client of its own at start.
    topics = [t for t, payload in events if payload.get("client_id") != FLOWS_CLIENT]
    assert [t for t in topics if t.startswith(("access.", "client."))] == [
        "client.registered",
        "access.requested",
        "client.updated",
        "access.approved",
        "client.updated",
        "access.revoked",
    ]


async def test_a_rejected_request_grants_nothing(client, admin, growth, ledger):
    await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["ledger:write"])).json()
    url = f"/api/v1/apis/ledger/access-requests/{request['id']}"
    assert (await client.post(f"{url}/reject", headers=growth)).status_code == 403
    rejected = await client.post(f"{url}/reject", json={"reason": "use the read scope"}, headers=ledger)
    assert (rejected.status_code, rejected.json()["state"]) == (200, "rejected")
    assert (await client.post(f"{url}/approve", headers=ledger)).status_code == 409
    assert (await client.post(f"{url}/revoke", headers=ledger)).status_code == 409
    assert (await client.get("/api/v1/clients/growth-bot", headers=growth)).json()["scopes"] == []
    # Asked again after a rejection, it is a new request.
    anew = await ask(client, growth, ["ledger:write"])
    assert anew.status_code == 201 and anew.json()["id"] != request["id"]
    mine = await client.get("/api/v1/clients/growth-bot/access-requests", headers=growth)
    assert [r["state"] for r in mine.json()["items"]] == ["pending", "rejected"]
    log = await client.get("/api/v1/audit", params={"subject": url.removeprefix("/api/v1/")}, headers=admin)
    assert [e["action"] for e in log.json()["items"]] == ["access.rejected", "access.requested"]


async def test_who_may_ask_and_what(client, admin, growth, ledger):
    await register(client, growth, "growth-bot", "growth", [])
    reserved = await ask(client, growth, ["registry:admin"])
    assert reserved.status_code == 422, reserved.text
    undeclared = await ask(client, growth, ["ledger:delete"])
    assert undeclared.status_code == 422 and "ledger:delete" in undeclared.json()["detail"]
    elsewhere = await ask(client, growth, ["invoices:write"])  # a scope, but not this API's
    assert elsewhere.status_code == 422
    for_another_team = await ask(client, ledger, ["ledger:write"])  # finance-ci is not in growth
    assert for_another_team.status_code == 403
    unknown_client = await ask(client, growth, ["ledger:write"], client_id="nobody")
    assert unknown_client.status_code == 404
    unknown_api = await ask(client, growth, ["ledger:write"], api="nothing")
    assert unknown_api.status_code == 404
    anonymous = await client.get("/api/v1/apis/ledger/access-requests")
    assert anonymous.status_code == 401


async def test_each_side_sees_only_its_requests(client, admin, growth, ledger):
    await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["ledger:read"])).json()
    reader = bearer(await fetch_token(client, "reader", "reader-secret"))
    others = await client.get("/api/v1/apis/ledger/access-requests", headers=reader)
    assert others.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    one = f"/api/v1/apis/ledger/access-requests/{request['id']}"
    assert (await client.get(one, headers=reader)).status_code == 404
    assert (await client.get(one, headers=growth)).status_code == 200
    assert (await client.get(one, headers=ledger)).status_code == 200
    assert (await client.get(one, headers=admin)).status_code == 200
    assert (await client.get("/api/v1/clients/growth-bot", headers=reader)).status_code == 403
    assert (await client.get("/api/v1/clients/growth-bot/access-requests", headers=ledger)).status_code == 403
    assert (await client.get("/api/v1/apis/ledger/access-requests", headers=growth)).json()["total"] == 1


async def test_only_an_admin_grants_a_team_without_members(client, admin, growth):
    """`finance` owns `invoices` and has no members: an admin decides its requests."""
    await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["invoices:write"], api="invoices")).json()
    url = f"/api/v1/apis/invoices/access-requests/{request['id']}"
    assert (await client.post(f"{url}/approve", headers=growth)).status_code == 403
    approved = await client.post(f"{url}/approve", headers=admin)
    assert (approved.status_code, approved.json()["decided_by"]) == (200, "admin")


async def test_a_scope_the_api_no_longer_declares_cannot_be_granted(app, client, growth, ledger):
    await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["ledger:write"])).json()
    reads_only = rescoped(projects("2.0.0"), "ledger")
    del reads_only["paths"]["/projects"]["post"]
    reads_only["components"]["securitySchemes"]["oauth"]["flows"]["clientCredentials"]["scopes"].pop(
        "ledger:write"
    )
    assert (await publish(client, ledger, "ledger", reads_only, "ledger")).status_code == 201
    deprecate = await client.post(
        "/api/v1/apis/ledger/versions/1.0.0/deprecate", json={"sunset": "2099-01-01"}, headers=ledger
    )
    assert deprecate.status_code == 200, deprecate.text
    assert (await client.post("/api/v1/apis/ledger/versions/1.0.0/retire", headers=ledger)).status_code == 200
    url = f"/api/v1/apis/ledger/access-requests/{request['id']}"
    approved = await client.post(f"{url}/approve", headers=ledger)
    assert approved.status_code == 422, approved.text
    assert "no longer declares ledger:write" in approved.json()["detail"]
    assert (await client.post(f"{url}/reject", headers=ledger)).status_code == 200


async def test_the_owner_sees_every_holder_and_takes_its_scopes_back(client, admin, growth, ledger):
    """However a client came by the scopes (an admin gave them, or a client registered before scopes
    had owners kept them), the owner team sees it and can take them back."""
    given = await register(client, admin, "legacy-bot", "growth", ["ledger:write"])
    assert given.status_code == 201, given.text
    legacy = bearer(await fetch_token(client, "legacy-bot", given.json()["client_secret"]))
    await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["ledger:read"])).json()
    url = f"/api/v1/apis/ledger/access-requests/{request['id']}"
    assert (await client.post(f"{url}/approve", headers=ledger)).status_code == 200

    assert (await client.get("/api/v1/apis/ledger/grants", headers=growth)).status_code == 403
    holders = await client.get("/api/v1/apis/ledger/grants", headers=ledger)
    assert holders.json()["items"] == [
        {
            "client_id": "growth-bot",
            "team": "growth",
            "scopes": ["ledger:read"],
            "granted_by": [request["id"]],
        },
        {"client_id": "legacy-bot", "team": "growth", "scopes": ["ledger:write"], "granted_by": []},
    ]
    assert (
        await client.post("/api/v1/apis/ledger/grants/legacy-bot/revoke", headers=growth)
    ).status_code == 403
    for client_id in ("legacy-bot", "growth-bot"):
        taken = await client.post(
            f"/api/v1/apis/ledger/grants/{client_id}/revoke", json={"reason": "review"}, headers=ledger
        )
        assert (taken.status_code, taken.json()["scopes"]) == (200, []), taken.text
    assert (await client.get("/api/v1/apis/ledger/grants", headers=ledger)).json()["items"] == []
    assert (await client.post("/gw/ledger/v1/projects", json=NEW_ENTRY, headers=legacy)).status_code == 403
    assert (await client.get(url, headers=growth)).json()["state"] == "revoked"


async def test_the_issuer_learns_a_grant_from_the_outbox(app, client, growth, ledger):
    """A grant decided on another replica reaches this one's issuer as a `client.updated` event."""
    registered = await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["ledger:write"])).json()
    async with app.state.sessionmaker() as session:  # the decision, without this replica's issuer at hand
        await grants.approve(session, SYSTEM, "ledger", request["id"])
        await session.commit()
    await settled(app)
    token = bearer(
        await fetch_token(client, "growth-bot", registered.json()["client_secret"], "ledger:write")
    )
    assert (await client.post("/gw/ledger/v1/projects", json=NEW_ENTRY, headers=token)).status_code == 201


async def test_a_scope_two_teams_declared_before_ownership_is_granted_by_an_admin(
    app, client, admin, growth, ledger
):
    """Stored before a scope could have only one owner, `invoices` (finance) also declares ledger:write:
    whoever holds it opens both APIs, so neither team alone may hand it out."""
    async with app.state.sessionmaker() as session:
        invoices = await session.scalar(select(Api).where(Api.name == "invoices"))
        version = await session.scalar(select(ApiVersion).where(ApiVersion.api_id == invoices.id))
        session.add(VersionScope(version_id=version.id, scope="ledger:write"))
        await session.commit()
    own = await register(client, ledger, "ledger-bot", "ledger", ["ledger:write"])
    assert (own.status_code, own.json()["type"]) == (403, "/problems/scope-not-owned")
    await register(client, growth, "growth-bot", "growth", [])
    request = (await ask(client, growth, ["ledger:write"])).json()
    url = f"/api/v1/apis/ledger/access-requests/{request['id']}"
    by_owner = await client.post(f"{url}/approve", headers=ledger)
    assert by_owner.status_code == 403 and "finance" in by_owner.json()["detail"]
    assert (await client.post(f"{url}/approve", headers=admin)).status_code == 200
