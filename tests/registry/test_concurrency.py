"""Replicas publish at once: one version is stored once, and many versions leave `latest` and search right."""

from __future__ import annotations

import asyncio

import httpx
from litestar.testing import AsyncTestClient
from semver import Version

from registry.app import create_app
from tests.loopback import serving
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


async def test_concurrent_publishes_and_a_release_keep_latest_search_and_verdicts(database_url, tmp_path):
    # Two replicas served for real: the test client would run the requests one after another.
    settings = make_settings(database_url, signing_key_file=str(tmp_path / "signing.pem"))
    with serving(create_app(settings)) as first, serving(create_app(settings)) as second:
        async with httpx.AsyncClient(timeout=60) as http:
            form = {"grant_type": "client_credentials"}
            token = await http.post(f"{first}/oauth/token", data=form, auth=ADMIN)
            headers = {**bearer(token.json()["access_token"]), **JSON_HEADERS}
            await http.post(f"{first}/api/v1/teams", json={"name": "delivery"}, headers=headers)
            created = await http.post(
                f"{first}/api/v1/apis/projects/versions",
                content=as_json(projects("1.0.0")),
                headers=headers,
                params={"owner": "delivery"},
            )
            assert created.status_code == 201, created.text

            def edition(minor: int) -> bytes:
                doc = projects(f"1.{minor}.0")
                # Search indexes the latest version's operations: each version has a word of its own.
                doc["paths"]["/projects"]["get"]["summary"] = f"List projects edition{minor}"
                return as_json(doc)

            path = "/api/v1/apis/projects/versions"
            drafted = await http.post(
                f"{first}{path}", content=edition(21), headers=headers, params={"draft": "true"}
            )
            assert drafted.status_code == 201, drafted.text
            publishes = (
                http.post(f"{(first, second)[minor % 2]}{path}", content=edition(minor), headers=headers)
                for minor in range(1, 21)
            )
            release = http.post(f"{second}{path}/1.21.0/release", headers=headers)
            responses = await asyncio.gather(*publishes, release)
            failed = [r.text for r in responses if r.status_code not in (200, 201)]
            assert not failed

            api = await http.get(f"{first}/api/v1/apis/projects", headers=headers)
            assert api.json()["latest_version"] == "1.21.0"
            latest = await http.get(
                f"{second}/api/v1/apis/projects/versions/latest/metadata", headers=headers
            )
            assert latest.json()["version"] == "1.21.0"
            found = await http.get(f"{first}/api/v1/search", params={"q": "edition21"}, headers=headers)
            hits = [(h["name"], h["latest_version"]) for h in found.json()["items"]]
            assert hits == [("projects", "1.21.0")]

            # Each version was judged against the highest one stored before it, not a stale one.
            audit = await http.get(
                f"{first}/api/v1/audit",
                params={"action": "version.published", "subject": "apis/projects"},
                headers=headers,
            )
            stored: list[Version] = []
            for event in reversed(audit.json()["items"]):
                number = Version.parse(event["after"]["version"])
                earlier = [v for v in stored if v < number]
                expected = str(max(earlier)) if earlier else None
                assert event["after"]["base_version"] == expected, event["after"]
                stored.append(number)
            assert len(stored) == 22
