"""Canonical models: the JSON Schema kind, their two-way diff, and `x-canonical` projections checked
against the highest published version in range, as lint findings at the declaring schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from contracts.canonical_models import Declarations, check_declarations, parse_declaration, resolve
from contracts.diff import Bump, diff_documents
from contracts.errors import ContractInvalid, UnknownKind
from contracts.kinds import DocumentKind, Family, detect_kind
from contracts.lint import Severity, lint, load_ruleset
from contracts.lint.canonical import LintContext
from contracts.strictness import Strictness
from contracts.submission import analyze_document, with_declarations
from tests.samples import as_json, client_model

OPENAPI = DocumentKind(Family.OPENAPI, "3.1.0")
ASYNCAPI = DocumentKind(Family.ASYNCAPI, "3.0.0")
Doc = dict[str, Any]


def contract(response: Doc, request: Doc | None = None) -> Doc:
    """A contract that returns `Client` from GET and takes `ClientIn` in POST."""
    ok = {"description": "ok"}
    body = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClientIn"}}}}
    returned = {"application/json": {"schema": {"$ref": "#/components/schemas/Client"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRM", "version": "1.0.0"},
        "paths": {
            "/clients/{id}": {"get": {"responses": {"200": {**ok, "content": returned}}}},
            "/clients": {"post": {"requestBody": body, "responses": {"201": ok}}},
        },
        "components": {"schemas": {"Client": response, "ClientIn": request or {"type": "object"}}},
    }


def projection(**properties: Any) -> Doc:
    required = properties.pop("required", ["id", "name"])
    declared = properties.pop("declared", "client@^1")
    return {"x-canonical": declared, "type": "object", "required": required, "properties": properties}


MODELS = {"client": {"1.0.0": client_model(), "1.2.0": client_model(), "2.0.0": client_model()}}
ID, NAME = {"type": "string"}, {"type": "string"}


def mismatches(doc: Doc, models: dict = MODELS) -> list[tuple[str, str, str]]:
    return [(m.rule, m.pointer, m.message) for m in check_declarations(doc, OPENAPI, models)]


# --- the kind ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "dialect"),
    [
        ("https://json-schema.org/draft/2020-12/schema", "2020-12"),
        ("http://json-schema.org/draft-07/schema#", "draft-07"),
        ("https://json-schema.org/draft-07/schema", "draft-07"),
    ],
)
def test_a_document_with_only_a_schema_uri_is_a_canonical_model(uri: str, dialect: str) -> None:
    assert detect_kind({"$schema": uri, "type": "object"}) == DocumentKind(Family.JSON_SCHEMA, dialect)


def test_other_dialects_are_refused_and_openapi_wins_over_a_schema_uri() -> None:
    with pytest.raises(UnknownKind, match="draft-04"):
        detect_kind({"$schema": "http://json-schema.org/draft-04/schema#"})
    both = {"openapi": "3.1.0", "$schema": "https://json-schema.org/draft/2020-12/schema"}
    assert detect_kind(both).family is Family.OPENAPI


def test_a_model_is_validated_against_its_meta_schema_offline() -> None:
    broken = client_model(required="id")
    broken["properties"]["id"] = {"type": "strin"}
    broken["properties"]["vatId"] = {"$ref": "https://schemas.example.com/vat.json"}
    with pytest.raises(ContractInvalid) as caught:
        analyze_document(msgspec_json(broken), media_type="application/json")
    pointers = sorted(issue.pointer for issue in caught.value.issues)
    assert pointers == ["/properties/id/type", "/properties/vatId/$ref", "/required"]
    draft7 = {**client_model(), "$schema": "http://json-schema.org/draft-07/schema#"}
    draft7["properties"]["name"] = {"type": "string", "minLength": -1}
    with pytest.raises(ContractInvalid) as caught:
        analyze_document(msgspec_json(draft7), media_type="application/json")
    assert [issue.pointer for issue in caught.value.issues] == ["/properties/name/minLength"]


def msgspec_json(doc: Doc) -> bytes:
    import msgspec

    return msgspec.json.encode(doc)


# --- the diff: FULL, both directions ------------------------------------------------------------------


def test_a_model_change_is_judged_for_producers_and_consumers_both() -> None:
    # A new optional property is safe for both: a minor version.
    added = client_model()
    added["properties"]["email"] = {"type": "string", "format": "email"}
    report = diff_documents(client_model(), added)
    assert (report.breaking, report.required_bump) == (False, Bump.MINOR)
    # A tighter bound breaks writers (as a request would), a looser one breaks readers (as a response).
    for bound in ({"maxLength": 100}, {}):
        base, revision = client_model(), client_model()
        if bound:
            revision["properties"]["name"] = {"type": "string", **bound}
        else:
            base["properties"]["name"] = {"type": "string", "maxLength": 100}
        report = diff_documents(base, revision)
        assert report.breaking and report.required_bump is Bump.MAJOR, bound
        assert [c.id for c in report.changes] == [
            "model-property-max-length-added" if bound else "model-property-max-length-removed"
        ]
    # Required became optional: a response would break, a request would not. FULL: breaking.
    optional = client_model(required=["id"])
    assert [c.id for c in diff_documents(client_model(), optional).changes] == [
        "model-property-became-optional"
    ]
    assert diff_documents(client_model(), optional).breaking


# --- x-canonical: declarations and ranges -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("client", "NAME@RANGE"),
        ("Client@^1", "not an API name"),
        ("client@banana", "not a semver range"),
        (3, ""),
    ],
)
def test_a_malformed_declaration_says_what_is_wrong(value: Any, problem: str) -> None:
    parsed = parse_declaration(value)
    assert isinstance(parsed, str) and problem in parsed


def test_the_range_resolves_to_the_highest_published_version_in_it() -> None:
    assert resolve(MODELS, "client", "^1") == "1.2.0"
    assert resolve(MODELS, "client", "~1.0") == "1.0.0"
    assert resolve(MODELS, "client", ">=1.1 <3") == "2.0.0"
    assert resolve(MODELS, "client", "^3") is None


def test_the_projection_is_checked_against_the_version_the_range_resolves_to() -> None:
    # 1.x has `vatId` a string, 2.0.0 an integer: the projection's range picks which one applies.
    models = copy.deepcopy(MODELS)
    models["client"]["2.0.0"]["properties"]["vatId"] = {"type": "integer"}
    fits_one = contract(projection(id=ID, name=NAME, vatId={"type": "string"}))
    assert mismatches(fits_one, models) == []
    two = contract(projection(id=ID, name=NAME, vatId={"type": "string"}, declared="client@^2"))
    assert mismatches(two, models) == [
        (
            "canonical-projection",
            "/components/schemas/Client",
            "client@2.0.0 `vatId`: type changed from integer to string (produced here; the canonical "
            "model is the base)",
        )
    ]


def test_an_unknown_model_or_a_range_no_version_satisfies_is_a_finding() -> None:
    unknown = contract(projection(id=ID, name=NAME, declared="customer@^1"))
    assert mismatches(unknown) == [
        ("canonical-reference", "/components/schemas/Client", "customer@^1: no canonical model 'customer'")
    ]
    beyond = contract(projection(id=ID, name=NAME, declared="client@^3"))
    [(rule, pointer, message)] = mismatches(beyond)
    assert (rule, pointer) == ("canonical-reference", "/components/schemas/Client")
    assert "no published version of client is in range ^3 (has 1.0.0, 1.2.0, 2.0.0)" in message


# --- x-canonical: what a projection may and may not do ---------------------------------------------------


def test_a_projection_may_leave_optional_properties_out() -> None:
    assert mismatches(contract(projection(id=ID, name=NAME))) == []


def test_a_property_missing_in_the_canonical_model_is_a_finding() -> None:
    found = mismatches(contract(projection(id=ID, name=NAME, segment={"type": "string"})))
    assert found == [
        (
            "canonical-projection",
            "/components/schemas/Client",
            "client@1.2.0 `segment`: not a property of the canonical model",
        )
    ]


def test_an_incompatible_type_is_a_finding_in_either_direction() -> None:
    produced = mismatches(contract(projection(id=ID, name=NAME, country={"type": "integer"})))
    assert [(rule, message.split(":")[0]) for rule, _, message in produced] == [
        ("canonical-projection", "client@1.2.0 `country`")
    ]
    assert "type changed from string to integer" in produced[0][2]
    # A consumed projection that refuses what the model admits (a length limit) does not fit either.
    stricter = projection(id=ID, name=NAME, vatId={"type": "string", "maxLength": 20})
    consumed = mismatches(contract({"type": "object"}, request=stricter))
    assert [(rule, pointer) for rule, pointer, _ in consumed] == [
        ("canonical-projection", "/components/schemas/ClientIn")
    ]
    assert "`maxLength` 20 set" in consumed[0][2] and "consumed here" in consumed[0][2]
    # Produced, the same limit is fine: every value it admits, the model admits.
    assert mismatches(contract(stricter)) == []


def test_a_required_property_dropped_breaks_a_response_but_not_a_request() -> None:
    dropped = projection(id=ID, required=["id"])
    produced = mismatches(contract(dropped))
    assert [(rule, pointer) for rule, pointer, _ in produced] == [
        ("canonical-projection", "/components/schemas/Client")
    ]
    assert "`name`: property removed" in produced[0][2]
    optional = projection(id=ID, name=NAME, required=["id"])
    assert "`name`: became optional" in mismatches(contract(optional))[0][2]
    # Taken in a request, the API may ignore what it does not need.
    assert mismatches(contract({"type": "object"}, request=projection(id=ID, required=["id"]))) == []


def test_event_payloads_are_produced() -> None:
    doc = {
        "asyncapi": "3.0.0",
        "info": {"title": "CRM events", "version": "1.0.0"},
        "channels": {},
        "components": {"schemas": {"Client": projection(id=ID, required=["id"])}},
    }
    found = check_declarations(doc, ASYNCAPI, MODELS)
    assert [(m.rule, m.pointer) for m in found] == [("canonical-projection", "/components/schemas/Client")]


def test_an_analyzed_contract_carries_its_declarations_to_the_check() -> None:
    doc = contract(projection(id=ID, name=NAME, segment={"type": "string"}))
    unchecked = {"media_type": "application/json", "strictness": Strictness.NONE}
    analyzed = with_declarations(analyze_document(as_json(doc), **unchecked))
    assert analyzed.declarations is not None
    assert [(d.pointer, d.name, d.range) for d in analyzed.declarations.found] == [
        ("/components/schemas/Client", "client", "^1")
    ]
    found = check_declarations(doc, OPENAPI, MODELS, declarations=analyzed.declarations)
    assert [m.rule for m in found] == ["canonical-projection"]
    # What the caller found is what is checked: the document is not walked again.
    assert check_declarations(doc, OPENAPI, MODELS, declarations=Declarations()) == []
    # A canonical model itself declares nothing.
    model = with_declarations(analyze_document(as_json(client_model()), **unchecked))
    assert model.declarations is None


# --- as lint rules ------------------------------------------------------------------------------------------


def test_mismatches_are_lint_findings_whose_level_the_ruleset_sets() -> None:
    doc = contract(projection(id=ID, name=NAME, segment={"type": "string"}))
    context = LintContext("system", MODELS)
    [finding] = [f for f in lint(doc, context=context) if f.rule.startswith("canonical-")]
    assert (finding.rule, finding.severity, finding.pointer) == (
        "canonical-projection",
        Severity.ERROR,
        "/components/schemas/Client",
    )
    relaxed = load_ruleset("extends: charter:recommended\nrules: {canonical-projection: warning}")
    assert [f.severity for f in lint(doc, relaxed, context=context) if f.rule == "canonical-projection"] == [
        Severity.WARNING
    ]
    off = load_ruleset("extends: charter:recommended\nrules: {canonical-projection: off}")
    assert [f for f in lint(doc, off, context=context) if f.rule == "canonical-projection"] == []
    # Without the registry's context (`charter lint` offline), the rule cannot run.
    assert [f for f in lint(doc) if f.rule.startswith("canonical-")] == []


def test_a_schema_named_like_a_canonical_object_in_a_process_api_must_declare_it() -> None:
    doc = contract({"type": "object"})
    doc["components"]["schemas"]["TimeEntry"] = {"type": "object"}
    doc["components"]["schemas"]["Ledger"] = {"type": "object"}
    models = {**MODELS, "ledger": {}}
    undeclared = [
        (f.pointer, f.severity)
        for f in lint(doc, context=LintContext("process", models))
        if f.rule == "canonical-undeclared"
    ]
    # `Client` from the registry's models and the built-in list, `TimeEntry` from the built-in list
    # (time-entry), `Ledger` from the registry's; `ClientIn` is another object.
    assert undeclared == [
        ("/components/schemas/Client", Severity.WARNING),
        ("/components/schemas/Ledger", Severity.WARNING),
        ("/components/schemas/TimeEntry", Severity.WARNING),
    ]
    for layer in ("system", None):
        assert [
            f for f in lint(doc, context=LintContext(layer, models)) if f.rule == "canonical-undeclared"
        ] == []
    doc["components"]["schemas"]["Client"] = projection(id=ID, name=NAME)
    still = [
        f.pointer
        for f in lint(doc, context=LintContext("experience", models))
        if f.rule == "canonical-undeclared"
    ]
    assert "/components/schemas/Client" not in still
