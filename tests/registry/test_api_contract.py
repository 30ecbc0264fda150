"""What the registry's contract promises, the server does: methods, bodies, query types, credentials."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient

from registry.access import ADMIN, READ, WRITE
from registry.app import create_app
from tests.registry.support import make_settings

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture
async def contract(client) -> dict:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


async def test_options_names_every_method_the_contract_declares_for_the_path(client, contract):
    for template, item in contract["paths"].items():
        path = re.sub(r"\{path\}", "openapi.yaml", template)
        path = re.sub(r"\{version\}", "1.0.0", path)
        path = re.sub(r"\{(request_id|webhook_id|delivery_id)\}", "1", path)  # integer parameters
        path = re.sub(r"\{[a-z_]+\}", "projects", path)
        response = await client.options(path)
        assert response.status_code == 204, (template, response.text)
        declared = {m.upper() for m in item if m in HTTP_METHODS} | {"OPTIONS"}
        assert set(response.headers["allow"].split(", ")) == declared, template


@pytest.mark.parametrize(
    "path", ["/api/v1/teams", "/api/v1/apis/projects", "/api/v1/apis/projects/versions"]
)
async def test_options_on_a_path_with_a_write_names_the_write(client, path):
    """litestar 2 answered `Allow: GET, OPTIONS` (or `OPTIONS, POST`) on these paths."""
    allow = (await client.options(path)).headers["allow"]
    assert len(allow.split(", ")) == 3, allow


@pytest.mark.parametrize(
    "query",
    [
        {"until": "0.5"},  # a number read as a Unix time
        {"since": "1700000000"},
        {"since": "2026-01-31"},  # a date, not a date-time
        {"since": "2026-01-31T12:00:00"},  # no offset: once a 500 (a naive datetime reached the database)
        {"until": "yesterday"},
    ],
)
async def test_audit_bounds_are_rfc3339_date_times(client, admin_headers, query):
    response = await client.get("/api/v1/audit", params=query, headers=admin_headers)
    assert response.status_code == 400, response.text
    name = next(iter(query))
    assert [issue["pointer"] for issue in response.json()["errors"]] == [f"query:{name}"]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2026-01-31T12:00:00Z", "until": "2026-01-31T13:00:00+01:00"},
        # Past what Python dates hold once moved to UTC: once a 500 (OverflowError).
        {"since": "9999-12-31T23:59:59-05:00"},
        {"until": "0001-01-01T00:00:00+05:00"},
    ],
)
async def test_audit_bounds_in_any_offset_are_answered(client, admin_headers, query):
    response = await client.get("/api/v1/audit", params=query, headers=admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["items"] == []


async def test_audit_bounds_select_by_instant(client, admin_headers, publisher_headers):
    # publisher_headers created the `delivery` team: one audit event, just now.
    log = (await client.get("/api/v1/audit", headers=admin_headers)).json()["items"]
    at = log[0]["at"]
    inside = await client.get("/api/v1/audit", params={"since": at}, headers=admin_headers)
    assert [e["action"] for e in inside.json()["items"]] == ["team.created"]
    before = await client.get("/api/v1/audit", params={"until": at}, headers=admin_headers)
    assert before.json()["items"] == []


async def test_input_bodies_declare_that_unknown_fields_are_refused(client, admin_headers, contract):
    schemas = contract["components"]["schemas"]
    for name in ("TeamIn", "ApiIn", "ApiPatch", "AdapterIn", "DeprecateIn", "ClientIn", "ConsumerIn"):
        assert schemas[name]["additionalProperties"] is False, name
    response = await client.post(
        "/api/v1/teams", json={"name": "ops", "colour": "blue"}, headers=admin_headers
    )
    assert response.status_code == 400
    assert "colour" in response.text


async def test_constraints_msgspec_checks_are_in_the_contract(contract):
    """litestar's own struct schemas dropped the constraints of optional fields and list items."""
    schemas = contract["components"]["schemas"]
    availability = schemas["Sla"]["properties"]["availability"]["anyOf"][0]
    assert availability["exclusiveMinimum"] == 0
    assert schemas["TeamIn"]["properties"]["members"]["items"]["minLength"] == 1
    assert "pattern" in schemas["ClientIn"]["properties"]["scopes"]["items"]
    adapter_rules = schemas["AdapterIn"]["allOf"]
    assert {"if": {"properties": {"kind": {"const": "http"}}, "required": ["kind"]},
            "then": {"properties": {"url": {"type": "string"}}, "required": ["url"]}} in adapter_rules


async def test_an_unknown_new_owner_is_a_bad_body_not_a_missing_api(client, publisher_headers, published):
    response = await client.patch(
        "/api/v1/apis/projects", json={"owner": "nobody"}, headers=publisher_headers
    )
    assert response.status_code == 422, response.text
    assert "nobody" in response.json()["detail"]


async def test_the_contract_declares_how_to_authenticate(contract):
    schemes = contract["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearer"]["description"],
    }
    flow = schemes["clientCredentials"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert set(flow["scopes"]) == {READ, WRITE, ADMIN}
    # Reads inherit the document's requirement; writes and public operations state their own.
    assert contract["security"] == [{"bearer": []}, {"clientCredentials": [READ]}]
    operations = contract["paths"]
    assert operations["/api/v1/teams"]["post"]["security"][1] == {"clientCredentials": [ADMIN]}
    assert operations["/api/v1/apis/{name}/versions"]["post"]["security"][1] == {"clientCredentials": [WRITE]}
    assert operations["/api/v1/audit"]["get"]["security"][1] == {"clientCredentials": [ADMIN]}
    assert "security" not in operations["/api/v1/search"]["get"]
    assert operations["/oauth/token"]["post"]["security"] == [{}]
    assert operations["/health"]["get"]["security"] == [{}]


async def test_the_contract_says_reads_need_no_token_when_anonymous_reads_are_on(database_url):
    app = create_app(make_settings(database_url, anonymous_reads=True))
    async with AsyncTestClient(app) as open_client:
        contract = (await open_client.get("/schema/openapi.json")).json()
        assert {} in contract["security"]
        assert (await open_client.get("/api/v1/search")).status_code == 200


async def test_every_operation_has_a_summary_of_its_own(contract):
    for path, item in contract["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                summary = operation.get("summary", "")
                # litestar's fallback is the handler's name in title case, e.g. "ListTeams".
                assert " " in summary, f"{method.upper()} {path}: {summary!r}"
