"""Severity policies in the registry: who sets them, the audit log, and publish judging with them;
the changes endpoint paging its groups."""

from __future__ import annotations

from typing import Any

from tests.registry.support import bearer, fetch_token
from tests.samples import JSON_HEADERS, as_json, projects

API = "/api/v1/apis/projects"
GLOBAL = "/api/v1/diff-policies/global"
# The `client` property of `Project` gets an enum: a breaking change of the request body.
RESTRICTED = "request-property-enum-added"


def with_client_enum(version: str) -> dict[str, Any]:
    doc = projects(version)
    doc["components"]["schemas"]["Project"]["properties"]["client"]["enum"] = ["acme", "globex"]
    return doc


async def publish(client, headers, doc: dict[str, Any]):
    return await client.post(f"{API}/versions", content=as_json(doc), headers={**headers, **JSON_HEADERS})


async def test_the_global_policy_is_an_admins_and_an_apis_its_teams(
    client, admin_headers, publisher_headers, reader_headers, published
):
    body = {"severity": {RESTRICTED: "warning"}, "open_enums": True}
    assert (await client.put(GLOBAL, json=body, headers=publisher_headers)).status_code == 403
    stored = await client.put(GLOBAL, json=body, headers=admin_headers)
    assert stored.status_code == 200, stored.text
    assert (stored.json()["scope"], stored.json()["policy"]) == ("global", body)
    assert (await client.get(GLOBAL, headers=reader_headers)).json()["policy"] == body

    own = {"severity": {"api-operation-id-changed": "error"}, "open_enums": False}
    outsider = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    assert (await client.put(f"{API}/diff-policy", json=own, headers=outsider)).status_code == 403
    assert (await client.put(f"{API}/diff-policy", json=own, headers=reader_headers)).status_code == 403
    assert (await client.put(f"{API}/diff-policy", json=own, headers=publisher_headers)).status_code == 200

    effective = await client.get(f"{API}/diff-policy/effective", headers=reader_headers)
    assert effective.json() == {
        "api": "projects",
        "policy": {
            "severity": {RESTRICTED: "warning", "api-operation-id-changed": "error"},
            "open_enums": False,
        },
        "scopes": ["global", "api:projects"],
    }
    assert (await client.delete(f"{API}/diff-policy", headers=outsider)).status_code == 403
    assert (await client.delete(f"{API}/diff-policy", headers=publisher_headers)).status_code == 204
    removed = await client.get(f"{API}/diff-policy", headers=reader_headers)
    assert removed.status_code == 200
    assert removed.json() == {
        "scope": "api:projects", "policy": {},
        "stored": False, "updated_at": None, "updated_by": None,
    }  # fmt: skip
    # DELETE is idempotent: nothing stored, nothing to do, nothing audited.
    assert (await client.delete(f"{API}/diff-policy", headers=publisher_headers)).status_code == 204
    assert (await client.delete(f"{API}/diff-policy", headers=outsider)).status_code == 403

    log = (await client.get("/api/v1/audit", headers=admin_headers)).json()["items"]
    actions = [(e["action"], e["subject"], e["actor"]) for e in log if e["action"].startswith("diff-policy")]
    assert actions == [
        ("diff-policy.deleted", "diff-policies/api:projects", "delivery-ci"),
        ("diff-policy.updated", "diff-policies/api:projects", "delivery-ci"),
        ("diff-policy.updated", "diff-policies/global", "admin"),
    ]


async def test_a_policy_naming_an_unknown_rule_is_refused_with_its_pointer(client, admin_headers, published):
    response = await client.put(GLOBAL, json={"severity": {"no-such-rule": "info"}}, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["pointer"] for e in response.json()["errors"]] == ["/severity/no-such-rule"]
    for body in ({"levels": {}}, {"open_unions": 0}, {"severity": {"api-deprecated": "fatal"}}):
        refused = await client.put(GLOBAL, json=body, headers=admin_headers)
        assert refused.status_code == 400, (body, refused.text)
    assert (await client.get(GLOBAL, headers=admin_headers)).json()["stored"] is False  # nothing was stored


