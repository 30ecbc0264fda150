"""Version lifecycle and reads: deprecate, retire, drafts, latest, the document by Accept."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest
import yaml

from tests.samples import JSON_HEADERS, as_json, projects

BASE = "/api/v1/apis/projects/versions"


def in_days(days: int) -> str:
    return (dt.date.today() + dt.timedelta(days=days)).isoformat()


async def test_deprecate_records_sunset_replacement_and_reason(client, publisher_headers, published):
    response = await client.post(
        f"{BASE}/1.0.0/deprecate",
        json={"sunset": in_days(90), "replacement": "2.0.0", "reason": "use v2"},
        headers=publisher_headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "deprecated"
    assert body["deprecation"]["sunset"] == in_days(90)
    assert body["deprecation"]["replacement"] == "2.0.0"
    assert body["deprecation"]["reason"] == "use v2"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"sunset": "2001-01-01"}, "past"),
        ({"replacement": "9.9.9"}, "replacement"),
        ({"replacement": "1.0.0"}, "itself"),
    ],
)
async def test_bad_deprecations_are_422(client, publisher_headers, published, payload, fragment):
    response = await client.post(f"{BASE}/1.0.0/deprecate", json=payload, headers=publisher_headers)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]
    meta = await client.get(f"{BASE}/1.0.0/metadata", headers=publisher_headers)
    assert meta.json()["state"] == "published"


async def test_illegal_transitions_are_409(client, publisher_headers, published):
    for action in ("deprecate", "retire"):
        done = await client.post(f"{BASE}/1.0.0/{action}", json={}, headers=publisher_headers)
        assert done.status_code == 200, done.text
    for action, payload in (("retire", None), ("deprecate", {}), ("release", None)):
        response = await client.post(f"{BASE}/1.0.0/{action}", json=payload, headers=publisher_headers)
        assert response.status_code == 409, action
        assert response.json()["type"] == "/problems/illegal-transition"


async def test_latest_is_the_highest_released_version_never_a_draft(client, publisher_headers, published):
    draft = await client.post(
        BASE,
        content=as_json(projects("3.0.0")),
        headers={**publisher_headers, **JSON_HEADERS},
        params={"draft": "true"},
    )
    assert draft.json()["state"] == "draft"
    latest = await client.get(f"{BASE}/latest/metadata", headers=publisher_headers)
    assert latest.json()["version"] == "2.0.0"

    await client.post(f"{BASE}/2.0.0/deprecate", json={}, headers=publisher_headers)
    assert (await client.get(f"{BASE}/latest/metadata", headers=publisher_headers)).json()[
        "version"
    ] == "2.0.0"

    await client.post(f"{BASE}/2.0.0/retire", headers=publisher_headers)
    assert (await client.get(f"{BASE}/latest/metadata", headers=publisher_headers)).json()[
        "version"
    ] == "1.1.0"

    released = await client.post(f"{BASE}/3.0.0/release", headers=publisher_headers)
    assert released.json()["state"] == "published"
    assert (await client.get(f"{BASE}/latest/metadata", headers=publisher_headers)).json()[
        "version"
    ] == "3.0.0"


async def test_versions_are_listed_in_semver_order(client, publisher_headers, published):
    await client.post(
        BASE, content=as_json(projects("1.10.0")), headers={**publisher_headers, **JSON_HEADERS}
    )
    listed = await client.get(BASE, headers=publisher_headers)
    assert [v["version"] for v in listed.json()["items"]] == ["1.0.0", "1.1.0", "1.10.0", "2.0.0"]


async def test_document_as_json_or_yaml_by_accept(client, publisher_headers, published):
    as_json_response = await client.get(
        f"{BASE}/1.1.0", headers={**publisher_headers, "Accept": "application/json"}
    )
    as_yaml_response = await client.get(
        f"{BASE}/1.1.0", headers={**publisher_headers, "Accept": "application/yaml"}
    )

    assert as_json_response.headers["content-type"].startswith("application/json")
    assert as_yaml_response.headers["content-type"].startswith("application/yaml")
    expected = projects("1.1.0", description="Projects 1.1.0")
    assert msgspec.json.decode(as_json_response.content) == expected
    assert yaml.safe_load(as_yaml_response.content) == expected
    assert as_json_response.headers["etag"].startswith('"sha256:')


async def test_missing_api_and_version_are_404(client, publisher_headers, published):
    assert (
        await client.get("/api/v1/apis/nope/versions/1.0.0", headers=publisher_headers)
    ).status_code == 404
    missing = await client.get(f"{BASE}/7.0.0", headers=publisher_headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


async def test_a_published_version_is_deprecated_before_it_is_retired(client, publisher_headers, published):
    refused = await client.post(f"{BASE}/1.0.0/retire", headers=publisher_headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["type"] == "/problems/illegal-transition"
    assert "deprecate it first" in refused.json()["detail"]
    # Only an admin may skip the notice, and only as an emergency.
    owner_emergency = await client.post(
        f"{BASE}/1.0.0/retire", json={"emergency": True, "reason": "leaks data"}, headers=publisher_headers
    )
    assert owner_emergency.status_code == 403
    meta = await client.get(f"{BASE}/1.0.0/metadata", headers=publisher_headers)
    assert meta.json()["state"] == "published"


async def test_an_admin_retires_a_published_version_in_an_emergency_with_a_reason(
    client, admin_headers, publisher_headers, published
):
    plain = await client.post(f"{BASE}/2.0.0/retire", headers=admin_headers)
    assert plain.status_code == 409, plain.text
    unexplained = await client.post(f"{BASE}/2.0.0/retire", json={"emergency": True}, headers=admin_headers)
    assert unexplained.status_code == 422, unexplained.text
    assert "reason" in unexplained.json()["detail"]

    retired = await client.post(
        f"{BASE}/2.0.0/retire",
        json={"emergency": True, "reason": "the token endpoint leaks secrets"},
        headers=admin_headers,
    )
    assert retired.status_code == 200, retired.text
    assert retired.json()["state"] == "retired"
    latest = await client.get(f"{BASE}/latest/metadata", headers=publisher_headers)
    assert latest.json()["version"] == "1.1.0"
    audit = await client.get(
        "/api/v1/audit", params={"subject": "apis/projects/versions/2.0.0"}, headers=admin_headers
    )
    (entry,) = [e for e in audit.json()["items"] if e["action"] == "version.emergency-retired"]
    assert entry["actor"] == "admin"
    assert (entry["before"]["state"], entry["after"]["state"]) == ("published", "retired")
    assert entry["after"]["emergency_reason"] == "the token endpoint leaks secrets"
