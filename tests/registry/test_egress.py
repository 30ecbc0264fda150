"""A team cannot point the server at internal targets: upstreams and webhooks are checked when bound."""

from __future__ import annotations

import pytest

from registry.settings import Settings
from tests.registry.support import make_settings

# What an attacker in a team would bind: metadata, private network, local services, other forms of
# loopback, and credentials in the URL.
FORBIDDEN_TARGETS = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.0.0.1/", "private"),
    ("http://localhost:6379/", "loopback"),
    ("http://[::1]:22/", "loopback"),
    ("http://admin:hunter2@example.com/", "credentials"),
    ("http://2130706433:8080/", "loopback"),  # 127.0.0.1 as one decimal number
    ("http://127.1/", "loopback"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """No allow-list: the operator named no internal target."""
    return make_settings(database_url, egress_allow=None)


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN_TARGETS)
async def test_an_http_upstream_on_an_internal_target_is_refused(
    client, publisher_headers, published, url, reason
):
    response = await client.put(
        "/api/v1/apis/projects/adapter", json={"kind": "http", "url": url}, headers=publisher_headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert reason in problem["detail"]
    assert problem["errors"][0]["pointer"] == "/url"
    stored = await client.get("/api/v1/apis/projects", headers=publisher_headers)
    assert stored.json()["adapter"] is None


async def test_an_operation_bound_to_an_internal_upstream_is_refused(client, publisher_headers, published):
    binding = {"kind": "mock", "operations": {"listProjects": {"kind": "http", "url": "http://10.0.0.1/"}}}
    response = await client.put("/api/v1/apis/projects/adapter", json=binding, headers=publisher_headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/operations/listProjects/url"
    stored = await client.get("/api/v1/apis/projects", headers=publisher_headers)
    assert stored.json()["adapter"] is None


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN_TARGETS)
async def test_a_webhook_on_an_internal_target_is_refused(client, publisher_headers, published, url, reason):
    response = await client.post(
        "/api/v1/apis/projects/consumers",
        json={
            "consumer": "portal",
            "team": "delivery",
            "versions": "^1",
            "webhook_url": url,
            "webhook_secret": "a-long-shared-webhook-secret",
        },
        headers=publisher_headers,
    )
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    listed = await client.get("/api/v1/apis/projects/consumers", headers=publisher_headers)
    assert listed.json()["items"] == []


async def test_an_unresolvable_public_name_can_be_bound(client, publisher_headers, published):
    """Its DNS may come later; the gateway checks the address it resolves to when it connects."""
    response = await client.put(
        "/api/v1/apis/projects/adapter",
        json={"kind": "http", "url": "https://projects.example.invalid/v1"},
        headers=publisher_headers,
    )
    assert response.status_code == 200, response.text
