"""Governance rulesets stored in the registry and applied when a contract is published."""

from __future__ import annotations

from tests.samples import JSON_HEADERS, as_json, projects

YAML = {"Content-Type": "application/yaml"}
STRICT = b"""
extends: charter:recommended
rules:
  operation-description: off
  project-names:
    description: operationIds start with a verb we know
    severity: error
    given: $.paths.*.*.operationId
    then:
      function: pattern
      functionOptions: {match: "^(list|get|create|update|delete)"}
"""


async def publish(client, headers, doc, **params):
    return await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(doc),
        headers={**headers, **JSON_HEADERS},
        params=params,
    )


async def test_team_ruleset_refuses_error_findings_with_pointers(client, publisher_headers, reader_headers):
    stored = await client.put(
        "/api/v1/teams/delivery/ruleset", content=STRICT, headers={**publisher_headers, **YAML}
    )
    assert stored.status_code == 200, stored.text
    read = await client.get("/api/v1/teams/delivery/ruleset", headers=reader_headers)
    assert read.json()["content"] == STRICT.decode()
    assert read.json()["scope"] == "team:delivery"

    doc = projects("1.0.0")
    doc["paths"]["/projects"]["get"]["operationId"] = "fetchProjects"
    refused = await publish(client, publisher_headers, doc, owner="delivery")
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "/problems/ruleset-violation"
    messages = {e["pointer"]: e["message"] for e in refused.json()["errors"]}
    assert messages["/paths/~1projects/get/operationId"].startswith("project-names:")
    # Nothing was stored.
    assert (await client.get("/api/v1/apis/projects", headers=reader_headers)).status_code == 404


async def test_invalid_ruleset_is_refused_and_nothing_changes(client, publisher_headers, admin_headers):
    bad = await client.put(
        "/api/v1/rulesets/global", content=b"rules: {no-such-rule: error}", headers={**admin_headers, **YAML}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/api/v1/rulesets/global", headers=admin_headers)).status_code == 404
    not_admin = await client.put(
        "/api/v1/rulesets/global", content=b"extends: charter:minimal", headers={**publisher_headers, **YAML}
    )
    assert not_admin.status_code == 403


async def test_without_a_ruleset_nothing_is_linted(client, publisher_headers):
    doc = projects("1.0.0")
    doc["paths"]["/projects"]["get"]["operationId"] = "Fetch_Projects"
    assert (await publish(client, publisher_headers, doc, owner="delivery")).status_code == 201


SPECTRAL = b"""
extends: [[spectral:oas, off]]
functions: [team-check]
rules:
  info-contact: error
  operation-ids-are-camel-case:
    message: "{{property}} is not camelCase: {{value}}"
    severity: error
    given: "$.paths[*][get,put,post,delete]"
    then: {field: operationId, function: casing, functionOptions: {type: camel}}
  checked-by-javascript:
    given: $
    severity: error
    then: {function: team-check}
"""


async def test_a_spectral_ruleset_as_it_is_written(client, publisher_headers, reader_headers):
    stored = await client.put(
        "/api/v1/teams/delivery/ruleset", content=SPECTRAL, headers={**publisher_headers, **YAML}
    )
    assert stored.status_code == 200, stored.text
    doc = projects("1.0.0")
    doc["info"].pop("contact", None)
    doc["paths"]["/projects"]["get"]["operationId"] = "List_Projects"
    refused = await publish(client, publisher_headers, doc, owner="delivery")
    assert refused.status_code == 422, refused.text
    messages = {e["pointer"]: e["message"] for e in refused.json()["errors"]}
    # Only errors refuse; the rule that needs JavaScript is a warning, reported but not blocking.
    assert messages == {
        "/info/contact": 'info-contact: "contact" property must be truthy',
        "/paths/~1projects/get/operationId": "operation-ids-are-camel-case: operationId is not camelCase:"
        " List_Projects",
    }
    # Each error says where it is in the text published, as validation errors do.
    located = {e["pointer"]: (e.get("line"), e.get("column")) for e in refused.json()["errors"]}
    text = as_json(doc).decode()
    line_of_id = text[: text.index('"List_Projects"')].count("\n") + 1
    assert located["/paths/~1projects/get/operationId"][0] == line_of_id
    assert located["/info/contact"][0] is not None
    doc["info"]["contact"] = {"name": "Delivery"}
    doc["paths"]["/projects"]["get"]["operationId"] = "listProjects"
    assert (await publish(client, publisher_headers, doc, owner="delivery")).status_code == 201


async def test_a_spectral_ruleset_with_a_regex_python_cannot_compile_is_refused(
    client, publisher_headers, reader_headers
):
    # Valid in JavaScript (a look-behind of variable width), refused by Python's `re`.
    bad = SPECTRAL + b"  r2: {given: $, then: {function: pattern, functionOptions: {match: '(?<=a+)b'}}}\n"
    refused = await client.put(
        "/api/v1/teams/delivery/ruleset", content=bad, headers={**publisher_headers, **YAML}
    )
    assert refused.status_code == 422, refused.text
    assert "invalid regular expression" in refused.json()["detail"]
    assert (await client.get("/api/v1/teams/delivery/ruleset", headers=reader_headers)).status_code == 404
