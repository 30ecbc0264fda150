"""`lint`: a document's findings under a ruleset, built-in rules for its family plus custom ones."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from contracts.kinds import Family, detect_kind
from contracts.lint.asyncapi import check_asyncapi
from contracts.lint.canonical import LintContext, check_canonical
from contracts.lint.custom import check_custom
from contracts.lint.findings import Finding, in_report_order
from contracts.lint.metadata import check_metadata
from contracts.lint.openapi import check_openapi
from contracts.lint.ruleset import RECOMMENDED, Ruleset
from contracts.loading import Document


def lint(
    document: Document, ruleset: Ruleset = RECOMMENDED, context: LintContext | None = None
) -> list[Finding]:
    """Findings, most severe first; UnknownKind when the document's kind is unknown. `context` is
    what only the registry knows (the API's layer, the canonical models): its rules run with it."""
    findings = []
    for finding in _builtin(document, context):
        severity = ruleset.severities.get(finding.rule)
        if severity is not None:
            findings.append(msgspec.structs.replace(finding, severity=severity))
    for rule in ruleset.custom:
        findings.extend(check_custom(document, rule))
    return in_report_order(findings)


def _builtin(document: Document, context: LintContext | None) -> Iterator[Finding]:
    kind = detect_kind(document)
    if kind.family is Family.JSON_SCHEMA:
        return  # a canonical model: its rules are the meta-schema's and its compatibility
    if kind.family is Family.OPENAPI:
        yield from check_openapi(document, kind)
    else:
        yield from check_asyncapi(document, kind)
    yield from check_metadata(document, kind)
    if context is not None:
        yield from check_canonical(document, kind, context)
