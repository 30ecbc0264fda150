"""Diff two contracts of one family: the changes, whether any breaks, and the version bump they need."""

from __future__ import annotations

import datetime as dt

import msgspec

from contracts.diff.asyncapi import diff_asyncapi
from contracts.diff.catalog import Level
from contracts.diff.changes import Bump, Change, required_bump
from contracts.diff.model import diff_models
from contracts.diff.openapi import diff_openapi
from contracts.diff.policy import SeverityPolicy, apply_policy_counted
from contracts.errors import IncomparableContracts
from contracts.kinds import Family, detect_kind
from contracts.loading import DEFAULT_LIMITS, Document, LoadLimits


class DiffReport(msgspec.Struct, frozen=True):
    breaking: bool
    required_bump: Bump
    changes: list[Change]
    # Findings of the rules a policy turned `off`, by rule: counted nowhere else, shown nowhere.
    suppressed: dict[str, int] = {}


def diff_documents(
    base: Document,
    revision: Document,
    *,
    today: dt.date | None = None,
    limits: LoadLimits = DEFAULT_LIMITS,
    policy: SeverityPolicy | None = None,
) -> DiffReport:
    """`today` decides whether a removed operation's `x-sunset` has passed (UTC today by default);
    `policy` sets levels before they decide whether the change breaks and the bump it needs.

    Each pair of schemas is compared once (`limits.max_schema_comparisons` at most), however many
    references lead to it; past the budget, or past `MAX_SCHEMA_DEPTH`, DocumentTooComplex.
    """
    base_kind, revision_kind = detect_kind(base), detect_kind(revision)
    if base_kind.family is not revision_kind.family:
        raise IncomparableContracts(f"cannot compare {base_kind} with {revision_kind}")
    if base_kind.family is Family.OPENAPI:
        changes = diff_openapi(
            base,
            revision,
            today=today or dt.datetime.now(dt.UTC).date(),
            max_comparisons=limits.max_schema_comparisons,
        )
    elif base_kind.family is Family.JSON_SCHEMA:
        changes = diff_models(base, revision, max_comparisons=limits.max_schema_comparisons)
    else:
        changes = diff_asyncapi(base, revision, max_comparisons=limits.max_schema_comparisons)
    suppressed: dict[str, int] = {}
    if policy is not None:
        changes, suppressed = apply_policy_counted(changes, policy)
    changes.sort(key=_order)
    return DiffReport(
        breaking=any(c.level is Level.ERROR for c in changes),
        required_bump=required_bump(changes),
        changes=changes,
        suppressed=suppressed,
    )


_LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def _order(item: Change) -> tuple[int, str, str, str]:
    return (
        _LEVEL_ORDER[item.level],
        item.operation or "",
        item.id,
        item.base_pointer or item.revision_pointer or "",
    )
