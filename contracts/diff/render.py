"""A diff report as text for a terminal, Markdown for a pull-request comment, or JSON for scripts."""

from __future__ import annotations

from collections import Counter

import msgspec

from contracts.diff.catalog import Level
from contracts.diff.compare import DiffReport


def as_json(report: DiffReport) -> bytes:
    return msgspec.json.encode(report) + b"\n"


def _summary(report: DiffReport) -> str:
    counts = Counter(change.level for change in report.changes)
    parts = [f"{counts[level]} {level.value}" for level in Level if counts[level]]
    listed = f"{len(report.changes)} changes ({', '.join(parts)})" if report.changes else "no changes"
    verdict = "breaking" if report.breaking else "not breaking"
    return f"{listed}; {verdict}; required bump: {report.required_bump.value}"


def as_text(report: DiffReport) -> str:
    lines = [
        f"{change.level.value.upper():7} {change.id}  {change.message}"
        + (
            f"  [{change.revision_pointer or change.base_pointer}]"
            if change.base_pointer or change.revision_pointer
            else ""
        )
        for change in report.changes
    ]
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def as_markdown(report: DiffReport) -> str:
    icon = {Level.ERROR: "🔴 error", Level.WARNING: "🟡 warning", Level.INFO: "🔵 info"}
    lines = [f"### Contract changes: {_summary(report)}", ""]
    if report.changes:
        lines += ["| level | change | operation | details |", "| --- | --- | --- | --- |"]
        for change in report.changes:
            message = change.message.replace("|", "\\|")
            operation = (change.operation or "").replace("|", "\\|")
            lines.append(f"| {icon[change.level]} | `{change.id}` | {operation} | {message} |")
    return "\n".join(lines) + "\n"
