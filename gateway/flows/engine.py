"""The process's one durable-execution engine and the runner it serves.

DBOS is a process-wide singleton, and the workflow and step functions it calls are module-level
functions: they find the flows, the index writer and the clients through the runner active here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.flows.runner import FlowRunner

_active: FlowRunner | None = None


def activate(runner: FlowRunner) -> None:
    global _active
    if _active is not None:
        raise RuntimeError("a flow runner is already active in this process")
    _active = runner


def deactivate(runner: FlowRunner) -> bool:
    """Whether `runner` was the active one (and now is not)."""
    global _active
    if _active is not runner:
        return False
    _active = None
    return True


def active_runner() -> FlowRunner:
    if _active is None:
        raise RuntimeError("no flow runner is active")
    return _active
