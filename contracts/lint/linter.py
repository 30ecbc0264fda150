"""`lint`: a document's findings under a ruleset, built-in rules for its family plus custom ones."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from contracts.kinds import Family, detect_kind
from contracts.lint.asyncapi import check_asyncapi
from contracts.lint.catalog import Severity
from contracts.lint.custom import check_custom
from contracts.lint.findings import Finding, in_report_order
from contracts.lint.metadata import check_metadata
from contracts.lint.openapi import check_openapi
from contracts.lint.ruleset import RECOMMENDED, Ruleset
from contracts.lint.spectral.paths import Budget, BudgetExceeded
from contracts.lint.spectral.run import BUDGET_RULE, check_spectral
from contracts.loading import Document


def lint(document: Document, ruleset: Ruleset = RECOMMENDED, budget: Budget | None = None) -> list[Finding]:
    """Findings, most severe first; UnknownKind when the document is neither OpenAPI nor AsyncAPI.

    A `budget` bounds the work of custom and Spectral rules (written by teams, so not trusted): when it
    runs out, a `lint-budget` error finding says where the lint stopped.
    """
    budget = budget or Budget()
    findings = []
    for finding in _builtin(document):
        severity = ruleset.severities.get(finding.rule)
        if severity is not None:
            findings.append(msgspec.structs.replace(finding, severity=severity))
    try:
        for rule in ruleset.custom:
            findings.extend(check_custom(document, rule, budget))
    except BudgetExceeded as exc:
        findings.append(Finding(BUDGET_RULE, Severity.ERROR, f"linting stopped: {exc}", ""))
        return in_report_order(findings)
    if ruleset.spectral:
        findings.extend(check_spectral(document, ruleset.spectral, budget))
    return in_report_order(findings)


def _builtin(document: Document) -> Iterator[Finding]:
    kind = detect_kind(document)
    if kind.family is Family.OPENAPI:
        yield from check_openapi(document, kind)
    else:
        yield from check_asyncapi(document, kind)
    yield from check_metadata(document, kind)
