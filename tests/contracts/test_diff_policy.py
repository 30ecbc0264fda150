"""Severity policies: levels set per rule, open enums and unions, and the mark a changed level carries."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from contracts.diff import Bump, InvalidPolicy, Level, SeverityPolicy, diff_documents, load_policy
from contracts.diff.catalog import RESPONSE_BODY
from contracts.diff.render import as_json, as_text
from tests.contracts.diff_fixtures import asyncapi_with, document_for
from tests.contracts.test_diff_findings import document, holding

Doc = dict[str, Any]
STATUS = {"type": "string", "enum": ["paid", "open"]}
MORE = {"type": "string", "enum": ["paid", "open", "void"]}


def levels(
    base: Doc, revision: Doc, policy: SeverityPolicy | None = None
) -> list[tuple[str, str, str | None]]:
    report = diff_documents(base, revision, policy=policy)
    return sorted((c.id, c.level.value, c.policy) for c in report.changes)


def test_a_rule_level_set_by_policy_is_shown_with_the_change_and_decides_the_bump() -> None:
    base, revision = document(holding("status", STATUS)), document(holding("status", MORE))
    assert levels(base, revision) == [
        ("request-property-enum-value-added", "info", None),
        ("response-property-enum-value-added", "warning", None),
    ]
    strict = SeverityPolicy(severity={"response-property-enum-value-added": "error"})
    assert levels(base, revision, strict) == [
        ("request-property-enum-value-added", "info", None),
        ("response-property-enum-value-added", "error", "warning → error by policy"),
    ]
    report = diff_documents(base, revision, policy=strict)
    assert report.breaking and report.required_bump is Bump.MAJOR
    relaxed = SeverityPolicy(severity={"response-property-enum-value-added": "info"})
    assert diff_documents(base, revision, policy=relaxed).required_bump is Bump.PATCH


def test_open_enums_and_unions_make_additions_harmless_to_readers_only() -> None:
    base, revision = document(holding("status", STATUS)), document(holding("status", MORE))
    policy = SeverityPolicy(open_enums=True)
    assert levels(base, revision, policy) == [
        ("request-property-enum-value-added", "info", None),
        ("response-property-enum-value-added", "info", "warning → info by policy (open enums)"),
    ]
    two = {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    three = {"oneOf": [*two["oneOf"], {"type": "boolean"}]}
    union_base, union_revision = document_for(RESPONSE_BODY, two), document_for(RESPONSE_BODY, three)
    assert levels(union_base, union_revision) == [("response-body-one-of-added", "error", None)]
    assert levels(union_base, union_revision, SeverityPolicy(open_unions=True)) == [
        ("response-body-one-of-added", "info", "error → info by policy (open unions)")
    ]
    # Open enums say nothing of unions, and a removal stays what it was.
    assert levels(union_base, union_revision, policy)[0][1] == "error"
    assert levels(revision, base, policy) == [
        ("request-property-enum-value-removed", "error", None),
        ("response-property-enum-value-removed", "info", None),
    ]


def test_a_new_event_variant_on_an_open_stream_breaks_no_consumer() -> None:
    base = asyncapi_with({"name": "invoiceIssued", "payload": {"type": "string"}})
    revision = asyncapi_with({"name": "invoiceIssued", "payload": {"type": "string"}})
    revision["channels"]["invoices"]["messages"]["invoiceVoided"] = {"payload": {"type": "string"}}
    assert levels(base, revision) == [("message-added", "warning", None)]
    assert levels(base, revision, SeverityPolicy(open_unions=True)) == [
        ("message-added", "info", "warning → info by policy (open unions)")
    ]


def test_a_document_declares_an_enum_or_a_union_open_with_x_extensible_enum() -> None:
    zalando = {"type": "string", "x-extensible-enum": ["paid", "open"]}
    grown = {"type": "string", "x-extensible-enum": ["paid", "open", "void"]}
    note = "warning → info: an open enum (`x-extensible-enum`)"
    assert levels(document(holding("status", zalando)), document(holding("status", grown))) == [
        ("request-property-enum-value-added", "info", None),
        ("response-property-enum-value-added", "info", note),
    ]
    flagged = {**STATUS, "x-extensible-enum": True}
    flagged_more = {**MORE, "x-extensible-enum": True}
    assert levels(document(holding("s", flagged)), document(holding("s", flagged_more)))[1][2] == note
    two = {"oneOf": [{"type": "string"}, {"type": "integer"}], "x-extensible-enum": True}
    three = {**two, "oneOf": [*two["oneOf"], {"type": "boolean"}]}
    assert levels(document_for(RESPONSE_BODY, two), document_for(RESPONSE_BODY, three)) == [
        ("response-body-one-of-added", "info", "error → info: an open union (`x-extensible-enum`)")
    ]


def test_an_api_policy_refines_the_global_one() -> None:
    wide = SeverityPolicy(
        severity={"api-operation-id-changed": "error", "request-parameter-removed": "error"}, open_enums=True
    )
    narrow = SeverityPolicy(
        severity={"request-parameter-removed": "info"}, open_enums=False, open_unions=True
    )
    combined = narrow.within(wide)
    assert combined == SeverityPolicy(
        severity={"api-operation-id-changed": "error", "request-parameter-removed": "info"},
        open_enums=False,
        open_unions=True,
    )
    assert SeverityPolicy().within(wide).open_enums is True
    assert narrow.within(None) is narrow


def test_a_policy_file_is_yaml_or_json_and_every_mistake_is_one_line() -> None:
    policy = load_policy(b"severity:\n  api-operation-id-changed: error\nopen_enums: true\n")
    assert policy == SeverityPolicy(severity={"api-operation-id-changed": "error"}, open_enums=True)
    assert load_policy(b'{"open_unions": false}') == SeverityPolicy(open_unions=False)
    for text, fragment in (
        (b"severity:\n  no-such-rule: error\n", "unknown rule `no-such-rule`"),
        (b"severity:\n  api-operation-id-changed: fatal\n", "the policy is invalid"),
        (b"levels: {}\n", "the policy is invalid"),
        (b"severity: [unclosed", "the policy is unreadable"),
    ):
        with pytest.raises(InvalidPolicy) as caught:
            load_policy(text)
        assert fragment in caught.value.detail and "\n" not in caught.value.detail


def test_levels_stay_the_catalogs_without_a_policy() -> None:
    base, revision = document(holding("status", STATUS)), document(holding("status", MORE))
    assert all(c.policy is None for c in diff_documents(base, revision).changes)
    assert {c.level for c in diff_documents(base, revision, policy=SeverityPolicy()).changes} == {
        Level.INFO,
        Level.WARNING,
    }


def test_a_rule_turned_off_drops_its_findings_from_every_count_and_says_how_many() -> None:
    base, revision = document(holding("status", STATUS)), document(holding("status", MORE))
    strict = SeverityPolicy(severity={"response-property-enum-value-added": "error"})
    assert diff_documents(base, revision, policy=strict).breaking
    off = SeverityPolicy(severity={"response-property-enum-value-added": "off"})
    report = diff_documents(base, revision, policy=off)
    assert [c.id for c in report.changes] == ["request-property-enum-value-added"]
    assert report.suppressed == {"response-property-enum-value-added": 1}
    assert not report.breaking and report.required_bump is Bump.PATCH
    # Off wins over open enums, and an API's policy may turn a rule back on over the global one.
    assert diff_documents(base, revision, policy=msgspec.structs.replace(off, open_enums=True)).suppressed
    back_on = SeverityPolicy(severity={"response-property-enum-value-added": "warning"}).within(off)
    assert diff_documents(base, revision, policy=back_on).suppressed == {}
    assert diff_documents(base, revision).suppressed == {}


def test_the_json_report_counts_suppressed_findings_and_the_text_says_so() -> None:
    base, revision = document(holding("status", STATUS)), document(holding("status", MORE))
    off = SeverityPolicy(severity={"response-property-enum-value-added": "off"})
    report = diff_documents(base, revision, policy=off)
    body = msgspec.json.decode(as_json(report))
    assert body["suppressed"] == {"response-property-enum-value-added": 1}
    assert [g["id"] for g in body["groups"]] == ["request-property-enum-value-added"]
    assert "response-property-enum-value-added" not in as_text(report).split("\n", 1)[0]
    assert as_text(report).rstrip().endswith("; 1 finding of 1 rule turned off by policy")


def test_oasdiffs_severity_levels_file_reads_as_a_policy() -> None:
    text = (
        b"# ported from oasdiff\n"
        b"\n"
        b"api-path-removed-without-deprecation   ERR\n"
        b"response-property-enum-value-added warn  # readers cope\n"
        b"request-property-enum-value-added info\n"
        b"api-operation-id-changed none\n"
        b"api-deprecated off\n"
    )
    assert load_policy(text) == SeverityPolicy(
        severity={
            "api-path-removed-without-deprecation": "error",
            "response-property-enum-value-added": "warning",
            "request-property-enum-value-added": "info",
            "api-operation-id-changed": "off",
            "api-deprecated": "off",
        }
    )


def test_an_oasdiff_file_mistake_is_one_line_with_its_line_number() -> None:
    for text, message in (
        (
            b"api-deprecated err\nno-such-rule warn\nnor-this info\n",
            "line 2: unknown rule `no-such-rule` (and 1 more)",
        ),
        (b"api-deprecated fatal\n", "line 1: unknown level `fatal`"),
        (b"api-deprecated err\napi-path-removed-without-deprecation\n", "line 2: expected `rule-id level`"),
    ):
        with pytest.raises(InvalidPolicy) as caught:
            load_policy(text)
        assert caught.value.detail.startswith(message) and "\n" not in caught.value.detail
    with pytest.raises(InvalidPolicy) as caught:
        load_policy(b"api-deprecated err\nno-such-rule warn\nnor-this info\n")
    assert [(i.pointer, i.message) for i in caught.value.issues] == [
        ("/severity/no-such-rule", "line 2: not a rule of the diff"),
        ("/severity/nor-this", "line 3: not a rule of the diff"),
    ]
