"""Every write lands in the audit log, in the same transaction as the change."""

from __future__ import annotations

from tests.samples import JSON_HEADERS, as_json, projects


async def test_writes_are_audited_with_actor_subject_before_and_after(
    client, admin_headers, publisher_headers, published
):
    await client.post(
        "/api/v1/apis/projects/versions/1.0.0/deprecate", json={"reason": "old"}, headers=publisher_headers
    )
    log = (
        await client.get("/api/v1/audit", params={"subject": "apis/projects"}, headers=admin_headers)
    ).json()

    actions = [e["action"] for e in log["items"]]
    assert actions == [
        "version.deprecated",
        "version.published",
        "version.published",
        "version.published",
        "api.created",
    ]
    deprecated = log["items"][0]
    assert deprecated["actor"] == "delivery-ci"
    assert deprecated["subject"] == "apis/projects/versions/1.0.0"
    assert deprecated["before"]["state"] == "published"
    assert deprecated["after"]["state"] == "deprecated"
    assert deprecated["after"]["reason"] == "old"


async def test_audit_filters_by_actor_and_time(client, admin_headers, publisher_headers, published):
    by_actor = await client.get("/api/v1/audit", params={"actor": "admin"}, headers=admin_headers)
    assert [e["action"] for e in by_actor.json()["items"]] == ["team.created"]

    future = await client.get(
        "/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin_headers
    )
    assert future.json()["total"] == 0


async def test_a_refused_write_leaves_no_audit_event(client, admin_headers, publisher_headers, published):
    before = (await client.get("/api/v1/audit", headers=admin_headers)).json()["total"]
    conflict = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects("1.0.0", description="different")),
        headers={**publisher_headers, **JSON_HEADERS},
    )
    assert conflict.status_code == 409
    assert (await client.get("/api/v1/audit", headers=admin_headers)).json()["total"] == before


async def test_the_audit_log_is_for_admins(client, publisher_headers):
    assert (await client.get("/api/v1/audit", headers=publisher_headers)).status_code == 403
