"""Operator actions on a run: retry a parked run at its failed step, replay a run from a step as a
new run with the recorded outputs before it, cancel a parked run (its workflow compensates)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from dbos import DBOS, SetWorkflowID

from gateway.flows import cancellation
from gateway.flows.parking import OPERATOR_TOPIC
from gateway.flows.runs import RunRecord, RunState
from gateway.flows.steps import now
from gateway.flows.workflow import charter_flow_run

if TYPE_CHECKING:
    from gateway.flows.runner import FlowRunner


class RunConflict(Exception):
    """An operator action that does not fit the run's state (retry of a running run)."""


class UnknownRun(Exception):
    pass


async def retry(runner: FlowRunner, run_id: str) -> None:
    await _signal(runner, run_id, "retry")


async def cancel(runner: FlowRunner, run_id: str) -> None:
    """A parked run compensates at once; a running one stops at its next step boundary first."""
    record = await _record(runner, run_id)
    if record.state is RunState.RUNNING:
        await cancellation.cancel_running(runner, record)
        return
    await _signal(runner, run_id, "cancel")


async def replay(runner: FlowRunner, run_id: str, from_step: str) -> str:
    source = await _record(runner, run_id)
    flow = runner.flow(source.flow)
    try:
        start = flow.step_index(from_step)
    except ValueError:
        raise KeyError(from_step) from None
    prior = {
        step.name: source.outputs[step.name] for step in flow.steps[:start] if step.name in source.outputs
    }
    missing = [step.name for step in flow.steps[:start] if step.name not in prior]
    if missing:
        raise RunConflict(f"run {run_id} has no recorded output of {', '.join(missing)}")
    new_id = str(uuid.uuid4())
    meta = {
        "traceparent": "",
        "request_hash": None,
        "created_at": now().isoformat(),
        "replay_of": run_id,
        "trace_id": source.trace_id,
    }
    with SetWorkflowID(new_id):
        handle = await DBOS.start_workflow_async(
            charter_flow_run, flow.name, source.input, start, prior, meta
        )
    runner.starting(new_id, handle)
    await runner.wait(new_id, 0)  # indexed before its id is answered
    return new_id


async def _signal(runner: FlowRunner, run_id: str, action: str) -> None:
    record = await _record(runner, run_id)
    if record.state is not RunState.FAILED:
        can = "a running or failed run" if action == "cancel" else "a failed run"
        raise RunConflict(f"run {run_id} is {record.state.value}; only {can} can be {action}ed")
    await DBOS.send_async(run_id, action, OPERATOR_TOPIC)


async def _record(runner: FlowRunner, run_id: str) -> RunRecord:
    record = await runner.index.get(run_id)
    if record is None:
        raise UnknownRun(run_id)
    return record
