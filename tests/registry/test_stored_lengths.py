"""What the catalog keeps from a contract fits its columns on every database: refused alike (422)
on SQLite and PostgreSQL, where PostgreSQL alone used to fail (500) on a value too long or holding NUL."""

from __future__ import annotations

import pytest

from tests.samples import JSON_HEADERS, as_json, as_yaml, projects


async def publish(client, headers, body: bytes, **params):
    return await client.post(
        "/api/v1/apis/projects/versions", content=body, params=params, headers={**headers, **JSON_HEADERS}
    )


async def test_a_version_number_longer_than_the_catalog_keeps_is_refused(client, publisher_headers):
    number = "1.0.0-" + "rc" * 60
    response = await publish(client, publisher_headers, as_json(projects(number)), owner="delivery")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/info/version"


async def test_a_long_spec_version_of_an_unvalidated_contract_is_refused(client, publisher_headers):
    api = {"name": "projects", "owner": "delivery", "title": "Projects", "layer": "system"}
    created = await client.post("/api/v1/apis", json={**api, "validity": "none"}, headers=publisher_headers)
    assert created.status_code == 201, created.text
    document = projects()
    document["openapi"] = "3.0." + "0" * 30 + "3"
    response = await publish(client, publisher_headers, as_json(document))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "/openapi"


def multipart(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart body written by hand: httpx would percent-encode a NUL in a file name."""
    boundary = "charter-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/yaml\r\n\r\n".encode() + content + b"\r\n"
        for name, content in files.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("name", ["common/" + "x" * 500 + ".yaml", "common/a\x00b.yaml"])
async def test_bundle_file_names_the_catalog_cannot_keep_are_refused(client, publisher_headers, name):
    body, content_type = multipart({"openapi.yaml": as_yaml(projects()), name: b"type: object\n"})
    response = await client.post(
        "/api/v1/apis/projects/versions",
        content=body,
        params={"owner": "delivery", "root": "openapi.yaml"},
        headers={**publisher_headers, "Content-Type": content_type},
    )
    assert response.status_code == 422, response.text
    versions = await client.get("/api/v1/apis/projects/versions", headers=publisher_headers)
    assert versions.status_code == 404
