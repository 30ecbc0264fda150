"""Changes grouped by the place that changed: one shared component, however many operations reach it.

The diff reports a change once per operation it reaches (a consumer of one operation wants to know),
so a property added to a schema that 500 responses embed is 500 findings. A reader wants it once,
with the operations it reaches: a group is one change at one place, keyed by rule and pointers.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from contracts.diff.catalog import Level
from contracts.diff.changes import Change

LEVEL_ORDER = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}
_UNIONS = frozenset({"anyOf", "oneOf", "allOf"})


class ChangeGroup(msgspec.Struct, frozen=True):
    id: str
    level: Level
    message: str  # what changed where, without an operation: "`customer.address`: became nullable"
    base_pointer: str | None
    revision_pointer: str | None
    operations: list[str]  # the operations (or channels) the change reaches, sorted
    findings: int  # the changes grouped: one per operation and response it reaches, and per value
    policy: str | None = None  # as Change.policy
    place: str | None = None  # the shared component and the path within it: "customer.address"


def group_changes(changes: Iterable[Change]) -> list[ChangeGroup]:
    """Breaking first, then the widest reach, then by message: the order a reviewer reads in."""
    grouped: dict[tuple[str, str | None, str | None], list[Change]] = {}
    for item in changes:
        grouped.setdefault((item.id, item.base_pointer, item.revision_pointer), []).append(item)
    groups = []
    for (rule_id, base_pointer, revision_pointer), items in grouped.items():
        first = items[0]
        operations = sorted({item.operation for item in items if item.operation})
        # Values added to one enum, properties renamed in one object: one change of one place.
        details = list(dict.fromkeys(item.detail for item in items if item.detail is not None))
        detail = "; ".join(details) if details else None
        where = shared_place(revision_pointer or base_pointer or "") if detail is not None else None
        if where is not None:
            message = f"`{where}`: {detail}"
        elif detail is not None and first.detail is not None and first.message.endswith(first.detail):
            message = first.message[: -len(first.detail)] + detail
        else:
            message = first.message
        groups.append(
            ChangeGroup(
                rule_id,
                first.level,
                message,
                base_pointer,
                revision_pointer,
                operations,
                len(items),
                first.policy,
                where,
            )
        )
    groups.sort(key=lambda g: (LEVEL_ORDER[g.level], -len(g.operations), g.message, g.id))
    return groups


def shared_place(pointer: str) -> str | None:
    """`customer.address.lines[]` for a pointer into a reusable component; None for any other place.

    Only components are shared: a schema written inline under an operation reaches that operation
    alone, and its change's own message already says where it is.
    """
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if len(parts) >= 2 and parts[0] == "definitions":
        name, rest = parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "components":
        name, rest = parts[2], parts[3:]
    else:
        return None
    text = name
    index = 0
    while index < len(rest):
        part = rest[index]
        if part == "properties" and index + 1 < len(rest):
            text += f".{rest[index + 1]}"
            index += 2
        elif part in _UNIONS:
            index += 2  # a member of a union: the change belongs to the schema that holds it
        elif part == "items":
            text += "[]"
            index += 1
        elif part == "additionalProperties":
            text += ".*"
            index += 1
        else:  # `enum`, `schema`, `payload`, `content/<media type>`...: no name a reader knows
            index += 1
    return text
