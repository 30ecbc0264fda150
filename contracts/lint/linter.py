"""`lint`: a document's findings under a ruleset, built-in rules for its family plus custom ones."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from contracts.kinds import Family, detect_kind
from contracts.lint.asyncapi import check_asyncapi
from contracts.lint.custom import check_custom
from contracts.lint.findings import Finding, in_report_order
from contracts.lint.metadata import check_metadata
from contracts.lint.openapi import check_openapi
from contracts.lint.ruleset import RECOMMENDED, Ruleset
from contracts.loading import Document


def lint(document: Document, ruleset: Ruleset = RECOMMENDED) -> list[Finding]:
    """Findings, most severe first; UnknownKind when the document is neither OpenAPI nor AsyncAPI."""
    findings = []
    for finding in _builtin(document):
        severity = ruleset.severities.get(finding.rule)
        if severity is not None:
            findings.append(msgspec.structs.replace(finding, severity=severity))
    for rule in ruleset.custom:
        findings.extend(check_custom(document, rule))
    return in_report_order(findings)


def _builtin(document: Document) -> Iterator[Finding]:
    kind = detect_kind(document)
    if kind.family is Family.OPENAPI:
        yield from check_openapi(document, kind)
    else:
        yield from check_asyncapi(document, kind)
    yield from check_metadata(document, kind)
