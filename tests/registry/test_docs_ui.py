"""The registry's own OpenAPI document and its docs UI work offline."""

from __future__ import annotations

import re


async def test_openapi_document_describes_the_registry(client):
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert "/api/v1/apis/{name}/versions" in document["paths"]
    publish = document["paths"]["/api/v1/apis/{name}/versions"]["post"]
    assert set(publish["requestBody"]["content"]) >= {
        "application/json",
        "application/yaml",
        "application/zip",
    }
    assert "422" in publish["responses"]


async def test_docs_page_loads_only_local_assets(client):
    page = await client.get("/schema/swagger")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert urls, page.text[:500]
    assert not [u for u in urls if u.startswith(("http://", "https://", "//"))]
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000
