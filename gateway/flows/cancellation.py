"""Cancel of a running run: DBOS stops its workflow at the next step boundary (the attempt in flight
completes and is recorded; the next one never starts), then a workflow of its own compensates the
completed steps in reverse and ends the run `compensated` (or `cancelled` when none declares a
compensation).

The cancelled workflow can record nothing more, so the compensation runs in a second workflow,
started (idempotently, by id) before the first is cancelled. It waits for the first to say it has
stopped: the executor of the run writes the run's record as it stopped, then sends a message. If
that executor died meanwhile, the wait times out after the longest an attempt and its backoff may
take, and the compensation works from the index record and the steps DBOS recorded.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from typing import TYPE_CHECKING, Any

import msgspec
from dbos import DBOS, SetWorkflowID

from gateway.flows import parking
from gateway.flows.declaration import Flow
from gateway.flows.engine import active_runner
from gateway.flows.runs import RunRecord, RunState
from gateway.flows.workflow import RunExecution, summary

if TYPE_CHECKING:
    from gateway.flows.runner import FlowRunner

log = logging.getLogger("charter.flows")
STOPPED_TOPIC = "charter-stopped"
_UNBOUNDED_ATTEMPT_SECONDS = 300.0  # how long an attempt without a timeout is waited for


def compensation_id(run_id: str) -> str:
    return f"{run_id}-cancel"


async def cancel_running(runner: FlowRunner, record: RunRecord) -> None:
    flow = runner.flow(record.flow)
    with SetWorkflowID(compensation_id(record.id)):
        await DBOS.start_workflow_async(charter_flow_cancel, record.id, _stop_within(flow))
    await DBOS.cancel_workflow_async(record.id)


def _stop_within(flow: Flow) -> float:
    attempt = max(
        (s.retry.timeout_seconds or _UNBOUNDED_ATTEMPT_SECONDS for s in flow.steps),
        default=_UNBOUNDED_ATTEMPT_SECONDS,
    )
    backoff = max((s.retry.max_backoff_seconds * (1 + s.retry.jitter) for s in flow.steps), default=0.0)
    return attempt + backoff + 5.0


async def stopped(run: RunExecution) -> None:
    """Called by a run's workflow at the step boundary where DBOS stopped it: cancelled, or taken
    over by another executor (then it does nothing)."""
    # Outside the workflow's context: DBOS would take a call from the stopped workflow for one of
    # its steps, and refuse it.
    outside = contextvars.Context()
    loop = asyncio.get_running_loop()
    try:
        status = await loop.create_task(DBOS.get_workflow_status_async(run.record.id), context=outside)
    except Exception:
        log.exception("could not read the state of stopped run %s", run.record.id)
        return
    if status is None or status.status != "CANCELLED":
        return
    last = run.runner.completed_attempts.get(run.record.id)
    names = [step.name for step in run.flow.steps]
    if last is not None and last["step"] in names:  # the attempt in flight, done but not recorded
        index = names.index(last["step"])
        if run.record.steps[index].state != "succeeded":
            run.succeeded(index, last)
    for state in run.record.steps:
        if state.state == "running":
            state.state = "pending"
    try:
        await run.runner.writer.write(run.record)
        notify = DBOS.send_async(compensation_id(run.record.id), "stopped", STOPPED_TOPIC)
        await loop.create_task(notify, context=outside)
    except Exception:  # the compensation goes on when its wait times out
        log.exception("could not tell the compensation of run %s that it stopped", run.record.id)


@DBOS.workflow(name="charter_flow_cancel")
async def charter_flow_cancel(run_id: str, stop_within: float) -> None:
    runner = active_runner()
    await DBOS.recv_async(STOPPED_TOPIC, timeout_seconds=stop_within)
    found = await _run_as_stopped(run_id)
    if found is None:  # it ended (or parked and was dealt with) before DBOS could stop it
        return
    record = msgspec.convert(found, RunRecord)
    run = RunExecution.from_record(runner, runner.flow(record.flow), record)
    steps = run.record.steps
    stop = next((i for i, s in enumerate(steps) if s.state not in ("succeeded", "skipped")), len(steps))
    run.record.failed_step = run.flow.steps[stop].name if stop < len(steps) else None
    compensated = await parking.undo_completed(run, stop, run_id=run_id)
    run.record.state = RunState.COMPENSATED if compensated else RunState.CANCELLED
    run.events.append(("flow.run.failed", run.status_event()))
    await run.settle()
    run.count()


@DBOS.step(name="charter_flow_stopped_run")
async def _run_as_stopped(run_id: str) -> dict[str, Any] | None:
    """The cancelled run's record with every step DBOS recorded as completed, or None when the run
    had already ended."""
    record = await active_runner().index.get(run_id)
    if record is None or record.state not in (RunState.RUNNING, RunState.FAILED):
        return None
    for info in await DBOS.list_workflow_steps_async(run_id):
        outcome = info["output"]
        if info["function_name"] != "charter_flow_attempt" or not isinstance(outcome, dict):
            continue
        name = outcome.get("step")
        state = next((s for s in record.steps if s.name == name), None)
        if state is None or not outcome.get("ok") or state.state == "succeeded":
            continue
        record.outputs[name] = outcome["output"]
        state.state, state.output_summary, state.error = "succeeded", summary(outcome["output"]), None
    for state in record.steps:
        if state.state == "running":
            state.state = "pending"
    return msgspec.to_builtins(record)