async def test_publish_judges_with_the_apis_policy_and_marks_what_it_changed(
    client, publisher_headers, reader_headers, published
):
    assert (await publish(client, publisher_headers, with_client_enum("2.1.0"))).status_code == 422
    policy = {"severity": {RESTRICTED: "warning"}}
    assert (await client.put(f"{API}/diff-policy", json=policy, headers=publisher_headers)).status_code == 200
    dry_run = await client.post(
        f"{API}/compatibility",
        content=as_json(with_client_enum("2.1.0")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    assert dry_run.json()["verdict"] == "compatible", dry_run.text
    accepted = await publish(client, publisher_headers, with_client_enum("2.0.1"))
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["breaking"], accepted.json()["required_bump"]) == (False, "patch")

    changes = (await client.get(f"{API}/versions/2.0.1/changes", headers=reader_headers)).json()
    (group,) = changes["groups"]
    assert (group["id"], group["level"], group["policy"]) == (
        RESTRICTED,
        "warning",
        "error → warning by policy",
    )
    assert group["message"] == "`Project.client`: values restricted to an enum"
    assert group["operations"] == ["POST /projects"]


def many_changes(version: str) -> dict[str, Any]:
    """Five changes at five places: four new paths and a new property of a shared schema."""
    doc = projects(version)
    for name in ("a", "b", "c", "d"):
        doc["paths"][f"/{name}"] = {"get": {"responses": {"200": {"description": "ok"}}}}
    doc["components"]["schemas"]["Project"]["properties"]["budget"] = {"type": "number"}
    return doc


async def test_the_changes_endpoint_pages_the_groups(client, publisher_headers, reader_headers, published):
    assert (await publish(client, publisher_headers, many_changes("2.1.0"))).status_code == 201
    pages, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get(f"{API}/versions/2.1.0/changes", params=params, headers=reader_headers)
        ).json()
        pages.append([g["message"] for g in page["groups"]])
        assert (page["total_groups"], page["total_findings"]) == (5, 5)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    messages = [m for p in pages for m in p]
    assert len(set(messages)) == 5 and "`Project.budget`: property added" in messages
    between = await client.get(
        f"{API}/versions/2.1.0/changes", params={"from": "1.0.0", "limit": "200"}, headers=reader_headers
    )
    assert between.json()["total_groups"] == 5 and between.json()["next_cursor"] is None
    for bad in ({"limit": "201"}, {"limit": "0"}, {"cursor": "-1"}, {"cursor": "12345678"}):
        response = await client.get(f"{API}/versions/2.1.0/changes", params=bad, headers=reader_headers)
        assert response.status_code == 400, (bad, response.text)


async def test_a_rule_turned_off_is_neither_judged_nor_stored_and_the_dry_run_counts_it(
    client, publisher_headers, reader_headers, published
):
    policy = {"severity": {RESTRICTED: "off"}}
    assert (await client.put(f"{API}/diff-policy", json=policy, headers=publisher_headers)).status_code == 200
    dry_run = await client.post(
        f"{API}/compatibility",
        content=as_json(with_client_enum("2.0.1")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    body = dry_run.json()
    assert (body["verdict"], body["required_bump"], body["suppressed"]) == (
        "compatible",
        "none",
        {RESTRICTED: 1},
    )
    assert body["changes"] == [] and body["groups"] == []
    accepted = await publish(client, publisher_headers, with_client_enum("2.0.1"))
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["breaking"], accepted.json()["change_count"]) == (False, 0)
    # The changelog counts them too: as publishing judged them, and against `from` by today's policy.
    stored = (await client.get(f"{API}/versions/2.0.1/changes", headers=reader_headers)).json()
    assert (stored["total_findings"], stored["suppressed"]) == (0, {RESTRICTED: 1})
    params = {"from": "2.0.0"}
    judged = (await client.get(f"{API}/versions/2.0.1/changes", params=params, headers=reader_headers)).json()
    assert (judged["total_findings"], judged["suppressed"]) == (0, {RESTRICTED: 1})
    assert (await client.delete(f"{API}/diff-policy", headers=publisher_headers)).status_code in (200, 204)
    judged = (await client.get(f"{API}/versions/2.0.1/changes", params=params, headers=reader_headers)).json()
    assert (judged["total_findings"], judged["suppressed"]) == (1, {})
