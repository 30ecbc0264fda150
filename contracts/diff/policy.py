"""A severity policy: the levels a team gives the diff's rules, as oasdiff's severity-levels file does.

Two kinds of setting. `severity` sets a rule's level outright (`api-operation-id-changed: error`), or
turns the rule `off`: its findings are dropped before anything counts them (breaking, the bump, the
changes stored on publish) and the report says only how many were suppressed, rule by rule.
`open_enums` and `open_unions` say that readers of this API's responses and events are built to meet
values and variants they do not know (a stream of event types that grows), so an enum's new value, a
union's new member or a channel's new message breaks none of them: those become `info`. A document
can say the same of one enum or union with `x-extensible-enum`, which needs no policy.

A changed level is shown with the change (`error → info by policy`), so nobody mistakes it for the
catalog's judgement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import msgspec

from contracts.diff.catalog import RULES, SCHEMA_CONTEXTS, Direction, Level
from contracts.diff.changes import Change
from contracts.errors import ContractError, Issue
from contracts.loading import load_document
from contracts.plural import counted
from contracts.references import escape

LevelName = Literal["error", "warning", "info", "off"]
OFF = "off"
# oasdiff's `--severity-levels` words (it reads them in either case) and the level each one means here.
OASDIFF_LEVELS: dict[str, LevelName] = {"err": "error", "warn": "warning", "info": "info", "none": "off"}


class InvalidPolicy(ContractError):
    title = "Invalid severity policy"


class SeverityPolicy(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    severity: dict[str, LevelName] = {}
    open_enums: bool | None = None  # None: as the wider policy says (the global one), else closed
    open_unions: bool | None = None

    def within(self, wider: SeverityPolicy | None) -> SeverityPolicy:
        """This policy over a wider one: an API's over the global, rule by rule and setting by setting."""
        if wider is None:
            return self
        return SeverityPolicy(
            severity={**wider.severity, **self.severity},
            open_enums=self.open_enums if self.open_enums is not None else wider.open_enums,
            open_unions=self.open_unions if self.open_unions is not None else wider.open_unions,
        )


def _reader_rules(suffixes: tuple[str, ...]) -> frozenset[str]:
    """The rules with these suffixes where the schema is read by the client or consumer."""
    return frozenset(
        f"{prefix}-{suffix}"
        for context in SCHEMA_CONTEXTS
        if context.direction is Direction.RESPONSE
        for prefix in (context.root, context.nested)
        for suffix in suffixes
    )


OPEN_ENUM_RULES = _reader_rules(("enum-value-added",))
# A channel's new message is a new variant of the events it carries, as a union's new member is.
OPEN_UNION_RULES = _reader_rules(("one-of-added", "any-of-added")) | {"message-added"}


def check_policy(policy: SeverityPolicy) -> SeverityPolicy:
    unknown = sorted(rule_id for rule_id in policy.severity if rule_id not in RULES)
    if unknown:
        raise InvalidPolicy(
            f"unknown rule `{unknown[0]}`"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            + ": rule ids are listed in docs/changes.md",
            [
                Issue(pointer=f"/severity/{escape(rule_id)}", message="not a rule of the diff")
                for rule_id in unknown
            ],
        )
    return policy


def load_policy(data: bytes) -> SeverityPolicy:
    """A policy from YAML or JSON text, or from oasdiff's severity-levels text; InvalidPolicy says what
    is wrong in one line."""
    if _is_severity_levels(data):
        return load_severity_levels(data)
    try:
        raw = load_document(data)
    except ContractError as exc:
        raise InvalidPolicy(f"the policy is unreadable: {exc.detail}") from None
    try:
        return check_policy(msgspec.convert(raw, SeverityPolicy))
    except msgspec.ValidationError as exc:
        raise InvalidPolicy(f"the policy is invalid: {exc}") from None


