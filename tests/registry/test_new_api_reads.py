"""Every read of an API's own sub-resources answers for an API just created: what it has not got yet
is empty, never a 404 (the API exists; a 404 would tell a client it was lost after creation)."""

from __future__ import annotations

import re


async def test_a_new_api_answers_every_read_that_names_only_it(client, admin_headers):
    team = await client.post(
        "/api/v1/teams", json={"name": "newcomers", "members": []}, headers=admin_headers
    )
    assert team.status_code == 201, team.text
    created = await client.post(
        "/api/v1/apis",
        json={"name": "fresh", "owner": "newcomers", "title": "Fresh", "layer": "system"},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    schema = (await client.get("/schema/openapi.json")).json()
    reads = [
        path
        for path, item in schema["paths"].items()
        if "get" in item
        and path.startswith("/api/v1/apis/{name}/")
        and re.findall(r"{(\w+)}", path) == ["name"]
    ]
    assert len(reads) >= 5  # versions, consumers, diff-policy, ... (a renamed prefix would empty this)
    answers = {
        path: (await client.get(path.replace("{name}", "fresh"), headers=admin_headers)) for path in reads
    }
    lost = {
        path: (answer.status_code, answer.text[:200])
        for path, answer in answers.items()
        if answer.status_code >= 300
    }
    assert lost == {}
