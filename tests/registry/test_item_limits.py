"""How many items one request may store: lists a team writes are bounded, so that one request neither
holds the write lock for long nor makes every catalog and search answer that lists the API large."""

from __future__ import annotations

import pytest

API = "/api/v1/apis/projects"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"tags": [f"tag-{i}" for i in range(101)]}, "/tags"),
        ({"contacts": [{"name": f"n{i}"} for i in range(51)]}, "/contacts"),
        ({"contacts": [{"name": "x" * 1001}]}, "/contacts[0].name"),
        ({"contacts": [{"email": "x" * 1001}]}, "/contacts[0].email"),
        ({"contacts": [{"url": "https://example.com/" + "x" * 2000}]}, "/contacts[0].url"),
    ],
)
async def test_an_api_entry_with_too_many_or_too_long_items_is_refused(
    client, publisher_headers, published, body, pointer
):
    before = (await client.get(API, headers=publisher_headers)).json()
    response = await client.patch(API, json=body, headers=publisher_headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [issue["pointer"] for issue in response.json()["errors"]] == [pointer]
    assert (await client.get(API, headers=publisher_headers)).json() == before


async def test_an_api_entry_at_the_limits_is_stored(client, publisher_headers, published):
    body = {
        "tags": [f"tag-{i}" for i in range(100)],
        "contacts": [{"name": "n" * 1000, "email": "e" * 1000, "url": "https://example.com/"}] * 50,
    }
    response = await client.patch(API, json=body, headers=publisher_headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["tags"]) == 100


async def test_a_consumer_naming_too_many_operations_is_refused(client, publisher_headers, published):
    operations = [f"GET /projects/{i}" for i in range(2001)]
    response = await client.post(
        f"{API}/consumers",
        json={"consumer": "billing-app", "team": "delivery", "versions": "^1", "operations": operations},
        headers=publisher_headers,
    )
    assert response.status_code == 400, response.text
    assert [issue["pointer"] for issue in response.json()["errors"]] == ["/operations"]
    assert (await client.get(f"{API}/consumers", headers=publisher_headers)).json()["items"] == []
