"""Two replicas publish the same version at once: exactly one is stored, the other is told 409."""

from __future__ import annotations

import asyncio

from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings
from tests.samples import JSON_HEADERS, as_json, projects


async def test_concurrent_publishes_of_one_version_store_exactly_one(database_url, tmp_path):
    # Replicas share one signing key, as CHARTER_SIGNING_KEY_FILE makes them in production.
    settings = make_settings(database_url, signing_key_file=str(tmp_path / "signing.pem"))
    async with (
        AsyncTestClient(create_app(settings)) as first,
        AsyncTestClient(create_app(settings)) as second,
    ):
        headers = {**bearer(await fetch_token(first, *ADMIN)), **JSON_HEADERS}
        await first.post("/api/v1/teams", json={"name": "delivery"}, headers=headers)
        await first.post(
            "/api/v1/apis",
            json={"name": "projects", "owner": "delivery", "title": "P", "layer": "system"},
            headers=headers,
        )
        for round_ in range(3):
            version = f"1.{round_}.0"
            bodies = [as_json(projects(version, description=f"replica {n}")) for n in (1, 2)]
            responses = await asyncio.gather(
                first.post("/api/v1/apis/projects/versions", content=bodies[0], headers=headers),
                second.post("/api/v1/apis/projects/versions", content=bodies[1], headers=headers),
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [201, 409], [r.text for r in responses]
            winner = bodies[[r.status_code for r in responses].index(201)]
            stored = await second.get(f"/api/v1/apis/projects/versions/{version}", headers=headers)
            assert stored.content == winner

        listed = await first.get("/api/v1/apis/projects/versions", headers=headers)
        assert [v["version"] for v in listed.json()["items"]] == ["1.0.0", "1.1.0", "1.2.0"]


async def test_concurrent_identical_publishes_both_succeed_with_one_row(database_url, tmp_path):
    settings = make_settings(database_url, signing_key_file=str(tmp_path / "signing.pem"))
    async with (
        AsyncTestClient(create_app(settings)) as first,
        AsyncTestClient(create_app(settings)) as second,
    ):
        headers = {**bearer(await fetch_token(first, *ADMIN)), **JSON_HEADERS}
        await first.post("/api/v1/teams", json={"name": "delivery"}, headers=headers)
        body = as_json(projects())
        responses = await asyncio.gather(
            first.post(
                "/api/v1/apis/projects/versions", content=body, headers=headers, params={"owner": "delivery"}
            ),
            second.post(
                "/api/v1/apis/projects/versions", content=body, headers=headers, params={"owner": "delivery"}
            ),
        )
        assert sorted(r.status_code for r in responses) == [200, 201], [r.text for r in responses]
        listed = await first.get("/api/v1/apis/projects/versions", headers=headers)
        assert len(listed.json()["items"]) == 1
