"""NUL, on SQLite and PostgreSQL alike: refused (400) in names, filters and every text the API takes;
stored whole in contract documents, whose catalog text (title, description, search words) drops it.

PostgreSQL text cannot hold NUL where SQLite can, so before this policy the same request was a 200
on one database and a 500 on the other.
"""

from __future__ import annotations

import pytest

from tests.samples import JSON_HEADERS, as_json, projects

NUL = "\x00"


def assert_refused(response, pointer: str | None = None) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if pointer is not None:
        assert pointer in {issue["pointer"] for issue in response.json().get("errors", [])}, response.text


@pytest.mark.parametrize("name", ["q", "owner", "domain", "tag"])
async def test_search_filters_refuse_nul(client, reader_headers, published, name):
    response = await client.get("/api/v1/search", params={name: f"pro{NUL}jects"}, headers=reader_headers)
    assert_refused(response, f"query:{name}")


@pytest.mark.parametrize("name", ["subject", "actor", "action"])
async def test_audit_filters_refuse_nul(client, admin_headers, name):
    response = await client.get("/api/v1/audit", params={name: f"apis/x{NUL}"}, headers=admin_headers)
    assert_refused(response, f"query:{name}")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/apis/projects/versions/1.0.0%00",
        "/api/v1/apis/projects/versions/1.0.0%00/metadata",
        "/api/v1/apis/projects/versions/1.0.0/files/a%00b.yaml",
    ],
)
async def test_version_names_and_file_paths_refuse_nul(client, reader_headers, published, path):
    assert_refused(await client.get(path, headers=reader_headers))


async def test_changes_from_a_version_named_with_nul_is_refused(client, reader_headers, published):
    response = await client.get(
        "/api/v1/apis/projects/versions/2.0.0/changes", params={"from": f"1.0.0{NUL}"}, headers=reader_headers
    )
    assert_refused(response)


async def test_publish_parameters_refuse_nul(client, publisher_headers):
    response = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects()),
        params={"owner": f"delivery{NUL}"},
        headers={**publisher_headers, **JSON_HEADERS},
    )
    assert_refused(response, "query:owner")


@pytest.mark.parametrize(
    "change",
    [{"description": f"Projects{NUL}"}, {"title": f"Pro{NUL}jects"}, {"tags": [f"a{NUL}"]}, {"domain": NUL}],
)
async def test_api_text_refuses_nul(client, publisher_headers, published, change):
    response = await client.patch("/api/v1/apis/projects", json=change, headers=publisher_headers)
    assert_refused(response)
    stored = (await client.get("/api/v1/apis/projects", headers=publisher_headers)).json()
    assert NUL not in str(stored)


async def test_new_api_description_refuses_nul(client, publisher_headers):
    api = {"name": "ledger", "owner": "delivery", "title": "Ledger", "layer": "system"}
    response = await client.post(
        "/api/v1/apis",
        json={**api, "description": NUL},
        headers=publisher_headers,
    )
    assert_refused(response, "/description")


async def test_deprecation_reason_refuses_nul(client, publisher_headers, published):
    response = await client.post(
        "/api/v1/apis/projects/versions/1.0.0/deprecate",
        json={"reason": f"superseded{NUL}"},
        headers=publisher_headers,
    )
    assert_refused(response, "/reason")


@pytest.mark.parametrize(
    "team",
    [
        {"name": f"ops{NUL}"},
        {"name": "ops", "description": f"Operations{NUL}"},
        {"name": "ops", "members": [f"ops-ci{NUL}"]},
    ],
)
async def test_team_text_refuses_nul(client, admin_headers, team):
    assert_refused(await client.post("/api/v1/teams", json=team, headers=admin_headers))
    teams = (await client.get("/api/v1/teams", headers=admin_headers)).json()["items"]
    assert [t["name"] for t in teams] == []


async def test_document_with_nul_is_stored_whole_and_its_catalog_text_drops_it(client, publisher_headers):
    document = projects(title=f"Time{NUL}sheets", description=f"Hours{NUL} worked")
    document["paths"]["/projects"]["get"]["summary"] = f"List{NUL} projects"
    # A legitimate use: a schema that refuses control characters names NUL in its pattern.
    document["components"]["schemas"]["Project"]["properties"]["name"] = {
        "type": "string",
        "pattern": "^[^\u0000-\u001f]*$",
    }
    body = as_json(document)
    assert b"\\u0000" in body

    published = await client.post(
        "/api/v1/apis/timesheets/versions",
        content=body,
        params={"owner": "delivery"},
        headers={**publisher_headers, **JSON_HEADERS},
    )
    assert published.status_code == 201, published.text

    stored = await client.get("/api/v1/apis/timesheets/versions/1.0.0", headers=publisher_headers)
    assert stored.content == body
    api = (await client.get("/api/v1/apis/timesheets", headers=publisher_headers)).json()
    assert (api["title"], api["description"]) == ("Timesheets", "Hours worked")
    found = await client.get("/api/v1/search", params={"q": "timesheets"}, headers=publisher_headers)
    assert [hit["name"] for hit in found.json()["items"]] == ["timesheets"]
