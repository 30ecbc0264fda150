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
    assert (await client.post(f"{BASE}/1.0.0/retire", headers=publisher_headers)).status_code == 200
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
