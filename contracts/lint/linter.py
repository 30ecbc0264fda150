"""`lint`: a document's findings under a ruleset, built-in rules for its family plus custom ones."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from contracts.kinds import Family, detect_kind
from contracts.lint.asyncapi import check_asyncapi
from contracts.lint.canonical import CONTEXT_RULES, LintContext, check_canonical
from contracts.lint.catalog import Severity
from contracts.lint.custom import check_custom
from contracts.lint.findings import Finding, in_report_order
from contracts.lint.metadata import check_metadata
from contracts.lint.openapi import check_openapi
from contracts.lint.ruleset import RECOMMENDED, Ruleset
from contracts.lint.spectral.paths import Budget, BudgetExceeded
from contracts.lint.spectral.run import BUDGET_RULE, check_spectral
from contracts.loading import Document


def lint(
    document: Document,
    ruleset: Ruleset = RECOMMENDED,
    budget: Budget | None = None,
    context: LintContext | None = None,
) -> list[Finding]:
    """Findings, most severe first; UnknownKind when the document's kind is unknown.

    A `budget` bounds the work of custom and Spectral rules (written by teams, so not trusted): when it
    runs out, a `lint-budget` error finding says where the lint stopped. `context` is what only the
    registry knows (the API's layer, the canonical models): its rules run with it.
    """
    budget = budget or Budget()
    findings = []
    # Publishing without a stored ruleset runs the canonical rules alone: the document's own rules
    # (a walk of every operation) are then not worth computing.
    wanted = set(ruleset.severities)
    document_rules = not wanted <= set(CONTEXT_RULES)
    if not wanted & set(CONTEXT_RULES):
        context = None
    for finding in _builtin(document, context, document_rules=document_rules):
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


def _builtin(document: Document, context: LintContext | None, *, document_rules: bool) -> Iterator[Finding]:
    kind = detect_kind(document)
    if kind.family is Family.JSON_SCHEMA:
        return  # a canonical model: its rules are the meta-schema's and its compatibility
    if document_rules:
        check_family = check_openapi if kind.family is Family.OPENAPI else check_asyncapi
        yield from check_family(document, kind)
        yield from check_metadata(document, kind)
    if context is not None:
        yield from check_canonical(document, kind, context)
