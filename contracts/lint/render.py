"""Findings as text for a terminal, JSON for scripts, or SARIF 2.1.0 for code-scanning tools."""

from __future__ import annotations

from collections import Counter
from typing import Any

import msgspec

from contracts.lint.catalog import Severity
from contracts.lint.findings import Finding
from contracts.lint.ruleset import Ruleset
from contracts.plural import counted

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_SARIF_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


class LintReport(msgspec.Struct, frozen=True):
    findings: list[Finding]
    errors: int
    warnings: int
    infos: int


def report(findings: list[Finding]) -> LintReport:
    counts = Counter(finding.severity for finding in findings)
    return LintReport(findings, counts[Severity.ERROR], counts[Severity.WARNING], counts[Severity.INFO])


def as_json(findings: list[Finding]) -> bytes:
    return msgspec.json.encode(report(findings)) + b"\n"


def as_text(findings: list[Finding]) -> str:
    lines = [f"{f.severity.value.upper():7} {f.rule}  {f.message}  [{f.pointer or '/'}]" for f in findings]
    counts = report(findings)
    if findings:
        parts = [
            counted(n, name, plural)
            for n, name, plural in (
                (counts.errors, "error", None),
                (counts.warnings, "warning", None),
                # "info" is a mass noun: "2 info", as linters print it.
                (counts.infos, "info", "info"),
            )
            if n
        ]
        lines.append(f"{counted(len(findings), 'finding')} ({', '.join(parts)})")
    else:
        lines.append("no findings")
    return "\n".join(lines) + "\n"


def as_sarif(findings: list[Finding], *, uri: str, ruleset: Ruleset) -> bytes:
    """A SARIF 2.1.0 log of one run; each result locates its file and, logically, its JSON pointer."""
    rule_ids = sorted({f.rule for f in findings})
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}
    rules = [
        {
            "id": rule_id,
            "shortDescription": {"text": ruleset.description_of(rule_id)},
            "defaultConfiguration": {"level": _SARIF_LEVEL[ruleset.severity_of(rule_id) or Severity.WARNING]},
        }
        for rule_id in rule_ids
    ]
    results = [_result(finding, uri, index[finding.rule]) for finding in findings]
    log = {
        "version": "2.1.0",
        "$schema": SARIF_SCHEMA,
        "runs": [{"tool": {"driver": {"name": "charter", "rules": rules}}, "results": results}],
    }
    return msgspec.json.encode(log) + b"\n"


def _result(finding: Finding, uri: str, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {"artifactLocation": {"uri": uri}},
                "logicalLocations": [{"fullyQualifiedName": finding.pointer, "kind": "member"}],
            }
        ],
    }
    if finding.operation:
        result["properties"] = {"operation": finding.operation}
    return result
