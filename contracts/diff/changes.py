"""A change found between two documents, and the semantic-version bump a set of changes requires."""

from __future__ import annotations

import enum
from collections.abc import Iterable

import msgspec
import semver

from contracts.diff.catalog import RULES, Level


class Change(msgspec.Struct, frozen=True):
    id: str
    level: Level
    message: str
    operation: str | None  # "GET /projects/{id}", "channel invoices.invoice.issued", ...
    base_pointer: str | None  # JSON pointer into the base document; None for an addition
    revision_pointer: str | None  # JSON pointer into the revision; None for a removal
    # What happened, without saying where ("became nullable"): the words of a group of changes made
    # at one shared place. None for a change that only one operation can reach.
    detail: str | None = None
    # Why `level` is not the catalog's: "error → warning by policy". None when it is.
    policy: str | None = None


def change(
    rule_id: str,
    message: str,
    *,
    operation: str | None,
    base_pointer: str | None,
    revision_pointer: str | None,
    detail: str | None = None,
) -> Change:
    return Change(rule_id, RULES[rule_id].level, message, operation, base_pointer, revision_pointer, detail)


class Bump(enum.StrEnum):
    NONE = "none"
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"

    @property
    def rank(self) -> int:
        return list(Bump).index(self)


def required_bump(changes: Iterable[Change]) -> Bump:
    """Any `error` needs a major version, any addition a minor one, anything else a patch."""
    bump = Bump.NONE
    for item in changes:
        if item.level is Level.ERROR:
            return Bump.MAJOR
        bump = Bump.MINOR if RULES[item.id].addition else max(bump, Bump.PATCH, key=lambda b: b.rank)
    return bump


def actual_bump(base: str, candidate: str) -> Bump:
    """How far `candidate` moves from `base`; NONE when it does not move forward at all.

    Below 1.0.0 the minor number plays the major's part (as in Cargo and npm's caret ranges):
    0.3.0 to 0.4.0 may break, 0.3.0 to 0.3.1 may not.
    """
    old, new = semver.Version.parse(base), semver.Version.parse(candidate)
    if new <= old:
        return Bump.NONE
    if new.major != old.major:
        return Bump.MAJOR
    if old.major == 0:
        return Bump.MAJOR if new.minor != old.minor else Bump.MINOR
    if new.minor != old.minor:
        return Bump.MINOR
    return Bump.PATCH


def bump_suffices(required: Bump, base: str, candidate: str) -> bool:
    actual = actual_bump(base, candidate)
    if actual is Bump.NONE:
        return False
    return actual.rank >= required.rank
