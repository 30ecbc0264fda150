"""Discovery: full-text search over names, titles, descriptions, tags and operations, with filters."""

from __future__ import annotations

import pytest

from tests.samples import JSON_HEADERS, YAML_HEADERS, as_json, as_yaml, invoice_events, projects, rescoped


@pytest.fixture
async def catalog(client, admin_headers, publisher_headers):
    await client.post(
        "/api/v1/teams", json={"name": "finance", "members": ["finance-ci"]}, headers=admin_headers
    )
    apis = [
        {
            "name": "projects",
            "owner": "delivery",
            "title": "Projects",
            "layer": "system",
            "domain": "psa",
            "tags": ["psa"],
            "description": "Engagements and milestones",
        },
        {
            "name": "time-entries",
            "owner": "delivery",
            "title": "Time entries",
            "layer": "system",
            "domain": "psa",
            "tags": ["psa", "timesheets"],
        },
        {
            "name": "invoice-events",
            "owner": "finance",
            "title": "Invoice events",
            "layer": "system",
            "domain": "erp",
            "tags": ["billing"],
        },
        {
            "name": "project-setup",
            "owner": "delivery",
            "title": "Project setup",
            "layer": "process",
            "domain": "psa",
            "tags": ["orchestration"],
        },
    ]
    for api in apis:
        response = await client.post("/api/v1/apis", json=api, headers=admin_headers)
        assert response.status_code == 201, response.text
    await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects()),
        headers={**admin_headers, **JSON_HEADERS},
    )
    await client.post(
        "/api/v1/apis/invoice-events/versions",
        content=as_yaml(invoice_events()),
        headers={**admin_headers, **YAML_HEADERS},
    )
    return apis


async def names(client, headers, **params) -> list[str]:
    response = await client.get("/api/v1/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return [hit["name"] for hit in response.json()["items"]]


async def test_search_by_title_word_and_prefix(client, reader_headers, catalog):
    assert await names(client, reader_headers, q="time") == ["time-entries"]
    assert await names(client, reader_headers, q="invoi") == ["invoice-events"]


async def test_search_finds_operation_ids_and_summaries(client, reader_headers, catalog):
    assert await names(client, reader_headers, q="createProject") == ["projects"]
    assert await names(client, reader_headers, q="won opportunity") == ["projects"]
    assert await names(client, reader_headers, q="issued client") == ["invoice-events"]


async def test_search_finds_descriptions_and_tags(client, reader_headers, catalog):
    assert await names(client, reader_headers, q="milestones") == ["projects"]
    assert await names(client, reader_headers, q="timesheets") == ["time-entries"]


async def test_filters_combine_with_text(client, reader_headers, catalog):
    assert await names(client, reader_headers, owner="finance") == ["invoice-events"]
    assert await names(client, reader_headers, layer="process") == ["project-setup"]
    assert await names(client, reader_headers, domain="psa", tag="psa") == ["projects", "time-entries"]
    assert await names(client, reader_headers, kind="asyncapi") == ["invoice-events"]
    assert await names(client, reader_headers, state="published") == ["invoice-events", "projects"]
    assert await names(client, reader_headers, q="project", layer="system") == ["projects"]


async def test_paging(client, reader_headers, catalog):
    page = (
        await client.get("/api/v1/search", params={"limit": 2, "offset": 1}, headers=reader_headers)
    ).json()
    assert page["total"] == 4
    assert [h["name"] for h in page["items"]] == ["project-setup", "projects"]


@pytest.mark.parametrize("q", ['"', "*", "NEAR(", "a OR", "-x", "'; drop table apis; --", "^"])
async def test_query_syntax_in_user_input_is_never_an_error(client, reader_headers, catalog, q):
    response = await client.get("/api/v1/search", params={"q": q}, headers=reader_headers)
    assert response.status_code == 200


async def test_search_reflects_api_changes(client, admin_headers, reader_headers, catalog):
    await client.patch(
        "/api/v1/apis/time-entries", json={"title": "Timesheet capture"}, headers=admin_headers
    )
    assert await names(client, reader_headers, q="capture") == ["time-entries"]


async def test_search_finds_the_contracts_description_schema_and_property_names(
    client, reader_headers, catalog
):
    # `projects` has a description of its own: the contract's is found through its version.
    assert await names(client, reader_headers, q="professional services") == ["projects"]
    assert await names(client, reader_headers, q="Project client") == ["projects"]  # schema, property
    assert await names(client, reader_headers, q="amount") == ["invoice-events"]  # a message's property


async def test_an_api_without_a_description_takes_its_contracts(
    client, admin_headers, reader_headers, catalog
):
    doc = rescoped(projects("1.0.0", description="Hours booked against engagements"), "time")
    published = await client.post(
        "/api/v1/apis/time-entries/versions", content=as_json(doc), headers={**admin_headers, **JSON_HEADERS}
    )
    assert published.status_code == 201, published.text
    api = (await client.get("/api/v1/apis/time-entries", headers=reader_headers)).json()
    assert api["description"] == "Hours booked against engagements"
    described = (await client.get("/api/v1/apis/projects", headers=reader_headers)).json()
    assert described["description"] == "Engagements and milestones"  # given: kept
    assert await names(client, reader_headers, q="hours booked") == ["time-entries"]


async def test_a_filtered_search_ranks_and_counts_only_what_the_filters_keep(client, reader_headers, catalog):
    page = (
        await client.get("/api/v1/search", params={"q": "project", "domain": "psa"}, headers=reader_headers)
    ).json()
    assert page["total"] == len(page["items"]) == 2
    assert {hit["name"] for hit in page["items"]} == {"projects", "project-setup"}
    assert await names(client, reader_headers, q="project", domain="erp") == []
