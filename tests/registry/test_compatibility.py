"""Compatibility on publish: semver enforced per mode, admin force, stored changes, the dry run."""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.diff import diff_documents
from contracts.diff.render import as_json as as_diff_json
from tests.samples import JSON_HEADERS, as_json, invoice_events, projects

API = "/api/v1/apis/projects"


def without_get_project(version: str) -> dict[str, Any]:
    doc = projects(version)
    del doc["paths"]["/projects/{projectId}"]
    return doc


def with_list_filter(version: str) -> dict[str, Any]:
    doc = projects(version)
    doc["paths"]["/projects"]["get"]["parameters"] = [
        {"name": "client", "in": "query", "schema": {"type": "string"}}
    ]
    return doc


async def publish(client, headers, doc: dict[str, Any], **params: str):
    return await client.post(
        f"{API}/versions", content=as_json(doc), headers={**headers, **JSON_HEADERS}, params=params
    )


async def stored_ids(client, headers, version: str) -> set[str]:
    response = await client.get(f"{API}/versions/{version}/changes", headers=headers)
    assert response.status_code == 200, response.text
    return {g["id"] for g in response.json()["groups"]}


async def test_breaking_change_needs_a_major_version(client, publisher_headers, published):
    refused = await publish(client, publisher_headers, without_get_project("2.1.0"))
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert problem["type"] == "/problems/incompatible-change"
    assert problem["required_bump"] == "major" and problem["base_version"] == "2.0.0"
    assert [e["message"].split(":")[0] for e in problem["errors"]] == ["api-path-removed-without-deprecation"]
    assert problem["errors"][0]["pointer"] == "/paths/~1projects~1{projectId}/get"

    # Nothing was stored by the refusal; the same document as 3.0.0 is accepted and keeps its changes.
    assert (await client.get(f"{API}/versions/2.1.0/metadata", headers=publisher_headers)).status_code == 404
    accepted = await publish(client, publisher_headers, without_get_project("3.0.0"))
    assert accepted.status_code == 201, accepted.text
    body = accepted.json()
    assert (body["base_version"], body["required_bump"], body["breaking"]) == ("2.0.0", "major", True)
    assert await stored_ids(client, publisher_headers, "3.0.0") == {"api-path-removed-without-deprecation"}


async def test_addition_needs_a_minor_version_and_a_patch_takes_the_rest(
    client, publisher_headers, published
):
    assert (await publish(client, publisher_headers, with_list_filter("2.0.1"))).status_code == 422
    minor = await publish(client, publisher_headers, with_list_filter("2.1.0"))
    assert minor.status_code == 201, minor.text
    assert minor.json()["required_bump"] == "minor"

    described = with_list_filter("2.1.1")
    described["paths"]["/projects"]["get"]["summary"] = "List projects, filtered by client"
    patch = await publish(client, publisher_headers, described)
    assert patch.status_code == 201, patch.text
    assert (patch.json()["required_bump"], patch.json()["change_count"]) == ("none", 0)


async def test_a_patch_of_an_older_line_is_judged_against_that_line(client, publisher_headers, published):
    response = await publish(client, publisher_headers, projects("1.1.1", description="typo fixed"))
    assert response.status_code == 201, response.text
    assert response.json()["base_version"] == "1.1.0"


async def test_admin_can_force_and_the_audit_log_says_so(client, admin_headers, publisher_headers, published):
    denied = await publish(client, publisher_headers, without_get_project("2.1.0"), force="true")
    assert denied.status_code == 403
    forced = await publish(client, admin_headers, without_get_project("2.1.0"), force="true")
    assert forced.status_code == 201, forced.text
    audit = await client.get(
        "/api/v1/audit", params={"subject": "apis/projects/versions/2.1.0"}, headers=admin_headers
    )
    (event,) = audit.json()["items"]
    assert event["after"]["forced"] is True
    assert event["after"]["offending"] == ["api-path-removed-without-deprecation"]


async def test_mode_none_records_changes_without_judging(client, admin_headers, publisher_headers, published):
    patched = await client.patch(API, json={"compatibility": "NONE"}, headers=publisher_headers)
    assert patched.status_code == 200, patched.text
    response = await publish(client, publisher_headers, without_get_project("2.0.1"))
    assert response.status_code == 201, response.text
    assert response.json()["breaking"] is True


async def test_backward_transitive_checks_every_version_of_the_major(client, publisher_headers, published):
    # 2.1.0 broke 2.0.0 while the API's mode was NONE; 2.2.0 changes nothing against 2.1.0.
    await client.patch(API, json={"compatibility": "NONE"}, headers=publisher_headers)
    assert (await publish(client, publisher_headers, without_get_project("2.1.0"))).status_code == 201
    candidate = without_get_project("2.2.0")

    await client.patch(API, json={"compatibility": "BACKWARD"}, headers=publisher_headers)
    backward = await client.post(
        f"{API}/compatibility", content=as_json(candidate), headers={**publisher_headers, **JSON_HEADERS}
    )
    assert backward.json()["verdict"] == "compatible"

    await client.patch(API, json={"compatibility": "BACKWARD_TRANSITIVE"}, headers=publisher_headers)
    refused = await publish(client, publisher_headers, candidate)
    assert refused.status_code == 422, refused.text
    (error,) = refused.json()["errors"]
    assert error["message"].startswith("api-path-removed-without-deprecation: against 2.0.0:")
    # A new major line starts afresh: 3.0.0 is not held to the 2.x versions.
    assert (await publish(client, publisher_headers, without_get_project("3.0.0"))).status_code == 201


