"""Publishing a contract: every acceptance rule (statuses, stored content, errors), SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.conftest import corpus
from tests.contracts.zip_fixtures import damaged_archives
from tests.registry.support import fetch_token, make_settings
from tests.samples import JSON_HEADERS, YAML_HEADERS, as_json, as_yaml, invoice_events, projects

PROBLEM = "application/problem+json"


@pytest.fixture
async def projects_api(client: AsyncTestClient, publisher_headers: dict[str, str]) -> str:
    response = await client.post(
        "/api/v1/apis",
        json={
            "name": "projects",
            "owner": "delivery",
            "title": "Projects",
            "layer": "system",
            "domain": "psa",
            "tags": ["psa", "projects"],
        },
        headers=publisher_headers,
    )
    assert response.status_code == 201, response.text
    return "projects"


def versions_url(api: str) -> str:
    return f"/api/v1/apis/{api}/versions"


async def publish(client: AsyncTestClient, headers: dict[str, str], body: bytes, content_type: str, **params):
    return await client.post(
        versions_url("projects"),
        content=body,
        headers={**headers, "Content-Type": content_type},
        params=params,
    )


async def test_publish_json_answers_the_stored_version(client, publisher_headers, projects_api):
    response = await publish(client, publisher_headers, as_json(projects()), "application/json")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["version"] == "1.0.0"
    assert body["state"] == "published"
    assert body["kind"] == "openapi"
    assert body["spec_version"] == "3.0.3"
    assert body["fingerprint"].startswith("sha256:")
    assert body["published_by"] == "delivery-ci"


async def test_same_content_in_other_format_and_key_order_is_the_same_version(
    client, publisher_headers, projects_api
):
    first = await publish(client, publisher_headers, as_json(projects()), "application/json")
    again = await publish(
        client, publisher_headers, as_yaml(projects(), reverse_keys=True), "application/yaml"
    )

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["fingerprint"] == first.json()["fingerprint"]
    listed = await client.get(versions_url("projects"), headers=publisher_headers)
    assert [v["version"] for v in listed.json()["items"]] == ["1.0.0"]


async def test_same_version_other_content_is_a_conflict_and_changes_nothing(
    client, publisher_headers, projects_api
):
    original = as_json(projects())
    await publish(client, publisher_headers, original, "application/json")

    changed = projects(description="changed")
    response = await publish(client, publisher_headers, as_json(changed), "application/json")

    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["type"] == "/problems/version-conflict"
    stored = await client.get(f"{versions_url('projects')}/1.0.0", headers=publisher_headers)
    assert stored.content == original


async def test_version_from_query_overrides_info_version(client, publisher_headers, projects_api):
    response = await publish(
        client, publisher_headers, as_json(projects()), "application/json", version="2.0.0"
    )
    assert response.status_code == 201
    assert response.json()["version"] == "2.0.0"


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "latest", "1.0.0.0"])
async def test_version_must_be_semver(client, publisher_headers, projects_api, version):
    response = await publish(client, publisher_headers, as_json(projects(version)), "application/json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/info/version"


async def test_invalid_document_lists_every_error_with_its_pointer(client, publisher_headers, projects_api):
    doc = projects()
    doc["paths"]["/projects"]["get"]["responses"] = "none"
    del doc["info"]["title"]

    response = await publish(client, publisher_headers, as_json(doc), "application/json")

    assert response.status_code == 422
    assert response.headers["content-type"].startswith(PROBLEM)
    pointers = {e["pointer"] for e in response.json()["errors"]}
    assert "/paths/~1projects/get/responses" in pointers
    assert "/info" in pointers or "/info/title" in pointers
    listed = await client.get(versions_url("projects"), headers=publisher_headers)
    assert listed.json()["items"] == []


async def test_unknown_kind_is_rejected(client, publisher_headers, projects_api):
    response = await publish(client, publisher_headers, b'{"info": {"version": "1.0.0"}}', "application/json")
    assert response.status_code == 422
    assert "openapi" in response.json()["detail"]


async def test_body_over_the_limit_is_413(database_url):
    app = create_app(make_settings(database_url, max_body_bytes=2048))
    async with AsyncTestClient(app) as client:
        headers = {"Authorization": f"Bearer {await fetch_token(client, 'admin', 'admin-secret')}"}
        doc = projects(description="x" * 4096)
        response = await client.post(
            "/api/v1/apis/big/versions", content=as_json(doc), headers={**headers, **JSON_HEADERS}
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM)


ALIAS_BOMB = b"""
openapi: 3.0.3
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
info: {title: bomb, version: 1.0.0}
paths: {}
"""


@pytest.mark.parametrize(
    ("body", "content_type", "statuses"),
    [
        (ALIAS_BOMB, "application/yaml", {413, 422}),
        (b"openapi: 3.0.3\nx: " + b"[" * 5000 + b"]" * 5000, "application/yaml", {422}),
        (b'{"openapi": "3.0.3", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json", {422}),
        (b"openapi: 3.0.3\ninfo: {title: caf\xe9}\n", "application/yaml", {422}),
        (b"{not json", "application/json", {422}),
        (b"- a list\n- not an object\n", "application/yaml", {422}),
        (b"", "application/json", {422}),
        (b"!!python/object:os.system {}", "application/yaml", {422}),
    ],
    ids=["alias-bomb", "deep-yaml", "deep-json", "not-utf8", "bad-json", "not-object", "empty", "python-tag"],
)
async def test_hostile_documents_are_refused_cleanly(
    client, publisher_headers, projects_api, body, content_type, statuses
):
    response = await publish(client, publisher_headers, body, content_type)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith(PROBLEM)


@pytest.mark.parametrize("case", ["bad-crc", "encrypted", "method-99"])
async def test_a_damaged_zip_is_422_naming_the_entry_and_stores_nothing(
    client, publisher_headers, projects_api, case
):
    response = await publish(client, publisher_headers, damaged_archives()[case], "application/zip")

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["detail"].startswith("api.json: ")
    listed = await client.get(versions_url("projects"), headers=publisher_headers)
    assert listed.json()["items"] == []


async def test_unsupported_media_type_is_415(client, publisher_headers, projects_api):
    response = await publish(client, publisher_headers, b"<xml/>", "application/xml")
    assert response.status_code == 415


async def test_syntax_only_validity_accepts_a_schema_invalid_document(client, publisher_headers):
    await client.post(
        "/api/v1/apis",
        json={
            "name": "loose",
            "owner": "delivery",
            "title": "Loose",
            "layer": "system",
            "validity": "syntax-only",
        },
        headers=publisher_headers,
    )
    doc = projects()
    doc["paths"]["/projects"]["get"]["responses"] = "none"
    response = await client.post(
        versions_url("loose"), content=as_json(doc), headers={**publisher_headers, **JSON_HEADERS}
    )
    assert response.status_code == 201, response.text


async def test_asyncapi_contract_is_published(client, publisher_headers):
    response = await client.post(
        versions_url("invoice-events"),
        content=as_yaml(invoice_events()),
        headers={**publisher_headers, **YAML_HEADERS},
        params={"owner": "delivery"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["kind"] == "asyncapi"
    api = await client.get("/api/v1/apis/invoice-events", headers=publisher_headers)
    assert api.json()["title"] == "Invoice events"
    assert api.json()["kind"] == "asyncapi"


async def test_unknown_api_without_owner_is_404(client, publisher_headers):
    response = await client.post(
        versions_url("nobody"), content=as_json(projects()), headers={**publisher_headers, **JSON_HEADERS}
    )
    assert response.status_code == 404


def social_media_zip() -> bytes:
    root = corpus("asyncapi", "social-media")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".yaml", ".yml", ".json"):
                archive.write(path, path.relative_to(root).as_posix())
    return buffer.getvalue()


def social_media_root() -> str:
    root = corpus("asyncapi", "social-media")
    candidates = sorted(p.relative_to(root).as_posix() for p in root.rglob("asyncapi.y*ml"))
    return next(c for c in candidates if c.startswith("backend"))


async def test_multi_file_bundle_is_stored_whole(client, publisher_headers):
    response = await client.post(
        versions_url("social-backend"),
        content=social_media_zip(),
        headers={**publisher_headers, "Content-Type": "application/zip"},
        params={"owner": "delivery", "root": social_media_root()},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "asyncapi"
    assert social_media_root() in body["files"]
    assert any(f.startswith("common/") for f in body["files"])
    common = next(f for f in body["files"] if f.startswith("common/"))
    stored = await client.get(
        f"{versions_url('social-backend')}/{body['version']}/files/{common}", headers=publisher_headers
    )
    assert stored.status_code == 200
    assert stored.content == corpus("asyncapi", "social-media", *common.split("/")).read_bytes()


async def test_multipart_upload_of_one_file(client, publisher_headers, projects_api):
    response = await client.post(
        versions_url("projects"),
        files={"file": ("projects.yaml", as_yaml(projects()), "application/yaml")},
        headers=publisher_headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["media_type"] == "application/yaml"


async def test_every_error_has_its_line_and_column_in_the_sent_text(client, publisher_headers, projects_api):
    doc = projects()
    doc["paths"]["/projects"]["post"]["operationId"] = "listProjects"
    doc["components"]["schemas"]["Project"]["properties"]["client"]["default"] = 5
    text = as_yaml(doc)
    lines = text.decode().splitlines()

    response = await publish(client, publisher_headers, text, "application/yaml")

    assert response.status_code == 422
    errors = {e["pointer"]: e for e in response.json()["errors"]}
    default = errors["/components/schemas/Project/properties/client/default"]
    assert lines[default["line"] - 1][default["column"] - 1 :].startswith("default: 5")
    operation_id = errors["/paths/~1projects/post/operationId"]
    assert lines[operation_id["line"] - 1][operation_id["column"] - 1 :] == "operationId: listProjects"
