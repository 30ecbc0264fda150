"""A diff report as text for a terminal, Markdown for a pull-request comment, or JSON for scripts.

Text and Markdown show each change once, at the place that changed, with the operations it reaches
(a shared component's change reaches hundreds); JSON carries the groups and every finding.
"""

from __future__ import annotations

from collections import Counter

import msgspec

from contracts.diff.catalog import Level
from contracts.diff.changes import Bump, Change
from contracts.diff.compare import DiffReport
from contracts.diff.groups import ChangeGroup, group_changes
from contracts.diff.policy import suppressed_summary

# Operations named under a group before "+N more": enough to recognise the area it touches.
TEXT_OPERATIONS = 3
MARKDOWN_OPERATIONS = 10


class _GroupedReport(msgspec.Struct, frozen=True):
    breaking: bool
    required_bump: Bump
    groups: list[ChangeGroup]
    changes: list[Change]
    suppressed: dict[str, int]  # findings of rules a policy turned off, by rule


def as_json(report: DiffReport) -> bytes:
    groups = group_changes(report.changes)
    grouped = _GroupedReport(report.breaking, report.required_bump, groups, report.changes, report.suppressed)
    return msgspec.json.encode(grouped) + b"\n"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _summary(report: DiffReport, groups: list[ChangeGroup]) -> str:
    counts = Counter(group.level for group in groups)
    parts = [f"{counts[level]} {level.value}" for level in Level if counts[level]]
    if groups:
        listed = f"{plural(len(groups), 'change')} ({', '.join(parts)})"
        if len(report.changes) != len(groups):
            listed += f", {len(report.changes)} findings across operations"
    else:
        listed = "no changes"
    verdict = "breaking" if report.breaking else "not breaking"
    summary = f"{listed}; {verdict}; required bump: {report.required_bump.value}"
    if report.suppressed:
        summary += f"; {suppressed_summary(report.suppressed)}"
    return summary


def _level(group: ChangeGroup) -> str:
    return f"{group.level.value} ({group.policy})" if group.policy else group.level.value


def _reach(operations: list[str], shown: int) -> str:
    if not operations:
        return ""
    more = f" (+{len(operations) - shown} more)" if len(operations) > shown else ""
    noun = plural(len(operations), "operation")
    return f"{noun}: {', '.join(operations[:shown])}{more}"


def as_text(report: DiffReport) -> str:
    groups = group_changes(report.changes)
    lines = []
    for group in groups:
        where = group.revision_pointer or group.base_pointer
        lines.append(
            f"{group.level.value.upper():7} {group.id}  {group.message}" + (f"  [{where}]" if where else "")
        )
        if group.policy:
            lines.append(f"{'':8}{group.policy}")
        if group.operations and (len(group.operations) > 1 or group.place is not None):
            lines.append(f"{'':8}reaches {_reach(group.operations, TEXT_OPERATIONS)}")
    lines.append(_summary(report, groups))
    return "\n".join(lines) + "\n"


def as_markdown(report: DiffReport) -> str:
    icon = {Level.ERROR: "🔴", Level.WARNING: "🟡", Level.INFO: "🔵"}
    groups = group_changes(report.changes)
    lines = [f"### Contract changes: {_summary(report, groups)}", ""]
    if groups:
        lines += ["| level | change | details | reaches |", "| --- | --- | --- | --- |"]
        for group in groups:
            message = group.message.replace("|", "\\|")
            reach = _reach(group.operations, MARKDOWN_OPERATIONS).replace("|", "\\|")
            lines.append(f"| {icon[group.level]} {_level(group)} | `{group.id}` | {message} | {reach} |")
    return "\n".join(lines) + "\n"
