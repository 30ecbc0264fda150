"""Spectral rulesets as they are written: two public style guides over a small document whose findings
are worked out by hand and over Stripe's, the JSONPath Plus forms they use, the core functions, and
the bounds a team's ruleset runs within."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from contracts.lint import InvalidRuleset, Severity, lint, load_ruleset
from contracts.lint.spectral import paths
from contracts.lint.spectral.builtin import builtin_rulesets
from contracts.loading import load_document

HERE = Path(__file__).resolve().parent
GUIDES = HERE / "spectral_rulesets"
ZALANDO = GUIDES / "baloise" / "zalando.yml"
ADIDAS = GUIDES / "adidas" / "adidas-spectral.yaml"
CORPUS = Path("/work/shared/corpus")
STRIPE = CORPUS / "stripe" / "spec3-v110.json"
E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741


def orders() -> dict:
    return load_document((HERE / "spectral_fixtures" / "orders.yaml").read_bytes())


def found(doc: dict, ruleset_text: str | bytes) -> set[tuple[str, Severity, str]]:
    return {(f.rule, f.severity, f.pointer) for f in lint(doc, load_ruleset(ruleset_text))}


# --- the Zalando guidelines as Baloise wrote them for Spectral ------------------------------------------


def test_zalando_guide_on_a_document_worked_out_by_hand() -> None:
    findings = lint(orders(), load_ruleset(ZALANDO.read_bytes()))
    v1, order = "/paths/~1v1~1orders~1", "/paths/~1orders~1{order_id}"
    checked = {(f.rule, f.severity, f.pointer) for f in findings if "is not checked" not in f.message}
    assert checked == {
        ("should-use-x-extensible-enum", W, "/components/schemas/Order/properties/status/enum"),
        ("must-not-use-uri-versioning", E, v1),
        ("must-use-semantic-versioning", E, "/info/version"),
        ("must-use-snake-case-for-property-names", E, "/components/schemas/Order/properties/orderId"),
        ("must-use-snake-case-for-query-parameters", E, f"{v1}/get/parameters/0/name"),
        ("should-use-hyphenated-pascal-case-for-header-parameters", W, f"{v1}/get/parameters/1/name"),
        ("must-use-normalized-paths-without-trailing-slash", E, v1),
        ("must-use-standard-http-status-codes", E, f"{v1}/get/responses/418"),
        ("must-specify-default-response", E, f"{v1}/get/responses/default"),
        (
            "must-use-problem-json-as-default-response",
            E,
            f"{order}/get/responses/default/content/application~1problem+json",
        ),
        (
            "should-prefer-standard-media-type-names",
            W,
            f"{order}/get/responses/200/content/application~1vnd.shop+json",
        ),
        ("must-use-problem-json-for-errors", E, f"{v1}/get/responses/418/content/application~1problem+json"),
        ("must-have-info-contact-email", E, "/info/contact/email"),
        (
            "should-declare-enum-values-using-upper-snake-case-format",
            W,
            "/components/schemas/Order/properties/status/enum/0",
        ),
    }
    messages = {f.rule: f.message for f in findings}
    assert messages["must-use-standard-http-status-codes"] == "418 is not a standardized response code"
    assert messages["must-have-info-contact-email"] == "Missing `info.contact.email`."
    assert messages["must-use-semantic-versioning"].startswith('"version" property "1.0" does not match')
    # Custom JavaScript functions are reported by name, as warnings; `oas3-schema: true` runs
    # Charter's validation, which this document passes.
    unsupported = {f.rule: f for f in findings if "is not checked" in f.message}
    assert set(unsupported) == {
        "must-always-return-json-objects-as-top-level-data-structures",
        "should-limit-number-of-resource-types",
        "should-use-well-understood-http-status-codes",
        "must-use-valid-problem-json-schema",
    }
    assert all(f.severity is W and f.pointer == "" for f in unsupported.values())
    assert (
        "`is-object-schema` is a custom (JavaScript) function"
        in unsupported["must-always-return-json-objects-as-top-level-data-structures"].message
    )


@pytest.mark.skipif(not STRIPE.exists(), reason="the shared corpus is not on this machine")
def test_zalando_guide_on_stripe_counts_are_stable() -> None:
    findings = lint(load_document(STRIPE.read_bytes()), load_ruleset(ZALANDO.read_bytes()))
    counts = Counter(f.rule for f in findings)
    assert counts == {
        "should-declare-enum-values-using-upper-snake-case-format": 10449,
        "should-use-x-extensible-enum": 1389,
        "must-use-problem-json-as-default-response": 397,
        "must-not-use-uri-versioning": 243,
        "must-use-lowercase-with-hypens-for-path-segements": 114,
        "must-use-semantic-versioning": 1,
        "must-have-info-x-api-id": 1,
        "must-provide-api-audience": 1,
        "should-prefer-standard-media-type-names": 1,
        # not checked, said once each
        "must-always-return-json-objects-as-top-level-data-structures": 1,
        "must-use-valid-problem-json-schema": 1,
        "should-limit-number-of-resource-types": 1,
        "should-use-well-understood-http-status-codes": 1,
    }
    (pdf,) = [f for f in findings if f.rule == "should-prefer-standard-media-type-names"]
    assert pdf.pointer == "/paths/~1v1~1quotes~1{quote}~1pdf/get/responses/200/content/application~1pdf"
    assert pdf.operation == "GET /v1/quotes/{quote}/pdf"


# --- the adidas guidelines: all of spectral:oas and spectral:asyncapi, and rules of their own -----------


def test_adidas_guide_on_a_document_worked_out_by_hand() -> None:
    findings = lint(orders(), load_ruleset(ADIDAS.read_bytes()))
    v1, order = "/paths/~1v1~1orders~1", "/paths/~1orders~1{order_id}"
    checked = {(f.rule, f.severity, f.pointer) for f in findings if "is not checked" not in f.message}
    assert checked == {
        ("contact-properties", W, "/info/contact/email"),
        ("info-license", W, "/info/license"),
        ("openapi-tags", W, "/tags"),
        ("operation-description", W, f"{order}/get/description"),
        ("path-keys-no-trailing-slash", W, v1),
        ("oas3-parameter-description", W, f"{v1}/get/parameters/0/description"),
        ("oas3-parameter-description", W, f"{v1}/get/parameters/1/description"),
        ("oas3-parameter-description", W, f"{order}/get/parameters/0/description"),
        ("oas3-server-trailing-slash", W, "/servers/0/url"),
        ("oas3-unused-component", W, "/components/schemas/Unused"),
        ("adidas-paths-kebab-case", W, v1),
        ("adidas-path-parameters-camelCase-alphanumeric", W, f"{order}/get/parameters/0/name"),
        ("adidas-headers-no-x-headers", W, f"{v1}/get/parameters/1/name"),
        ("adidas-headers-hyphenated-pascal-case", E, f"{v1}/get/parameters/1/name"),
        ("adidas-oas3-protocol-https-only", E, "/servers/0/url"),
        ("adidas-oas3-response-success-OK", E, f"{v1}/get/responses/200/content/application~1json"),
        (
            "adidas-oas3-response-success-OK",
            E,
            f"{order}/get/responses/200/content/application~1vnd.shop+json",
        ),
    }
    messages = {f.rule: f.message for f in findings}
    assert messages["adidas-paths-kebab-case"].startswith("/v1/orders/ is not kebab-case: ")
    assert messages["adidas-headers-no-x-headers"] == "HTTP headers SHOULD NOT include 'X-' prefix."
    # Spectral's JavaScript rules (for OpenAPI 3 documents only), and the schema with a `$ref` to a file
    # beside the ruleset, which Charter does not read.
    unsupported = {f.rule for f in findings if "is not checked" in f.message}
    assert unsupported == {
        "operation-parameters",
        "operation-tag-defined",
        "openapi-tags-uniqueness",
        "path-params",
        "oas3-operation-security-defined",
        "oas3-server-variables",
        "oas3-valid-media-example",
        "oas3-valid-schema-example",
        "adidas-oas3-response-success-hal-body",
    }


@pytest.mark.skipif(not (CORPUS / "asyncapi").exists(), reason="the shared corpus is not on this machine")
def test_adidas_guide_on_an_asyncapi_3_example() -> None:
    doc = load_document((CORPUS / "asyncapi" / "streetlights-kafka-asyncapi.yml").read_bytes())
    checked = {
        (f.rule, f.pointer)
        for f in lint(doc, load_ruleset(ADIDAS.read_bytes()))
        if "not checked" not in f.message
    }
    # Spectral's AsyncAPI rules are for 2.x documents; those about `info`, `servers` and unused
    # schemas read 3.x the same way. Its info names no contact; its four schemas are all referenced.
    assert checked == {("asyncapi-info-contact", "/info/contact")}


# --- JSONPath Plus as Spectral rulesets write it --------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "$..[?(@.type)]",  # every schema, each once, in the order first reached through `$ref`s
            [
                "/paths/~1v1~1orders~1/get/parameters/0/schema",
                "/paths/~1v1~1orders~1/get/parameters/1/schema",
                "/components/schemas/Orders",
                "/components/schemas/Orders/properties/items",
                "/components/schemas/Order",
                "/components/schemas/Order/properties/orderId",
                "/components/schemas/Order/properties/status",
                "/paths/~1orders~1{order_id}/get/parameters/0/schema",
                "/paths/~1orders~1{order_id}/get/responses/default/content/application~1json/schema",
                "/components/schemas/Unused",
            ],
        ),
        ("$.paths[*][get,put,post]", ["/paths/~1v1~1orders~1/get", "/paths/~1orders~1{order_id}/get"]),
        (
            "$..properties[*]~",
            [
                "/components/schemas/Orders/properties/items",
                "/components/schemas/Order/properties/orderId",
                "/components/schemas/Order/properties/status",
            ],
        ),
        ("$.paths.*.*.responses[?(@property.match(/^4/))]", ["/paths/~1v1~1orders~1/get/responses/418"]),
        (
            "$.paths.*.*.responses[?(@property >= 200 && @property < 300)]",
            ["/paths/~1v1~1orders~1/get/responses/200", "/paths/~1orders~1{order_id}/get/responses/200"],
        ),
        ("$.paths.*.*.responses.*.content[?(@property.indexOf('json') === -1)]^", []),
        ("$..[?(@path.includes('Unused'))]", ["/components/schemas/Unused"]),
        (
            "$.paths.*.*.parameters[?(@.in === 'header')].name",
            ["/paths/~1v1~1orders~1/get/parameters/1/name"],
        ),
        (
            "$.paths.*.*.responses.*.content.application/json",
            [
                "/paths/~1v1~1orders~1/get/responses/200/content/application~1json",
                "/paths/~1orders~1{order_id}/get/responses/default/content/application~1json",
            ],
        ),
    ],
)
def test_jsonpath_plus_forms(given: str, expected: list[str]) -> None:
    doc = orders()
    selected = paths.evaluate(doc, paths.parse(given))
    assert [s.pointer for s in selected] == expected
    assert len({s.pointer for s in selected}) == len(selected)


def test_a_key_selection_checks_the_keys() -> None:
    selected = paths.evaluate(orders(), paths.parse("$..properties[*]~"))
    assert [s.value for s in selected] == ["items", "orderId", "status"]


# --- core functions, messages, severities ---------------------------------------------------------------


def rule(then: str, given: str = "$", extra: str = "") -> str:
    return f'rules:\n  r:\n    severity: warn\n    given: "{given}"\n{extra}    then: {then}\n'


@pytest.mark.parametrize(
    ("then", "given", "pointers"),
    [
        ("{field: operationId, function: casing, functionOptions: {type: camel}}", "$.paths.*.get", []),
        (
            "{field: name, function: casing, functionOptions: {type: snake}}",
            "$.paths.*.*.parameters[*]",
            ["/paths/~1v1~1orders~1/get/parameters/0/name", "/paths/~1v1~1orders~1/get/parameters/1/name"],
        ),
        (
            "{field: name, function: casing, functionOptions: {type: pascal, separator: {char: '-'}}}",
            "$.paths.*.*.parameters[?(@.in == 'header')]",
            [],
        ),
        (
            "{field: name, function: casing, functionOptions: {type: cobol}}",
            "$.paths.*.*.parameters[?(@.in == 'header')]",
            ["/paths/~1v1~1orders~1/get/parameters/1/name"],
        ),
        (
            "{field: name, function: casing, functionOptions: {type: kebab, disallowDigits: true}}",
            "$.paths.*.*.parameters[*]",
            [
                "/paths/~1v1~1orders~1/get/parameters/0/name",
                "/paths/~1v1~1orders~1/get/parameters/1/name",
                "/paths/~1orders~1{order_id}/get/parameters/0/name",
            ],
        ),
        ("{function: pattern, functionOptions: {match: '/^ORDERS$/i'}}", "$.info.title", []),
        ("{function: pattern, functionOptions: {match: '/^ORDERS$/'}}", "$.info.title", ["/info/title"]),
        ("{field: enum, function: enumeration, functionOptions: {values: [x]}}", "$..status", []),
        (
            "{function: enumeration, functionOptions: {values: [open, closed]}}",
            "$..status.enum[*]",
            ["/components/schemas/Order/properties/status/enum/1"],
        ),
        (
            "{field: properties, function: length, functionOptions: {max: 1}}",
            "$.components.schemas.Order",
            ["/components/schemas/Order/properties"],
        ),
        (
            "{field: parameters, function: alphabetical, functionOptions: {keyedBy: name}}",
            "$.paths.*.get",
            ["/paths/~1v1~1orders~1/get/parameters"],
        ),
        (
            "{function: xor, functionOptions: {properties: [description, summary]}}",
            "$.paths.*.get",
            ["/paths/~1orders~1{order_id}/get"],
        ),
        ("{function: or, functionOptions: {properties: [summary, operationId]}}", "$.paths.*.get", []),
        ("{field: x-missing, function: defined}", "$.info", ["/info/x-missing"]),
        ("{field: title, function: undefined}", "$.info", ["/info/title"]),
        ("{function: typedEnum}", "$..status", []),
        ("{function: falsy}", "$.info.description", ["/info/description"]),
        (
            "{field: schemas, function: unreferencedReusableObject,"
            " functionOptions: {reusableObjectsLocation: '#/components/schemas'}}",
            "$.components",
            ["/components/schemas/Unused"],
        ),
        (
            "{function: schema, functionOptions: {schema: {type: object,"
            " required: [license, termsOfService]}, allErrors: true, dialect: draft7}}",
            "$.info",
            ["/info", "/info"],  # both missing members, as `allErrors` asks
        ),
        (
            "{field: '$.properties.status.enum', function: length, functionOptions: {min: 3}}",
            "$.components.schemas.Order",
            ["/components/schemas/Order/properties/status/enum"],
        ),
    ],
)
def test_core_functions(then: str, given: str, pointers: list[str]) -> None:
    findings = lint(orders(), load_ruleset(rule(then, given)))
    assert sorted(f.pointer for f in findings) == sorted(pointers)


def test_core_functions_fail_where_they_should() -> None:
    # Each case above that expects nothing passes because the function passes, not because nothing
    # was selected: the same path with a function that always fails finds something.
    for given in ("$.paths.*.get", "$..status", "$.paths.*.*.parameters[?(@.in == 'header')]"):
        assert lint(orders(), load_ruleset(rule("{function: falsy}", given)))


def test_schema_all_errors_reports_each() -> None:
    schema = "{required: [license, termsOfService]}"
    then = f"{{function: schema, functionOptions: {{schema: {schema}, allErrors: true}}}}"
    findings = lint(orders(), load_ruleset(rule(then, "$.info")))
    assert len(findings) == 2
    single = then.replace(", allErrors: true", "")
    assert len(lint(orders(), load_ruleset(rule(single, "$.info")))) == 1


def test_typed_enum_points_at_the_value() -> None:
    doc = orders()
    doc["components"]["schemas"]["Order"]["properties"]["status"]["enum"].append(3)
    (finding,) = lint(doc, load_ruleset(rule("{function: typedEnum}", "$..status")))
    assert finding.pointer == "/components/schemas/Order/properties/status/enum/2"
    assert finding.message == 'Enum value 3 must be "string".'


def test_message_placeholders() -> None:
    text = rule(
        "{field: name, function: pattern, functionOptions: {match: '^[a-z]+$'}}",
        "$.paths.*.*.parameters[?(@.in == 'header')]",
        "    description: lower-case names\n"
        "    message: '{{description}}; {{property}} = {{value}} at {{path}}: {{error}}'\n",
    )
    (finding,) = lint(orders(), load_ruleset(text))
    assert finding.message == (
        "lower-case names; name = X-Request-ID at paths./v1/orders/.get.parameters.1.name: "
        "\"name\" property must match the pattern '^[a-z]+$'"
    )
    assert finding.operation == "GET /v1/orders/"


@pytest.mark.parametrize(
    ("setting", "severity"),
    [("error", E), ("warn", W), ("info", I), ("hint", I), (0, E), (1, W), (2, I), (3, I), ("off", None)],
)
def test_severities(setting: object, severity: Severity | None) -> None:
    text = f"extends: spectral:oas\nrules:\n  info-license: {setting}\n"
    found_ = [f.severity for f in lint(orders(), load_ruleset(text)) if f.rule == "info-license"]
    assert found_ == ([] if severity is None else [severity])


def test_extends_modes_and_overrides() -> None:
    recommended = found(orders(), "extends: spectral:oas")
    assert (
        "oas3-parameter-description",
        W,
        "/paths/~1orders~1{order_id}/get/parameters/0/description",
    ) not in recommended
    assert ("info-license", W, "/info/license") in recommended
    everything = found(orders(), "extends: [[spectral:oas, all]]")
    assert (
        "oas3-parameter-description",
        W,
        "/paths/~1orders~1{order_id}/get/parameters/0/description",
    ) in everything
    # `off` loads the rules switched off; `true` turns one back on at its declared severity.
    assert found(orders(), "extends: [[spectral:oas, off]]") == set()
    assert found(orders(), "extends: [[spectral:oas, off]]\nrules:\n  info-license: true\n") == {
        ("info-license", W, "/info/license")
    }
    assert found(orders(), "extends: spectral:oas\nrules:\n  info-license: false\n") == recommended - {
        ("info-license", W, "/info/license")
    }


def test_formats_and_resolved() -> None:
    oas2 = rule("{field: title, function: falsy}", "$.info", "    formats: [oas2]\n")
    assert lint(orders(), load_ruleset(oas2)) == []
    oas3 = oas2.replace("[oas2]", "[oas3_0]")
    assert [f.pointer for f in lint(orders(), load_ruleset(oas3))] == ["/info/title"]
    # Unresolved, the `$ref` is what is there; resolved, the schema it points to.
    given = "$.paths./v1/orders/.get.responses.200.content.application/json.schema"
    resolved = rule("{field: type, function: truthy}", given)
    assert lint(orders(), load_ruleset(resolved)) == []
    raw = rule("{field: type, function: truthy}", given, "    resolved: false\n")
    assert [f.pointer for f in lint(orders(), load_ruleset(raw))] == [
        "/paths/~1v1~1orders~1/get/responses/200/content/application~1json/schema/type"
    ]


def test_custom_functions_and_unknown_functions_are_reported_not_skipped() -> None:
    text = "functions: [mine]\nrules:\n  uses-mine:\n    given: $\n    then: {function: mine}\n" + (
        "  uses-other:\n    given: $\n    severity: error\n    then: {function: other}\n"
    )
    findings = lint(orders(), load_ruleset(text))
    assert {(f.rule, f.severity) for f in findings} == {("uses-mine", W), ("uses-other", W)}
    assert all("custom (JavaScript) function" in f.message for f in findings)


def test_builtin_rulesets_cover_and_list() -> None:
    rulesets = builtin_rulesets()
    oas = rulesets["spectral:oas"]
    assert len([r for r in oas.values() if r.unsupported is None]) == 41
    assert len([r for r in oas.values() if r.unsupported is not None]) == 13


def test_spectral_rules_written_in_javascript_that_charter_runs_itself() -> None:
    doc = orders()
    doc["paths"]["/orders/{order_id}"]["get"]["operationId"] = "listOrders"
    doc["paths"]["/orders/{order_id}"]["get"]["responses"]["200"].pop("description")
    findings = found(
        doc,
        "extends: [[spectral:oas, off]]\nrules:\n  oas3-schema: true\n  operation-operationId-unique: true\n",
    )
    assert ("operation-operationId-unique", E, "/paths/~1orders~1{order_id}/get/operationId") in findings
    assert ("oas3-schema", E, "/paths/~1orders~1{order_id}/get/responses/200") in {
        (rule, severity, pointer.removesuffix("/description")) for rule, severity, pointer in findings
    }


# --- what a team's ruleset may not do --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (rule("{function: pattern, functionOptions: {match: '(a'}}"), "invalid regular expression '(a'"),
        (rule("{function: pattern, functionOptions: {match: '/a/x'}}"), "unknown regular expression flags"),
        (
            "extends: ./other.yaml\nrules: {r: {given: $, then: {function: truthy}, formats: [oas3]}}",
            "only built-in rulesets can be extended",
        ),
        (
            "rules:\n"
            + "".join(
                f"  r{i}: {{given: $, severity: warn, then: {{function: truthy}}}}\n" for i in range(501)
            ),
            "at most 500 rules",
        ),
        (rule("{function: truthy}", "$" + ".a" * 600), "limited to 1,000 characters"),
        (rule("{function: truthy}", extra="    formats: [oas4]\n"), "unknown format `oas4`"),
        ("extends: spectral:oas\nrules:\n  nope: error\n", "no extended ruleset defines it"),
        ("extends: spectral:oas\nrules:\n  info-license: loud\n", "severity 'loud'"),
        (rule("{function: schema, functionOptions: {schema: {type: 12}}}"), "invalid schema"),
        (
            "rules:\n  r:\n    given: $\n    then: {function: truthy}\n    severity: warn\n    when: now\n",
            "unknown key `when`",
        ),
    ],
)
def test_invalid_spectral_rulesets(text: str, fragment: str) -> None:
    with pytest.raises(InvalidRuleset) as caught:
        load_ruleset(text)
    assert fragment in caught.value.detail
    assert "\n" not in caught.value.detail


def test_a_ruleset_is_limited_in_size() -> None:
    with pytest.raises(InvalidRuleset, match="limited to 256 KiB"):
        load_ruleset("rules: {}\n" + "#" * 300_000)


def test_a_pathological_regex_stops_at_the_time_budget() -> None:
    doc = orders()
    doc["info"]["description"] = "a" * 40 + "!"
    text = rule("{function: pattern, functionOptions: {match: '^(a|aa)+$'}}", "$.info.description")
    findings = lint(doc, load_ruleset(text), paths.Budget(seconds=0.5))
    assert [(f.rule, f.severity) for f in findings] == [("lint-budget", E)]
    assert "regular expression" in findings[0].message


def test_a_huge_walk_stops_at_the_step_budget() -> None:
    # Nested descents are linear (each visits a node once), so the small document takes ~250 steps.
    text = rule("{function: truthy}", "$..*..*..*..*")
    budget = paths.Budget()
    assert lint(orders(), load_ruleset(text), budget) == []
    findings = lint(orders(), load_ruleset(text), paths.Budget(steps=budget.steps // 2))
    assert [(f.rule, f.severity) for f in findings] == [("lint-budget", E)]
    assert "steps" in findings[0].message


def test_the_published_coverage_page_is_current() -> None:
    from contracts.lint.spectral.docs import render_markdown

    published = HERE.parents[1] / "docs" / "spectral.md"
    assert published.read_text() == render_markdown(), (
        "regenerate: python -m contracts.lint.spectral > docs/spectral.md"
    )


def test_a_pathological_regex_in_charters_own_format_stops_too() -> None:
    doc = orders()
    doc["info"]["description"] = "a" * 40 + "!"
    text = (
        "rules:\n  slow:\n    given: $.info\n"
        "    then: {field: description, function: pattern, functionOptions: {match: '^(a|aa)+$'}}\n"
    )
    findings = lint(doc, load_ruleset(text), paths.Budget(seconds=0.5))
    assert [(f.rule, f.severity) for f in findings if f.rule == "lint-budget"] == [("lint-budget", E)]
