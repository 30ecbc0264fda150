"""A severity policy: the levels a team gives the diff's rules, as oasdiff's severity-levels file does.

Two kinds of setting. `severity` sets a rule's level outright (`api-operation-id-changed: error`).
`open_enums` and `open_unions` say that readers of this API's responses and events are built to meet
values and variants they do not know (a stream of event types that grows), so an enum's new value, a
union's new member or a channel's new message breaks none of them: those become `info`. A document
can say the same of one enum or union with `x-extensible-enum`, which needs no policy.

A changed level is shown with the change (`error → info by policy`), so nobody mistakes it for the
catalog's judgement.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

from contracts.diff.catalog import RULES, SCHEMA_CONTEXTS, Direction, Level
from contracts.diff.changes import Change
from contracts.errors import ContractError, Issue
from contracts.loading import load_document
from contracts.references import escape

LevelName = Literal["error", "warning", "info"]


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
    """A policy from YAML or JSON text; InvalidPolicy says what is wrong in one line."""
    try:
        raw = load_document(data)
    except ContractError as exc:
        raise InvalidPolicy(f"the policy is unreadable: {exc.detail}") from None
    try:
        return check_policy(msgspec.convert(raw, SeverityPolicy))
    except msgspec.ValidationError as exc:
        raise InvalidPolicy(f"the policy is invalid: {exc}") from None


def apply_policy(changes: Iterable[Change], policy: SeverityPolicy) -> list[Change]:
    out = []
    for item in changes:
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
    return out
