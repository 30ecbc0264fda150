"""A finding: which rule, how severe, what and where (a JSON pointer, and the operation when there is one)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from contracts.lint.catalog import RULES, Severity


class Finding(msgspec.Struct, frozen=True):
    rule: str
    severity: Severity
    message: str
    pointer: str  # RFC 6901, into the linted document
    operation: str | None = None  # `GET /projects`, `SEND finance.invoice.issued`, `channel ...`


def found(rule_id: str, message: str, pointer: str, operation: str | None = None) -> Finding:
    """A finding of a built-in rule at its default severity; the ruleset may change or drop it."""
    return Finding(rule_id, RULES[rule_id].severity, message, pointer, operation)


_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def in_report_order(findings: Iterable[Finding]) -> list[Finding]:
    """Most severe first, then by place and rule: the same document always lists the same way."""
    return sorted(findings, key=lambda f: (_ORDER[f.severity], f.pointer, f.rule, f.message))
