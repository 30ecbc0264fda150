"""Consumers of an API and the impact of a candidate contract on them."""

from __future__ import annotations

from tests.registry.support import bearer, fetch_token
from tests.samples import JSON_HEADERS, as_json, projects

API = "/api/v1/apis/projects"


def without_get_project(version: str) -> dict:
    doc = projects(version)
    del doc["paths"]["/projects/{projectId}"]
    return doc


def list_filter_required(version: str) -> dict:
    doc = projects(version)
    doc["paths"]["/projects"]["get"]["parameters"] = [
        {"name": "client", "in": "query", "required": True, "schema": {"type": "string"}}
    ]
    return doc


async def register(client, headers, consumer: str, versions: str, operations: list[str]):
    return await client.post(
        f"{API}/consumers",
        json={"consumer": consumer, "team": "delivery", "versions": versions, "operations": operations},
        headers=headers,
    )


async def test_register_update_and_list(client, publisher_headers, reader_headers, published):
    created = await register(client, publisher_headers, "billing-app", "^1.1", ["getProject"])
    assert created.status_code == 201, created.text
    updated = await register(client, publisher_headers, "billing-app", "^2", ["GET /projects/{id}"])
    assert updated.status_code == 200
    listed = await client.get(f"{API}/consumers", headers=reader_headers)
    (item,) = listed.json()["items"]
    assert (item["consumer"], item["team"], item["versions"], item["operations"]) == (
        "billing-app",
        "delivery",
        "^2",
        ["GET /projects/{id}"],
    )


async def test_bad_range_and_foreign_team_are_refused(client, publisher_headers, admin_headers, published):
    bad = await register(client, publisher_headers, "x", "one point four", [])
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/versions"
    await client.post("/api/v1/teams", json={"name": "finance"}, headers=admin_headers)
    foreign = await client.post(
        f"{API}/consumers",
        json={"consumer": "x", "team": "finance", "versions": "^1"},
        headers=publisher_headers,
    )
    assert foreign.status_code == 403


async def test_impact_names_consumers_of_touched_operations(
    client, publisher_headers, reader_headers, published
):
    # Three apps on 2.x: one calls getProject (by operationId), one lists projects (by method and a
    # differently named path), one registered no operations (all of them). One app is still on 1.x.
    await register(client, publisher_headers, "portal", "^2", ["getProject"])
    await register(client, publisher_headers, "reports", "^2.0.0", ["GET /projects"])
    await register(client, publisher_headers, "everything", ">=2", [])
    await register(client, publisher_headers, "legacy", "~1.0.0", ["GET /projects/{id}"])

    response = await client.post(
        f"{API}/impact",
        content=as_json(without_get_project("3.0.0")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    affected = {a["consumer"]: a for a in body["affected"]}
    assert set(affected) == {"portal", "everything", "legacy"}
    assert affected["portal"]["change_ids"] == ["api-path-removed-without-deprecation"]
    assert affected["portal"]["base_version"] == "2.0.0"
    assert affected["legacy"]["base_version"] == "1.0.0"
    assert "api-path-removed-without-deprecation" in {c["id"] for c in body["changes"]}

    narrowed = await client.post(
        f"{API}/impact",
        content=as_json(list_filter_required("3.0.0")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    hit = {a["consumer"]: a["change_ids"] for a in narrowed.json()["affected"]}
    assert hit == {
        "reports": ["new-required-request-parameter"],
        "everything": ["new-required-request-parameter"],
    }


async def test_impact_with_no_consumers_is_empty(client, reader_headers, published):
    response = await client.post(
        f"{API}/impact",
        content=as_json(without_get_project("3.0.0")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    assert response.status_code == 200
    assert response.json()["affected"] == []


async def test_deprecation_impact_names_the_consumers_running_on_the_version(
    client, publisher_headers, reader_headers, published
):
    await register(client, publisher_headers, "legacy", "~1.1.0", [])
    await register(client, publisher_headers, "portal", "^2", [])
    response = await client.get(f"{API}/versions/1.1.0/impact", headers=reader_headers)
    assert response.status_code == 200, response.text
    assert [(a["consumer"], a["change_ids"]) for a in response.json()["affected"]] == [
        ("legacy", ["version-deprecated"])
    ]


async def test_another_team_cannot_take_over_a_registered_consumer(
    client, publisher_headers, admin_headers, published
):
    """finance-ci, a member of finance only, re-registers delivery's `billing-app` as finance's own."""
    webhook = {"webhook_url": "http://127.0.0.1:9/delivery", "webhook_secret": "d" * 32}
    created = await client.post(
        f"{API}/consumers",
        json={"consumer": "billing-app", "team": "delivery", "versions": "^1", **webhook},
        headers=publisher_headers,
    )
    assert created.status_code == 201, created.text
    await client.post(
        "/api/v1/teams", json={"name": "finance", "members": ["finance-ci"]}, headers=admin_headers
    )
    finance = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    taken = await client.post(
        f"{API}/consumers",
        json={
            "consumer": "billing-app",
            "team": "finance",
            "versions": "^2",
            "webhook_url": "http://127.0.0.1:9/finance",
            "webhook_secret": "f" * 32,
        },
        headers=finance,
    )
    assert taken.status_code == 403, taken.text
    assert taken.headers["content-type"].startswith("application/problem+json")
    (item,) = (await client.get(f"{API}/consumers", headers=admin_headers)).json()["items"]
    assert (item["team"], item["versions"]) == ("delivery", "^1")
    # Its own team still updates it.
    moved = await client.post(
        f"{API}/consumers",
        json={"consumer": "billing-app", "team": "delivery", "versions": "^1.2"},
        headers=publisher_headers,
    )
    assert moved.status_code == 200, moved.text
