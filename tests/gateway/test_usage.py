"""The gateway records which consumer called which operation; impact analysis uses it."""

from __future__ import annotations

import json

import yaml

from registry import usage
from registry.demo import DEMO_DIR


async def test_usage_is_recorded_and_counts_in_impact(app, client, billing, reporting, admin):
    for _ in range(3):
        assert (await client.get("/gw/projects/v1/projects/p-1", headers=billing)).status_code == 200
    assert (await client.get("/gw/projects/v1/projects", headers=reporting)).status_code == 200
    assert (await client.get("/gw/projects/v1/projects/nope", headers=reporting)).status_code == 404
    await usage.flush(app.state.sessionmaker, app.state.gateway.usage)

    seen = (await client.get("/api/v1/apis/projects/usage", headers=admin)).json()["items"]
    assert [(u["consumer"], u["operation"], u["calls"]) for u in seen] == [
        ("billing-app", "GET /projects/{projectId}", 3),
        ("reporting-app", "GET /projects", 1),
    ]

    candidate = yaml.safe_load((DEMO_DIR / "projects-1.1.0.yaml").read_text())
    candidate["info"]["version"] = "2.0.0"
    del candidate["paths"]["/projects/{projectId}"]["get"]
    impact = await client.post(
        "/api/v1/apis/projects/impact",
        content=json.dumps(candidate),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert impact.status_code == 200, impact.text
    (affected,) = impact.json()["affected"]
    assert affected["consumer"] == "billing-app"
    assert (affected["observed"], affected["team"], affected["base_version"]) == (True, None, "1.1.0")
    assert affected["change_ids"] == ["api-removed-without-deprecation"]
