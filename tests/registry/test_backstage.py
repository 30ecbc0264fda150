"""GET /api/v1/backstage/entities: the catalog as a Backstage location reads it (JSON or YAML)."""

from __future__ import annotations

import yaml

from registry.interop import backstage
from tests.samples import JSON_HEADERS, as_json, invoice_events, projects

URL = "/api/v1/backstage/entities"


def by_name(entities: list[dict]) -> dict[tuple[str, str], dict]:
    return {(e["kind"], e["metadata"]["name"]): e for e in entities}


async def test_each_api_and_team_is_an_entity_whose_definition_url_serves_the_document(
    client, published, settings, reader_headers, admin_headers
):
    await client.patch(
        "/api/v1/apis/projects",
        json={"domain": "delivery-ops", "tags": ["Time Tracking", "core"]},
        headers=admin_headers,
    )
    response = await client.get(URL, headers=reader_headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    entities = by_name(response.json())
    api = entities[("API", "projects")]
    assert api["apiVersion"] == "backstage.io/v1alpha1"
    assert api["spec"]["type"] == "openapi"
    assert api["spec"]["lifecycle"] == "production"
    assert api["spec"]["owner"] == "group:default/delivery"
    assert api["spec"]["system"] == "delivery-ops"
    assert api["metadata"]["tags"] == ["time-tracking", "core"]
    assert api["metadata"]["annotations"]["charter.dev/version"] == "2.0.0"
    group = entities[("Group", "delivery")]
    assert group["spec"] == {"type": "team", "children": [], "members": ["user:default/delivery-ci"]}

    # Backstage follows $text: the URL is absolute under the public URL and serves the document.
    url = api["spec"]["definition"]["$text"]
    assert url.startswith(settings.public_url + "/")
    document = await client.get(url.removeprefix(settings.public_url), headers=reader_headers)
    assert document.status_code == 200, document.text
    assert document.json()["info"]["version"] == "2.0.0"


async def test_yaml_is_a_stream_of_documents_with_the_same_entities(client, published, reader_headers):
    as_json_list = (await client.get(URL, headers=reader_headers)).json()
    response = await client.get(URL, headers={**reader_headers, "Accept": "application/yaml"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.text.startswith("---\n")
    assert list(yaml.safe_load_all(response.text)) == as_json_list


async def test_lifecycle_follows_the_latest_version_state(client, publisher_headers, reader_headers):
    await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects("1.0.0")),
        headers={**publisher_headers, **JSON_HEADERS},
        params={"owner": "delivery"},
    )
    await client.post(
        "/api/v1/apis/projects/versions/1.0.0/deprecate",
        json={"sunset": "2030-01-01"},
        headers=publisher_headers,
    )
    await client.post(
        "/api/v1/apis/invoices/versions",
        content=as_json(invoice_events("0.1.0")),
        headers={**publisher_headers, **JSON_HEADERS},
        params={"owner": "delivery", "draft": "true"},
    )
    entities = by_name((await client.get(URL, headers=reader_headers)).json())
    assert entities[("API", "projects")]["spec"]["lifecycle"] == "deprecated"
    draft = entities[("API", "invoices")]["spec"]
    assert (draft["lifecycle"], draft["type"]) == ("experimental", "asyncapi")
    assert draft["definition"]["$text"].endswith("/api/v1/apis/invoices/versions/0.1.0")


async def test_callers_need_read_access(client, published):
    assert (await client.get(URL)).status_code == 401


async def test_entities_come_in_batches_and_none_is_lost(client, admin_headers, reader_headers, monkeypatch):
    monkeypatch.setattr(backstage, "BATCH", 2)
    for n in range(5):
        await client.post("/api/v1/teams", json={"name": f"team-{n}"}, headers=admin_headers)
        response = await client.post(
            f"/api/v1/apis/api-{n}/versions",
            content=as_json(projects("1.0.0", title=f"API {n}")),
            headers={**admin_headers, **JSON_HEADERS},
            params={"owner": f"team-{n}", "draft": "true"},
        )
        assert response.status_code == 201, response.text
    for accept in ("application/json", "application/yaml"):
        response = await client.get(URL, headers={**reader_headers, "Accept": accept})
        entities = (
            yaml.safe_load(response.text)
            if accept.endswith("json")
            else list(yaml.safe_load_all(response.text))
        )
        assert sorted(by_name(entities)) == sorted(
            [("API", f"api-{n}") for n in range(5)] + [("Group", f"team-{n}") for n in range(5)]
        )
