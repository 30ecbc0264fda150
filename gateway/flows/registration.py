"""Flows come from the `charter.flows` entry-point group: a firm ships its flows in its own package.

`[project.entry-points."charter.flows"] lead-to-project = "acme.flows:lead_to_project"` where the
object is a `Flow`, or a sequence of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from gateway.flows.declaration import Flow

ENTRY_POINT_GROUP = "charter.flows"
log = logging.getLogger("charter.flows")


class InvalidFlow(Exception):
    pass


def load_flows(found: Iterable[EntryPoint] | None = None) -> dict[str, Flow]:
    """Every flow the installed packages declare, by name; a broken entry point is logged, skipped."""
    flows: dict[str, Flow] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP) if found is None else found:
        try:
            for flow in _flows_of(entry):
                if flow.name in flows:
                    raise InvalidFlow(f"two flows are named {flow.name!r}")
                flows[flow.name] = flow
        except Exception as exc:
            log.error("flow entry point %r is not usable: %s", entry.name, exc)
    return flows


def _flows_of(entry: EntryPoint) -> list[Flow]:
    value = entry.load()
    items = [value] if isinstance(value, Flow) else list(value)
    for item in items:
        if not isinstance(item, Flow):
            raise InvalidFlow(f"{entry.value} is not a Flow or a sequence of them")
    return items
