"""Security of the registry itself: tokens, scopes, team ownership, RFC 6750 answers."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.registry.support import bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects


async def test_token_endpoint_issues_a_bearer_token(client):
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "reader", "client_secret": "reader-secret"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["expires_in"] > 0
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all("d" not in key for key in keys)


async def test_wrong_client_secret_is_refused(client):
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "reader", "client_secret": "wrong"},
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


async def test_reads_need_a_token_unless_anonymous_reads_are_on(client, database_url):
    response = await client.get("/api/v1/search")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")

    async with AsyncTestClient(create_app(make_settings(database_url, anonymous_reads=True))) as open_client:
        assert (await open_client.get("/api/v1/search")).status_code == 200


async def test_garbage_token_is_invalid_token(client):
    response = await client.get("/api/v1/search", headers=bearer("not-a-jwt"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_reader_cannot_publish_and_is_told_the_missing_scope(client, publisher_headers, reader_headers):
    response = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects()),
        headers={**reader_headers, **JSON_HEADERS},
        params={"owner": "delivery"},
    )
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="registry:write"' in challenge


async def test_writer_outside_the_owning_team_is_forbidden(client, publisher_headers):
    finance = bearer(await fetch_token(client, "finance-ci", "finance-secret"))
    await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects()),
        headers={**publisher_headers, **JSON_HEADERS},
        params={"owner": "delivery"},
    )
    response = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects("1.1.0")),
        headers={**finance, **JSON_HEADERS},
    )
    assert response.status_code == 403
    assert "not a member" in response.json()["detail"]
    deprecate = await client.post("/api/v1/apis/projects/versions/1.0.0/deprecate", json={}, headers=finance)
    assert deprecate.status_code == 403


async def test_only_admins_manage_teams(client, publisher_headers):
    response = await client.post("/api/v1/teams", json={"name": "rogue"}, headers=publisher_headers)
    assert response.status_code == 403
    assert 'scope="registry:admin"' in response.headers["www-authenticate"]


async def test_token_with_narrowed_scope_cannot_write(client, publisher_headers):
    narrowed = bearer(await fetch_token(client, "delivery-ci", "delivery-secret", scope="registry:read"))
    response = await client.post(
        "/api/v1/apis",
        json={"name": "x", "owner": "delivery", "title": "X", "layer": "system"},
        headers=narrowed,
    )
    assert response.status_code == 403