def _is_severity_levels(data: bytes) -> bool:
    """oasdiff's format: every line that is not blank or a `#` comment is `rule-id level`. A YAML or
    JSON policy never reads so: its keys end with `:`, its text starts with `{`."""
    text = data.decode("utf-8", errors="replace")
    lines = (line.split("#", 1)[0].split() for line in text.splitlines())
    first = next((words for words in lines if words), None)
    # The first line decides, so that a later malformed line is reported by its number.
    return first is not None and len(first) == 2 and not first[0].endswith(":") and first[0][0] not in "{[-"


def load_severity_levels(data: bytes) -> SeverityPolicy:
    """oasdiff's `--severity-levels` file: one `rule-id level` a line, level `err`, `warn`, `info` or
    `none` (any case; Charter's `error`, `warning` and `off` too); blank lines and `#` comments are
    skipped, which oasdiff itself does not allow.

    A rule id the catalog does not have is an error, as oasdiff makes it one: a misspelt or foreign
    rule silently ignored would leave its findings at a level nobody chose. The message names every
    such line, so a file ported from oasdiff is fixed in one pass.
    """
    severity: dict[str, LevelName] = {}
    unknown: list[tuple[int, str]] = []
    text = data.decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].split()
        if not content:
            continue
        if len(content) != 2:
            raise InvalidPolicy(f"line {number}: expected `rule-id level`, found {line.strip()[:80]!r}")
        rule_id, word = content
        level = OASDIFF_LEVELS.get(word.lower()) or _own_level(word.lower())
        if level is None:
            raise InvalidPolicy(
                f"line {number}: unknown level `{word[:40]}` (err, warn, info or none; error, warning, off)"
            )
        if rule_id not in RULES:
            unknown.append((number, rule_id))
        severity[rule_id] = level
    if unknown:
        number, rule_id = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise InvalidPolicy(
            f"line {number}: unknown rule `{rule_id[:100]}`{more}: rule ids are listed in docs/changes.md",
            [
                Issue(pointer=f"/severity/{escape(r)}", message=f"line {n}: not a rule of the diff")
                for n, r in unknown
            ],
        )
    return SeverityPolicy(severity=severity)


def _own_level(word: str) -> LevelName | None:
    return word if word in ("error", "warning", "info", "off") else None  # type: ignore[return-value]


def apply_policy(changes: Iterable[Change], policy: SeverityPolicy) -> list[Change]:
    """The changes at the levels the policy sets; those of a rule turned `off` are left out."""
    return apply_policy_counted(changes, policy)[0]


def suppressed_summary(suppressed: Mapping[str, int]) -> str:
    """`3 findings of 2 rules turned off by policy`: the one line every report gives suppressed counts."""
    findings = counted(sum(suppressed.values()), "finding")
    return f"{findings} of {counted(len(suppressed), 'rule')} turned off by policy"


def apply_policy_counted(
    changes: Iterable[Change], policy: SeverityPolicy
) -> tuple[list[Change], dict[str, int]]:
    """As apply_policy, with the number of findings each rule turned `off` suppressed."""
    out = []
    suppressed: dict[str, int] = {}
    for item in changes:
        if policy.severity.get(item.id) == OFF:
            suppressed[item.id] = suppressed.get(item.id, 0) + 1
            continue
        level = item.level
        reason = None
        if (policy.open_enums and item.id in OPEN_ENUM_RULES) or (
            policy.open_unions and item.id in OPEN_UNION_RULES
        ):
            kind = "enums" if item.id in OPEN_ENUM_RULES else "unions"
            level, reason = Level.INFO, f"by policy (open {kind})"
        if item.id in policy.severity:
            level, reason = Level(policy.severity[item.id]), "by policy"
        if reason is None or level is item.level:
            out.append(item)
            continue
        rule_level = RULES[item.id].level
        note = f"{rule_level.value} → {level.value} {reason}" if level is not rule_level else None
        out.append(msgspec.structs.replace(item, level=level, policy=note))
    return out, dict(sorted(suppressed.items()))
