"""Lint: each built-in rule on a passing and a failing document, rulesets, custom rules and renderers."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import ContractError, UnknownKind
from contracts.lint import (
    BUILTIN_RULESETS,
    RULES,
    Finding,
    InvalidRuleset,
    Severity,
    lint,
    load_ruleset,
)
from contracts.lint.canonical import CONTEXT_RULES
from contracts.lint.catalog import render_markdown
from contracts.lint.render import as_json, as_sarif, as_text
from contracts.lint.spectral import paths as jsonpath
from contracts.loading import load_document
from contracts.references import resolve_pointer

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "lint_fixtures"
Doc = dict[str, Any]
Edit = Callable[[Doc], None]

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
INFO = {
    "title": "Projects",
    "version": "1.0.0",
    "contact": {"name": "Delivery", "email": "delivery@example.com"},
    "x-owner": "delivery",
}


def openapi(version: str = "3.0.3") -> Doc:
    """Clean under `charter:recommended`: every rule below breaks it in one place."""
    return {
        "openapi": version,
        "info": copy.deepcopy(INFO),
        "servers": [{"url": "https://psa.example.com/api?region=eu"}],
        "security": [{"oauth": ["projects:read"]}],
        "paths": {
            "/projects": {
                "get": {
                    "operationId": "listProjects",
                    "summary": "List projects",
                    "responses": {"200": {"description": "Projects"}},
                },
                "post": {
                    "operationId": "createProject",
                    "description": "Create a project from a won opportunity",
                    "security": [{"oauth": ["projects:write"]}],
                    "responses": {
                        "201": {"description": "Created"},
                        "422": {"$ref": "#/components/responses/Invalid"},
                    },
                },
            },
            "/projects/{projectId}/time-entries": {
                "get": {
                    "operationId": "listTimeEntries",
                    "summary": "Time booked on a project",
                    "security": [],
                    "responses": {
                        "200": {"description": "Entries"},
                        "404": {"description": "No such project", "content": copy.deepcopy(PROBLEM)},
                        "5XX": {
                            "description": "Failure",
                            "content": {"application/problem+json; charset=utf-8": {}},
                        },
                    },
                }
            },
        },
        "components": {
            "responses": {"Invalid": {"description": "Invalid", "content": copy.deepcopy(PROBLEM)}},
            "schemas": {"Problem": {"type": "object"}},
            "securitySchemes": {
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "https://auth.example.com/token",
                            "scopes": {"projects:read": "read", "projects:write": "write"},
                        }
                    },
                }
            },
        },
    }


def swagger() -> Doc:
    return {
        "swagger": "2.0",
        "info": copy.deepcopy(INFO),
        "host": "psa.example.com",
        "basePath": "/api",
        "produces": ["application/json", "application/problem+json"],
        "security": [{"key": []}],
        "securityDefinitions": {"key": {"type": "apiKey", "name": "X-Key", "in": "header"}},
        "paths": {
            "/projects/{projectId}": {
                "get": {
                    "operationId": "getProject",
                    "summary": "Read one project",
                    "parameters": [{"name": "projectId", "in": "path", "required": True, "type": "string"}],
                    "responses": {
                        "200": {"description": "The project"},
                        "404": {"description": "No such project", "schema": {"type": "object"}},
                    },
                }
            }
        },
    }


def asyncapi2() -> Doc:
    return {
        "asyncapi": "2.6.0",
        "info": copy.deepcopy(INFO),
        "servers": {"broker": {"url": "amqp://broker.example.com:5672", "protocol": "amqp"}},
        "channels": {
            "finance.invoice.issued": {
                "subscribe": {
                    "summary": "An invoice was issued",
                    "message": {"oneOf": [{"$ref": "#/components/messages/Issued"}]},
                }
            },
            "finance.invoice.paid": {
                "publish": {
                    "description": "An invoice was paid",
                    "message": {"name": "InvoicePaid", "payload": {"type": "object"}},
                }
            },
        },
        "components": {"messages": {"Issued": {"name": "InvoiceIssued", "payload": {"type": "object"}}}},
    }


def asyncapi3() -> Doc:
    return {
        "asyncapi": "3.0.0",
        "info": copy.deepcopy(INFO),
        "servers": {"broker": {"host": "broker.example.com:9092", "protocol": "kafka"}},
        "channels": {
            "invoiceIssued": {
                "address": "finance.invoice.issued",
                "messages": {"issued": {"$ref": "#/components/messages/Issued"}},
            },
            "tenantEvents": {"address": None},
        },
        "operations": {
            "onInvoiceIssued": {
                "action": "receive",
                "channel": {"$ref": "#/channels/invoiceIssued"},
                "summary": "An invoice was issued to a client",
                "messages": [{"$ref": "#/channels/invoiceIssued/messages/issued"}],
            }
        },
        "components": {
            "messages": {
                "Issued": {"name": "InvoiceIssued", "payload": {"$ref": "#/components/schemas/Issued"}},
                "Unused": {"name": "Unused", "payload": {"type": "string"}},
            },
            "schemas": {"Issued": {"type": "object"}},
        },
    }


BASES: dict[str, Callable[[], Doc]] = {
    "openapi-3.0": openapi,
    "openapi-3.1": lambda: openapi("3.1.0"),
    "swagger-2.0": swagger,
    "asyncapi-2.6": asyncapi2,
    "asyncapi-3.0": asyncapi3,
}


def rule_ids(doc: Doc, ruleset: Any = None) -> list[str]:
    findings = lint(doc) if ruleset is None else lint(doc, ruleset)
    for finding in findings:
        resolve_pointer(doc, finding.pointer)  # every finding points at something that exists
    return sorted(f.rule for f in findings)


def edited(base: str, edit: Edit) -> Doc:
    doc = BASES[base]()
    edit(doc)
    return doc


@pytest.mark.parametrize("base", sorted(BASES))
def test_base_documents_pass_every_rule(base: str) -> None:
    assert lint(BASES[base]()) == []


def _op(doc: Doc, path: str = "/projects", method: str = "get") -> Doc:
    return doc["paths"][path][method]


def _rename_path(old: str, new: str) -> Edit:
    return lambda d: d["paths"].update({new: d["paths"].pop(old)})


def _set_server(url: str) -> Edit:
    return lambda d: d.update(servers=[{"url": url}])


# (rule, base document, edit, the exact rule ids found)
FAILING: list[tuple[str, str, Edit, list[str]]] = [
    ("operation-id-present", "openapi-3.0", lambda d: _op(d).pop("operationId"), ["operation-id-present"]),
    (
        "operation-id-present",
        "swagger-2.0",
        lambda d: _op(d, "/projects/{projectId}").update(operationId=" "),
        ["operation-id-present"],
    ),
    (
        "operation-id-unique",
        "openapi-3.1",
        lambda d: _op(d, "/projects", "post").update(operationId="listProjects"),
        ["operation-id-unique", "operation-id-unique"],
    ),
    (
        "operation-id-camel-case",
        "openapi-3.0",
        lambda d: _op(d).update(operationId="list_projects"),
        ["operation-id-camel-case"],
    ),
    (
        "operation-id-camel-case",
        "openapi-3.0",
        lambda d: _op(d).update(operationId="ListProjects"),
        ["operation-id-camel-case"],
    ),
    ("operation-description", "openapi-3.0", lambda d: _op(d).pop("summary"), ["operation-description"]),
    (
        "operation-description",
        "asyncapi-2.6",
        lambda d: d["channels"]["finance.invoice.paid"]["publish"].update(description=""),
        ["operation-description"],
    ),
    (
        "operation-description",
        "asyncapi-3.0",
        lambda d: d["operations"]["onInvoiceIssued"].pop("summary"),
        ["operation-description"],
    ),
    (
        "operation-security-defined",
        "openapi-3.0",
        lambda d: d.pop("security"),
        ["operation-security-defined"],
    ),
    (
        "operation-security-defined",
        "openapi-3.1",
        lambda d: d.update(security=[]),
        ["operation-security-defined"],
    ),
    (
        "operation-security-defined",
        "swagger-2.0",
        lambda d: d.pop("security"),
        ["operation-security-defined"],
    ),
    (
        "error-response-problem-json",
        "openapi-3.0",
        lambda d: _op(d, "/projects/{projectId}/time-entries")["responses"]["404"].pop("content"),
        ["error-response-problem-json"],
    ),
    (
        "error-response-problem-json",
        "openapi-3.1",
        lambda d: d["components"]["responses"]["Invalid"].update(
            content={"application/json": {"schema": {"type": "object"}}}
        ),
        ["error-response-problem-json"],
    ),
    (
        "error-response-problem-json",
        "swagger-2.0",
        lambda d: d.update(produces=["application/json"]),
        ["error-response-problem-json"],
    ),
    ("path-kebab-case", "openapi-3.0", _rename_path("/projects", "/project_list"), ["path-kebab-case"]),
    (
        "path-kebab-case",
        "swagger-2.0",
        _rename_path("/projects/{projectId}", "/Projects/{projectId}"),
        ["path-kebab-case"],
    ),
    ("path-no-verbs", "openapi-3.0", _rename_path("/projects", "/list-projects"), ["path-no-verbs"]),
    (
        "path-no-verbs",
        "openapi-3.1",
        _rename_path("/projects/{projectId}/time-entries", "/projects/{projectId}/delete"),
        ["path-no-verbs"],
    ),
    ("info-contact", "openapi-3.0", lambda d: d["info"].pop("contact"), ["info-contact"]),
    ("info-contact", "asyncapi-3.0", lambda d: d["info"].update(contact={"name": ""}), ["info-contact"]),
    ("info-owner", "openapi-3.1", lambda d: d["info"].pop("x-owner"), ["info-owner"]),
    ("info-owner", "asyncapi-2.6", lambda d: d["info"].update({"x-owner": ""}), ["info-owner"]),
    (
        "servers-no-secrets",
        "openapi-3.0",
        _set_server("https://bob:hunter2@psa.example.com"),
        ["servers-no-secrets"],
    ),
    (
        "servers-no-secrets",
        "openapi-3.1",
        _set_server("https://psa.example.com/api?access_token=abc&password=x"),
        ["servers-no-secrets", "servers-no-secrets"],
    ),
    (
        "servers-no-secrets",
        "openapi-3.0",
        lambda d: _op(d).update(servers=[{"url": "https://psa.example.com?apiKey=1"}]),
        ["servers-no-secrets"],
    ),
    (
        "servers-no-secrets",
        "swagger-2.0",
        lambda d: d.update(host="ci:s3cret@psa.example.com"),
        ["servers-no-secrets"],
    ),
    (
        "servers-no-secrets",
        "asyncapi-2.6",
        lambda d: d["servers"]["broker"].update(url="amqp://guest:guest@broker:5672"),
        ["servers-no-secrets"],
    ),
    (
        "servers-no-secrets",
        "asyncapi-3.0",
        lambda d: d["servers"]["broker"].update(host="ci:s3cret@broker.example.com:9092"),
        ["servers-no-secrets"],
    ),
    (
        "channel-address-taxonomy",
        "asyncapi-2.6",
        lambda d: d["channels"].update({"invoices/paid": d["channels"].pop("finance.invoice.paid")}),
        ["channel-address-taxonomy"],
    ),
    (
        "channel-address-taxonomy",
        "asyncapi-3.0",
        lambda d: d["channels"]["invoiceIssued"].update(address="Finance.Invoice.Issued"),
        ["channel-address-taxonomy"],
    ),
    (
        "channel-address-taxonomy",
        "asyncapi-3.0",
        lambda d: d["channels"]["invoiceIssued"].update(address="finance.invoice.issued.v1"),
        ["channel-address-taxonomy"],
    ),
    (
        "message-payload",
        "asyncapi-2.6",
        lambda d: d["components"]["messages"]["Issued"].pop("payload"),
        ["message-payload"],
    ),
    (
        "message-payload",
        "asyncapi-3.0",
        lambda d: d["components"]["messages"]["Unused"].update(payload=None),
        ["message-payload"],
    ),
    (
        "message-name",
        "asyncapi-2.6",
        lambda d: d["channels"]["finance.invoice.paid"]["publish"]["message"].pop("name"),
        ["message-name"],
    ),
    (
        "message-name",
        "asyncapi-3.0",
        lambda d: d["components"]["messages"]["Issued"].pop("name"),
        ["message-name"],
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "base", "edit", "expected"),
    FAILING,
    ids=[f"{case[0]}@{case[1]}#{index}" for index, case in enumerate(FAILING)],
)
def test_rule_fails(rule_id: str, base: str, edit: Edit, expected: list[str]) -> None:
    assert rule_id in expected
    assert rule_ids(edited(base, edit)) == expected


def test_every_rule_has_a_failing_case_and_applies_only_to_its_family() -> None:
    assert {case[0] for case in FAILING} == set(RULES) - set(CONTEXT_RULES)
    for rule_id, base, _, _ in FAILING:
        family = base.split("-")[0].replace("swagger", "openapi")
        assert family in RULES[rule_id].families


# Passing variants beyond the clean bases: each edit is allowed by the rule it names.
PASSING: list[tuple[str, str, Edit]] = [
    ("operation-id-camel-case", "openapi-3.0", lambda d: _op(d).update(operationId="listProjectsV2")),
    ("operation-description", "openapi-3.0", lambda d: _op(d).update(summary="", description="Projects")),
    ("operation-security-defined", "openapi-3.0", lambda d: [d.pop("security"), _op(d).update(security=[])]),
    ("error-response-problem-json", "openapi-3.0", lambda d: _op(d)["responses"].update({"default": {}})),
    ("path-kebab-case", "openapi-3.0", _rename_path("/projects", "/v2/project-templates")),
    ("path-no-verbs", "openapi-3.0", _rename_path("/projects", "/listings/{list}")),
    ("info-contact", "openapi-3.0", lambda d: d["info"].update(contact={"url": "https://example.com/team"})),
    ("info-owner", "openapi-3.1", lambda d: d.update({"x-owner": d["info"].pop("x-owner")})),
    ("servers-no-secrets", "openapi-3.0", _set_server("https://{tenant}.example.com/api?version=2")),
    (
        "channel-address-taxonomy",
        "asyncapi-3.0",
        lambda d: d["channels"]["invoiceIssued"].update(address="finance.credit-note.issued"),
    ),
    ("message-payload", "asyncapi-3.0", lambda d: d["components"]["messages"]["Unused"].update(payload=True)),
]


@pytest.mark.parametrize(("rule_id", "base", "edit"), PASSING, ids=[case[0] for case in PASSING])
def test_rule_passes(rule_id: str, base: str, edit: Edit) -> None:
    assert rule_id in RULES
    assert rule_ids(edited(base, edit)) == []


def test_findings_carry_severity_message_pointer_and_operation() -> None:
    doc = edited("openapi-3.1", lambda d: d["components"]["responses"]["Invalid"].update(content={}))
    (finding,) = lint(doc)
    assert finding == Finding(
        rule="error-response-problem-json",
        severity=Severity.WARNING,
        message="POST /projects: 422 response has no body; describe the error as application/problem+json",
        pointer="/components/responses/Invalid",  # where the `$ref` leads: that is what to fix
        operation="POST /projects",
    )
    path = edited("openapi-3.0", _rename_path("/projects", "/a~b/get"))
    assert [(f.rule, f.pointer, f.operation) for f in lint(path)] == [
        ("path-kebab-case", "/paths/~1a~0b~1get", None),
        ("path-no-verbs", "/paths/~1a~0b~1get", None),
    ]


def test_findings_are_sorted_most_severe_first_then_by_pointer() -> None:
    doc = openapi()
    doc.pop("security")
    doc["info"].pop("contact")
    _op(doc).update(operationId="list_projects")
    findings = lint(doc)
    assert [(f.severity.value, f.pointer) for f in findings] == [
        ("error", "/paths/~1projects/get"),
        ("warning", "/info"),
        ("warning", "/paths/~1projects/get/operationId"),
    ]
    assert lint(doc) == findings


def test_cyclic_references_terminate() -> None:
    doc = asyncapi3()
    doc["components"]["messages"]["Loop"] = {"$ref": "#/components/messages/Loop"}
    assert rule_ids(doc) == []


def test_not_a_contract_is_refused() -> None:
    with pytest.raises(UnknownKind):
        lint({"hello": "world"})


# Contracts, not canonical models (JSON Schema documents, which have no lint rules of their own).
DEMO = sorted(
    p
    for p in (ROOT / "registry" / "demo").glob("*.yaml")
    if p.name != "manifest.yaml" and "$schema" not in load_document(p.read_bytes())
)


@pytest.mark.parametrize("path", DEMO, ids=[p.name for p in DEMO])
def test_demo_contracts_lint_with_valid_pointers(path: Path) -> None:
    doc = load_document(path.read_bytes())
    del doc["info"]["x-owner"]  # the demo lints clean: without its owner it has a finding at least
    findings = lint(doc, BUILTIN_RULESETS["charter:recommended"])
    assert findings
    for finding in findings:
        assert finding.rule in RULES
        assert re.fullmatch(r"(/([^~/]|~[01])*)*", finding.pointer)
        resolve_pointer(doc, finding.pointer)


# --- rulesets ----------------------------------------------------------------------------------------


def test_builtin_rulesets() -> None:
    recommended = BUILTIN_RULESETS["charter:recommended"]
    minimal = BUILTIN_RULESETS["charter:minimal"]
    assert recommended.severities == {rule.id: rule.severity for rule in RULES.values()}
    assert set(minimal.severities) == {
        "operation-id-present",
        "operation-id-unique",
        "operation-security-defined",
        "servers-no-secrets",
        "message-payload",
        # Checked on publish, where the registry hands in the canonical models.
        "canonical-reference",
        "canonical-projection",
    }
    doc = edited("openapi-3.0", lambda d: [d.pop("security"), d["info"].pop("contact")])
    assert rule_ids(doc, minimal) == ["operation-security-defined"]


def test_team_ruleset_extends_changes_a_severity_disables_a_rule_and_adds_a_pattern_rule() -> None:
    ruleset = load_ruleset((FIXTURES / "team-ruleset.yaml").read_bytes())
    doc = openapi()
    doc["info"].pop("x-owner")
    doc["info"]["version"] = "1.0"
    _op(doc).pop("summary")
    _op(doc).update(operationId="list_projects")
    findings = lint(doc, ruleset)
    assert [(f.rule, f.severity.value, f.pointer) for f in findings] == [
        ("info-owner", "error", "/info"),
        ("semantic-version", "error", "/info/version"),
        ("operation-id-camel-case", "warning", "/paths/~1projects/get/operationId"),
    ]
    assert findings[1].message == (
        "info.version is a semantic version: `version` is '1.0', "
        "which does not match /^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$/"
    )
    assert ruleset.description_of("semantic-version") == "info.version is a semantic version"
    assert lint(openapi(), ruleset) == []


def test_ruleset_without_extends_runs_only_what_it_names() -> None:
    ruleset = load_ruleset('{"rules": {"info-contact": "error"}}')
    doc = edited("openapi-3.0", lambda d: [d.pop("security"), d["info"].pop("contact")])
    assert [(f.rule, f.severity) for f in lint(doc, ruleset)] == [("info-contact", Severity.ERROR)]


def test_extends_a_list_merges_in_order() -> None:
    ruleset = load_ruleset("extends: [charter:minimal, charter:recommended]\nrules: {info-owner: info}\n")
    assert set(ruleset.severities) == set(RULES)
    assert ruleset.severities["info-owner"] is Severity.INFO


def custom(body: str) -> Any:
    return load_ruleset(f"rules:\n  custom-check:\n{body}")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "    given: $.paths.*\n"
            "    then: {field: '@key', function: pattern, functionOptions: {match: ^/api/}}\n",
            ["/paths/~1projects", "/paths/~1projects~1{projectId}~1time-entries"],
        ),
        (
            "    given: $.paths.*[get,post]\n    then: {field: tags, function: truthy}\n",
            [
                "/paths/~1projects/get",
                "/paths/~1projects/post",
                "/paths/~1projects~1{projectId}~1time-entries/get",
            ],
        ),
        ("    given: $..deprecated\n    then: {function: falsy}\n", []),
        (
            "    given: \"$.paths['/projects'].*.operationId\"\n"
            "    then: {function: pattern, functionOptions: {notMatch: ^create}}\n",
            ["/paths/~1projects/post/operationId"],
        ),
        (
            "    given: $.paths.*.*.responses\n    then: {function: length, functionOptions: {max: 1}}\n",
            [
                "/paths/~1projects/post/responses",
                "/paths/~1projects~1{projectId}~1time-entries/get/responses",
            ],
        ),
        (
            "    given: $.paths.*.*.responses.*\n    then: {field: description, function: enum,"
            " functionOptions: {values: [Projects, Created, Entries]}}\n",
            [
                "/components/responses/Invalid/description",
                "/paths/~1projects~1{projectId}~1time-entries/get/responses/404/description",
                "/paths/~1projects~1{projectId}~1time-entries/get/responses/5XX/description",
            ],
        ),
        (
            "    given: [$.info, $.info]\n    then:\n      - {field: x-owner, function: falsy}\n"
            "      - {field: x-team, function: truthy}\n",
            ["/info", "/info/x-owner"],
        ),
        (
            "    given: $.servers[0].url\n    then: {function: length, functionOptions: {min: 100}}\n",
            ["/servers/0/url"],
        ),
        ("    severity: 'off'\n    given: $\n    then: {function: falsy}\n", []),
    ],
)
def test_custom_rule_functions(body: str, expected: list[str]) -> None:
    findings = lint(openapi(), custom(body))
    assert sorted(f.pointer for f in findings) == expected
    assert all(f.rule == "custom-check" and f.severity is Severity.WARNING for f in findings)


def test_custom_findings_name_their_operation() -> None:
    ruleset = custom("    given: $.paths./projects.post\n    then: {field: deprecated, function: truthy}\n")
    (finding,) = lint(openapi(), ruleset)
    assert (finding.operation, finding.pointer) == ("POST /projects", "/paths/~1projects/post")
    assert finding.message == "`deprecated` is missing"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("rules: {operation-id-kebab-case: error}", "unknown rule `operation-id-kebab-case`"),
        ("rules: {info-owner: fatal}", "expected off, error, warning, info or a custom rule"),
        ("extends: charter:strict", "`extends: charter:strict` is not a built-in ruleset"),
        ("extends: spectral:style", "`extends: spectral:style`: only built-in rulesets can be extended"),
        ("extend: charter:minimal", "unknown field `extend`"),
        ("rules: [info-owner]", "Expected `object`, got `array` (at `rules`)"),
        ("rules: {info-owner: {given: $, then: {function: truthy}}}", "rule `info-owner` is built in"),
        ("rules: {My_Rule: {given: $, then: {function: truthy}}}", "`My_Rule` is not kebab-case"),
        ("rules: {r: {then: {function: truthy}}}", "rule `r`: Object missing required field `given`"),
        ("rules: {r: {given: $}}", "missing required field `then`"),
        ("rules: {r: {given: $, then: []}}", "`then` is empty"),
        ("rules: {r: {given: 'info', then: {function: truthy}}}", "a path starts with `$`"),
        ("rules: {r: {given: '$.a[?(typeof @.b)]', then: {function: truthy}}}", "not a supported path"),
        (
            "rules: {r: {given: $, then: {function: schema}}}",
            "`schema` options: Object missing required field `schema`",
        ),
        ("rules: {r: {given: $, then: {function: pattern}}}", "`pattern` needs `match`, `notMatch` or both"),
        (
            "rules: {r: {given: $, then: {function: pattern, functionOptions: {match: '('}}}}",
            "invalid regular expression '('",
        ),
        ("rules: {r: {given: $, then: {function: truthy, functionOptions: {x: 1}}}}", "unknown field `x`"),
        ("rules: {r: {given: $, then: {function: enum}}}", "missing required field `values`"),
        (
            "rules: {r: {given: $, then: {function: length, functionOptions: {min: a}}}}",
            "Expected `int | null`",
        ),
        ("rules: {r: {given: $, severity: fatal, then: {function: truthy}}}", "(at `severity`)"),
        ("rules: {unclosed", "ruleset is unreadable: invalid YAML"),
        ("- just a list", "ruleset is unreadable"),
        ("", "ruleset is unreadable: document is empty"),
    ],
)
def test_invalid_rulesets_say_what_is_wrong(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRuleset) as caught:
        load_ruleset(text)
    assert isinstance(caught.value, ContractError)
    assert fragment in caught.value.detail
    assert "\n" not in caught.value.detail


# --- the JSONPath subset ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "pointers"),
    [
        ("$", [""]),
        ("$.info", ["/info"]),
        ("$['info']['x-owner']", ["/info/x-owner"]),
        ('$["info"].title', ["/info/title"]),
        ("$.servers[0].url", ["/servers/0/url"]),
        ("$.servers[-1]", ["/servers/0"]),
        ("$.paths.*.post", ["/paths/~1projects/post"]),
        (
            "$.paths[*][get, 'post'].operationId",
            [
                "/paths/~1projects/get/operationId",
                "/paths/~1projects/post/operationId",
                "/paths/~1projects~1{projectId}~1time-entries/get/operationId",
            ],
        ),
        ("$.paths./projects.post.responses.422", ["/components/responses/Invalid"]),
        # Both `schema`s are `$ref`s to one schema: it is selected once, where it is written.
        ("$..schema", ["/components/schemas/Problem"]),
        (
            "$..content.*",
            [  # first reached: the 422 of POST /projects leads to the shared response's content
                "/components/responses/Invalid/content/application~1problem+json",
                "/paths/~1projects~1{projectId}~1time-entries/get/responses/404/content/application~1problem+json",
                "/paths/~1projects~1{projectId}~1time-entries/get/responses/5XX/content/"
                "application~1problem+json; charset=utf-8",
            ],
        ),
        ("$.nothing.here", []),
    ],
)
def test_jsonpath_subset(expression: str, pointers: list[str]) -> None:
    assert [m.pointer for m in jsonpath.evaluate(openapi(), jsonpath.parse(expression))] == pointers


def test_jsonpath_recursive_wildcard_visits_every_node_once() -> None:
    doc = {"a": {"b": [1, {"c": 2}]}}
    assert [m.pointer for m in jsonpath.evaluate(doc, jsonpath.parse("$..*"))] == [
        "/a",
        "/a/b",
        "/a/b/0",
        "/a/b/1",
        "/a/b/1/c",
    ]


@pytest.mark.parametrize("expression", ["", "info", "$.", "$..", "$[", "$['a'", "$x", "$.a[?(typeof @)]"])
def test_jsonpath_refuses_what_it_does_not_support(expression: str) -> None:
    with pytest.raises(ValueError):
        jsonpath.parse(expression)


# --- renderers and the published page ------------------------------------------------------------------


def test_renderers() -> None:
    doc = edited("openapi-3.0", lambda d: [d.pop("security"), d["info"].pop("contact")])
    findings = lint(doc)
    text = as_text(findings).splitlines()
    assert text[0] == (
        "ERROR   operation-security-defined  GET /projects has no security requirement, nor has the"
        " document; declare one, or `security: []` if it is public  [/paths/~1projects/get]"
    )
    assert text[-1] == "2 findings (1 error, 1 warning)"
    assert as_text([]) == "no findings\n"
    body = json.loads(as_json(findings))
    assert (body["errors"], body["warnings"], body["infos"]) == (1, 1, 0)
    assert body["findings"][1] == {
        "rule": "info-contact",
        "severity": "warning",
        "message": "`info.contact` names no one (name, email or url)",
        "pointer": "/info",
        "operation": None,
    }
    sarif = json.loads(as_sarif(findings, uri="api.yaml", ruleset=BUILTIN_RULESETS["charter:recommended"]))
    run = sarif["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["info-contact", "operation-security-defined"]
    assert [(r["ruleId"], r["level"], r["ruleIndex"]) for r in run["results"]] == [
        ("operation-security-defined", "error", 1),
        ("info-contact", "warning", 0),
    ]


def test_published_rule_catalog_matches_the_code() -> None:
    published = ROOT / "docs" / "lint-rules.md"
    assert published.read_text() == render_markdown(), (
        "regenerate: python -m contracts.lint > docs/lint-rules.md"
    )
    for rule_id in RULES:
        assert f"| `{rule_id}` |" in published.read_text()