async def test_changes_between_any_two_versions(client, reader_headers, publisher_headers, published):
    await publish(client, publisher_headers, without_get_project("3.0.0"))
    response = await client.get(
        f"{API}/versions/3.0.0/changes", params={"from": "1.0.0"}, headers=reader_headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["base_version"], body["breaking"], body["required_bump"]) == ("1.0.0", True, "major")
    group = body["groups"][0]
    assert set(group) == {
        "id",
        "level",
        "message",
        "base_pointer",
        "revision_pointer",
        "operations",
        "findings",
        "policy",
        "place",
    }
    assert group["operations"] == ["GET /projects/{projectId}"]
    first = await client.get(f"{API}/versions/1.0.0/changes", headers=reader_headers)
    assert first.json() == {
        "api": "projects",
        "version": "1.0.0",
        "base_version": None,
        "breaking": False,
        "required_bump": "none",
        "groups": [],
        "total_groups": 0,
        "total_findings": 0,
        "counts": {"error": 0, "warning": 0, "info": 0},
        "next_cursor": None,
        "suppressed": {},
    }


async def test_dry_run_answers_a_verdict_and_stores_nothing(client, reader_headers, published):
    response = await client.post(
        f"{API}/compatibility",
        content=as_json(without_get_project("2.0.1")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["verdict"] == "incompatible"
    assert (body["base_version"], body["required_bump"], body["breaking"]) == ("2.0.0", "major", True)
    assert [c["id"] for c in body["offending"]] == ["api-path-removed-without-deprecation"]
    major = await client.post(
        f"{API}/compatibility",
        content=as_json(without_get_project("3.0.0")),
        headers={**reader_headers, **JSON_HEADERS},
    )
    assert major.json()["verdict"] == "compatible"
    versions = await client.get(f"{API}/versions", headers=reader_headers)
    assert [v["version"] for v in versions.json()["items"]] == published


def answering_projects(version: str) -> dict[str, Any]:
    """`projects` whose two reads answer the shared `Project` schema."""
    doc = projects(version)
    project = {"$ref": "#/components/schemas/Project"}
    paths = doc["paths"]
    paths["/projects"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {"type": "array", "items": project}}
    }
    paths["/projects/{projectId}"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": project}
    }
    return doc


async def test_dry_run_groups_its_changes_as_charter_diff_json_does(
    client, publisher_headers, reader_headers, published
):
    """A shared schema's new property reaches several operations: one group, and every finding."""
    base = answering_projects("2.1.0")
    assert (await publish(client, publisher_headers, base)).status_code == 201
    candidate = answering_projects("2.2.0")
    candidate["components"]["schemas"]["Project"]["properties"]["budget"] = {"type": "number"}
    response = await client.post(
        f"{API}/compatibility", content=as_json(candidate), headers={**reader_headers, **JSON_HEADERS}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    cli = msgspec.json.decode(as_diff_json(diff_documents(base, candidate)))
    assert body["groups"] == cli["groups"] and body["changes"] == cli["changes"]
    response_group = next(g for g in body["groups"] if g["id"] == "response-property-added-optional")
    assert response_group["place"] == "Project.budget"
    assert response_group["operations"] == ["GET /projects", "GET /projects/{projectId}"]
    assert len(body["changes"]) > len(body["groups"])  # the flat list stays, one per operation
    assert body["verdict"] == "compatible" and body["suppressed"] == {}


async def test_dry_run_refuses_bad_input_with_a_problem(client, reader_headers, published):
    response = await client.post(
        f"{API}/compatibility", content=b"{not json", headers={**reader_headers, **JSON_HEADERS}
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    events = await client.post(
        f"{API}/compatibility", content=as_json(invoice_events()), headers={**reader_headers, **JSON_HEADERS}
    )
    assert events.status_code == 422
    assert "holds openapi contracts" in events.json()["detail"]


async def test_event_contract_changes_judged_for_consumers(client, publisher_headers):
    base = invoice_events("1.0.0")
    created = await client.post(
        "/api/v1/apis/invoice-events/versions",
        content=as_json(base),
        headers={**publisher_headers, **JSON_HEADERS},
        params={"owner": "delivery"},
    )
    assert created.status_code == 201, created.text
    retyped = invoice_events("1.1.0")
    retyped["components"]["messages"]["InvoiceIssued"]["payload"]["properties"]["amount"] = {"type": "string"}
    refused = await client.post(
        "/api/v1/apis/invoice-events/versions",
        content=as_json(retyped),
        headers={**publisher_headers, **JSON_HEADERS},
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["message"].startswith("message-property-type-changed")


async def test_a_draft_is_judged_when_released(client, admin_headers, publisher_headers, published):
    drafted = await publish(client, publisher_headers, without_get_project("2.1.0"), draft="true")
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["breaking"] is True
    refused = await client.post(f"{API}/versions/2.1.0/release", headers=publisher_headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "/problems/incompatible-change"
    released = await client.post(
        f"{API}/versions/2.1.0/release", params={"force": "true"}, headers=admin_headers
    )
    assert released.status_code == 200, released.text
    assert released.json()["state"] == "published"


async def test_retiring_every_earlier_version_does_not_skip_the_check(client, publisher_headers):
    first = await publish(client, publisher_headers, projects("1.0.0"), owner="delivery")
    assert first.status_code == 201, first.text
    for action, payload in (("deprecate", {}), ("retire", None)):
        done = await client.post(f"{API}/versions/1.0.0/{action}", json=payload, headers=publisher_headers)
        assert done.status_code == 200, done.text

    refused = await publish(client, publisher_headers, without_get_project("1.1.0"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "/problems/incompatible-change"
    assert refused.json()["base_version"] == "1.0.0"
    accepted = await publish(client, publisher_headers, without_get_project("2.0.0"))
    assert accepted.status_code == 201, accepted.text
    assert (accepted.json()["base_version"], accepted.json()["breaking"]) == ("1.0.0", True)
