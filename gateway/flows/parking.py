"""A run whose step is out of attempts: parked in the exception queue (state `failed`) until an
operator's message, or compensated (the completed steps undone in reverse) when its flow says so
or the operator cancels it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbos import DBOS

from gateway.flows.runs import RunState
from gateway.flows.steps import compensate_step

if TYPE_CHECKING:
    from gateway.flows.workflow import RunExecution

OPERATOR_TOPIC = "charter-operator"
_PARK_WAIT_SECONDS = 24 * 3600.0


async def park(run: RunExecution, index: int) -> str:
    """Park the run at its failed step; the operator's action (`retry` or `cancel`)."""
    run.record.state = RunState.FAILED
    run.record.failed_step = run.flow.steps[index].name
    run.events.append(("flow.run.failed", run.status_event()))
    await run.settle()
    run.count()
    if run.runner.metrics is not None:
        run.runner.metrics.parked.labels(run.flow.name).inc()
    run.end_span()  # an operator may act days later: the run's span ends where it parks
    while True:
        message = await DBOS.recv_async(OPERATOR_TOPIC, timeout_seconds=_PARK_WAIT_SECONDS)
        if message in ("retry", "cancel"):
            run.begin_span(index, resumed_by=str(message))
            return str(message)


async def compensate(run: RunExecution, final: RunState, failed_index: int) -> dict[str, Any]:
    """Compensate the steps before `failed_index` that completed, last first, and end the run."""
    run.record.failed_step = run.flow.steps[failed_index].name
    await undo_completed(run, failed_index)
    run.record.state = final
    run.events.append(("flow.run.failed", run.status_event()))
    await run.settle()
    run.count()
    return {"status": 409, "body": None, "headers": []}


async def undo_completed(run: RunExecution, before: int, *, run_id: str = "") -> bool:
    """Run the compensation of each completed step before index `before`, last first; whether
    any step had one."""
    any_compensated = False
    for index in range(before - 1, -1, -1):
        step, state = run.flow.steps[index], run.record.steps[index]
        if step.compensate is None or state.state != "succeeded":
            continue
        any_compensated = True
        span = run.child_span(
            f"flow.compensate {step.name}", {"charter.flow": run.flow.name, "charter.flow.step": step.name}
        )
        try:
            outcome = await compensate_step(
                run.flow.name,
                step.name,
                run.input,
                dict(run.record.outputs),
                span.traceparent or run.traceparent,
                run_id,
            )
        except BaseException as exc:
            span.fail(type(exc).__name__)
            span.end()
            raise
        if outcome["ok"]:
            state.state = "compensated"
            run.events += [(topic, run.business_event(data)) for topic, data in outcome["events"]]
        else:
            state.error = outcome["error"]
            span.fail(str(outcome["error"].get("message") or "failed"))
        span.end()
    return any_compensated
