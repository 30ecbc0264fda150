"""`charter check`, the one CI step: its verdict and the four ways to print it.

Built from parts computed elsewhere (validation, lint, diff, the registry's impact analysis); this
module only decides pass or fail and renders, so it needs neither HTTP nor a database.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

import msgspec

from contracts.diff import Bump, Change, DiffReport, Level, bump_suffices, group_changes, suppressed_summary
from contracts.lint import Finding, Severity
from contracts.plural import counted


class AffectedConsumer(msgspec.Struct, frozen=True):
    consumer: str
    team: str | None  # None: seen at the gateway, never registered
    versions: str
    base_version: str
    change_ids: list[str]
    observed: bool = False


class CheckReport(msgspec.Struct, frozen=True, kw_only=True):
    api: str
    file: str
    version: str | None  # the candidate's info.version
    base_version: str | None  # what it was compared with; None for a first version
    findings: list[Finding]
    changes: list[Change]
    suppressed: dict[str, int]  # findings of rules the diff policy turned off, by rule
    required_bump: Bump
    bump_ok: bool
    affected: list[AffectedConsumer]
    impact_checked: bool  # False offline (--base): consumers are known only to the registry
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def verdict(
    *,
    api: str,
    file: str,
    version: str | None,
    base_version: str | None,
    findings: list[Finding],
    diff: DiffReport | None,
    affected: list[AffectedConsumer] | None,
    fail_on_impact: bool,
) -> CheckReport:
    failures = []
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        failures.append(counted(len(errors), "lint error"))
    required = diff.required_bump if diff else Bump.NONE
    bump_ok = True
    if diff is not None and base_version is not None:
        if version is None:
            bump_ok = False
            failures.append("the document has no info.version to check against the required bump")
        else:
            try:
                # The same number is fine only for the same contract: a re-run of an unchanged pipeline.
                same = version == base_version
                bump_ok = not diff.changes if same else bump_suffices(required, base_version, version)
            except ValueError:
                bump_ok = False
            if not bump_ok:
                failures.append(
                    f"{version} after {base_version} is not the {required.value} version the changes need"
                )
    if fail_on_impact and affected:
        failures.append(f"{counted(len(affected), 'consumer')} affected")
    return CheckReport(
        api=api,
        file=file,
        version=version,
        base_version=base_version,
        findings=findings,
        changes=diff.changes if diff else [],
        suppressed=diff.suppressed if diff else {},
        required_bump=required,
        bump_ok=bump_ok,
        affected=affected or [],
        impact_checked=affected is not None,
        failures=failures,
    )


def as_json(report: CheckReport) -> bytes:
    body: dict[str, Any] = msgspec.to_builtins(report)
    body["passed"] = report.passed
    return msgspec.json.encode(body) + b"\n"


def as_text(report: CheckReport, *, colour: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if colour else text

    lines = [f"charter check {report.api}: {report.file} ({report.version or 'no version'})"]
    for finding in report.findings:
        level = finding.severity.value.upper()
        shown = paint(level, "31" if level == "ERROR" else "33")
        lines.append(f"  lint {shown} {finding.rule} {finding.pointer}: {finding.message}")
    if report.base_version is None:
        lines.append("  diff: no published version to compare with (a first version)")
    else:
        breaking = sum(c.level is Level.ERROR for c in report.changes)
        bump = "ok" if report.bump_ok else paint("too small", "31")
        changes = counted(len(report.changes), "change")
        off = f"; {suppressed_summary(report.suppressed)}" if report.suppressed else ""
        lines.append(
            f"  diff against {report.base_version}: {changes}, {breaking} breaking; "
            f"required bump {report.required_bump.value}: {bump}{off}"
        )
        # Each change once at the place that changed; the breaking ones, and any a policy re-levelled.
        for group in group_changes(report.changes):
            if group.level is not Level.ERROR and group.policy is None:
                continue
            level = paint("ERROR", "31") if group.level is Level.ERROR else group.level.value.upper()
            reach = f" ({len(group.operations)} operations)" if len(group.operations) > 1 else ""
            note = f" [{group.policy}]" if group.policy else ""
            lines.append(f"    {level} {group.id}  {group.message}{reach}{note}")
    if not report.impact_checked:
        lines.append("  impact: not checked (offline)")
    for consumer in report.affected:
        team = consumer.team or "unregistered, seen at the gateway"
        who = f"{consumer.consumer} ({team}, {consumer.versions})"
        lines.append(f"  affects {who}: {', '.join(consumer.change_ids)}")
    outcome = (
        paint("PASS", "32") if report.passed else paint("FAIL", "31") + ": " + "; ".join(report.failures)
    )
    lines.append(outcome)
    return "\n".join(lines) + "\n"


def as_markdown(report: CheckReport) -> str:
    icon = "✅" if report.passed else "❌"
    lines = [f"### {icon} `charter check` {report.api} {report.version or ''}".rstrip(), ""]
    if report.failures:
        lines += [f"- **{failure}**" for failure in report.failures] + [""]
    lines += ["| step | result |", "| --- | --- |"]
    errors = sum(f.severity is Severity.ERROR for f in report.findings)
    lines.append(f"| lint | {counted(len(report.findings), 'finding')}, {counted(errors, 'error')} |")
    if report.base_version is None:
        lines.append("| diff | first version: nothing to compare |")
    else:
        breaking = sum(c.level is Level.ERROR for c in report.changes)
        bump = "enough" if report.bump_ok else "too small"
        changes = counted(len(report.changes), "change")
        off = f"; {suppressed_summary(report.suppressed)}" if report.suppressed else ""
        lines.append(
            f"| diff | against {report.base_version}: {changes}, {breaking} breaking; "
            f"needs a {report.required_bump.value} version ({bump}){off} |"
        )
    impact = ", ".join(a.consumer for a in report.affected) or "none"
    lines.append(f"| consumers affected | {impact if report.impact_checked else 'not checked (offline)'} |")
    details = [f for f in report.findings if f.severity is Severity.ERROR]
    breaking_changes = [c for c in report.changes if c.level is Level.ERROR]
    if details or breaking_changes:
        lines += ["", "<details><summary>Details</summary>", ""]
        lines += [f"- lint `{f.rule}` at `{f.pointer}`: {f.message}" for f in details]
        lines += [f"- `{c.id}` {c.operation or ''}: {c.message}" for c in breaking_changes]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def as_junit(report: CheckReport) -> bytes:
    """JUnit XML for CI dashboards: one test case per step of the check."""
    suite = ElementTree.Element("testsuite", name=f"charter check {report.api}")
    cases = 0
    failed = 0

    def case(name: str, failure: str | None, detail: str = "") -> None:
        nonlocal cases, failed
        element = ElementTree.SubElement(suite, "testcase", classname=f"charter.{report.api}", name=name)
        cases += 1
        if failure is not None:
            failed += 1
            node = ElementTree.SubElement(element, "failure", message=failure)
            node.text = detail
        elif detail:
            ElementTree.SubElement(element, "system-out").text = detail

    lint_errors = [f for f in report.findings if f.severity is Severity.ERROR]
    case(
        "lint",
        counted(len(lint_errors), "lint error") if lint_errors else None,
        "\n".join(f"{f.severity.value} {f.rule} {f.pointer}: {f.message}" for f in report.findings),
    )
    breaking = "\n".join(f"{c.id} {c.message}" for c in report.changes if c.level is Level.ERROR)
    if report.suppressed:
        breaking = "\n".join(filter(None, [breaking, suppressed_summary(report.suppressed)]))
    case(
        "semver",
        None
        if report.bump_ok
        else f"needs a {report.required_bump.value} version after {report.base_version}",
        breaking,
    )
    impacted = "\n".join(f"{a.consumer}: {', '.join(a.change_ids)}" for a in report.affected)
    impact_failure = next((f for f in report.failures if "consumer" in f), None)
    case("impact", impact_failure, impacted or ("not checked (offline)" if not report.impact_checked else ""))
    suite.set("tests", str(cases))
    suite.set("failures", str(failed))
    return ElementTree.tostring(suite, encoding="utf-8", xml_declaration=True) + b"\n"
