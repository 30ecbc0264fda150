"""The recorded DBOS steps of a run: one attempt of a flow step, and one step's compensation.

Each returns its outcome as a value (not an exception) so that DBOS records it: a completed
attempt is never made again after a crash, and a recovered run replays the recorded outcome.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from dbos import DBOS

from gateway.flows.declaration import FlowInput, StepContext, StepFailed
from gateway.flows.engine import active_runner

_encoder = msgspec.json.Encoder()
# Why an event breaks the contracts registered for its topic (none: it may be sent).
EventCheck = Callable[[str, Any], Sequence[str]]
# An event leaves through an outbox row and a broker message: a step does not send megabytes.
MAX_EVENT_BYTES = 256 * 1024


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def step_idempotency_key(run_id: str, step: str) -> str:
    return hashlib.sha256(f"{run_id}\x00{step}".encode()).hexdigest()[:32]


@DBOS.step(name="charter_flow_attempt")
async def attempt_step(
    flow_name: str, step_name: str, attempt: int, flow_input: dict, outputs: dict, traceparent: str
) -> dict[str, Any]:
    """One attempt of one step."""
    runner = active_runner()
    flow = runner.flow(flow_name)
    step = flow.step(step_name)
    run_id = DBOS.workflow_id or ""
    context = StepContext(
        run_id=run_id,
        flow=flow_name,
        step=step_name,
        attempt=attempt,
        input=msgspec.convert(flow_input, FlowInput),
        outputs=dict(outputs),
        client=runner.client_factory(flow, run_id, step_name, traceparent),
        idempotency_key=step_idempotency_key(run_id, step_name),
        traceparent=traceparent,
    )
    started = now()
    clock = time.perf_counter()
    try:
        output = await asyncio.wait_for(step.run(context), step.retry.timeout_seconds)
        _encoder.encode(output)  # an output must be recordable
        refusal = refused_events(runner.event_check, context.events)
        if refusal is not None:
            return _failure(started, clock, refusal, False)
    except StepFailed as exc:
        error = {"message": str(exc), "status": exc.status, "problem": exc.problem}
        return _failure(started, clock, error, exc.retryable)
    except TimeoutError:
        error = {"message": f"attempt timed out after {step.retry.timeout_seconds} s"}
        return _failure(started, clock, error, True)
    except Exception as exc:  # a bug in the step: retried like any failure, and recorded
        return _failure(started, clock, {"message": f"{type(exc).__name__}: {exc}"}, True)
    outcome = {
        "ok": True,
        "step": step_name,
        "output": output,
        "events": [[topic, data] for topic, data in context.events],
        "started_at": started.isoformat(),
        "ended_at": now().isoformat(),
        "seconds": time.perf_counter() - clock,
    }
    # DBOS refuses to record the outcome of an attempt that completes after its run was cancelled;
    # the cancel still compensates what it did (see `cancellation`).
    runner.completed_attempts[run_id] = outcome
    return outcome


def refused_events(event_check: EventCheck | None, events: list[tuple[str, Any]]) -> dict[str, Any] | None:
    """The error of a step whose events break their contracts, or None when all may be sent.

    A contract-breaking event fails its step for good (retrying the same code emits the same event)
    and parks the run, rather than being dropped or sent: consumers rely on the contract, and a
    dropped `delivery.project.created` would silently lose business, while a parked run is visible in the
    exception queue, names the violations, and is retried once the flow or the contract is fixed.
    """
    for topic, data in events:
        size = len(_encoder.encode(data))
        if size > MAX_EVENT_BYTES:
            return {"message": f"event {topic} is {size} bytes; at most {MAX_EVENT_BYTES} may be sent"}
        violations = list(event_check(topic, data)) if event_check is not None else []
        if violations:
            return {
                "message": f"event {topic} breaks its contract: {'; '.join(violations)}",
                "problem": {"event": topic, "violations": violations},
            }
    return None


def _failure(started: dt.datetime, clock: float, error: dict, retryable: bool) -> dict[str, Any]:
    return {
        "ok": False,
        "error": error,
        "retryable": retryable,
        "started_at": started.isoformat(),
        "ended_at": now().isoformat(),
        "seconds": time.perf_counter() - clock,
    }


@DBOS.step(name="charter_flow_compensate")
async def compensate_step(
    flow_name: str, step_name: str, flow_input: dict, outputs: dict, traceparent: str, run_id: str = ""
) -> dict:
    """Undo one completed step (its declared compensation), once. `run_id`: the run compensated,
    when it is not the workflow compensating it (the cancel of a running run)."""
    runner = active_runner()
    flow = runner.flow(flow_name)
    step = flow.step(step_name)
    run_id = run_id or DBOS.workflow_id or ""
    assert step.compensate is not None
    context = StepContext(
        run_id=run_id,
        flow=flow_name,
        step=step_name,
        attempt=1,
        input=msgspec.convert(flow_input, FlowInput),
        outputs=dict(outputs),
        client=runner.client_factory(flow, run_id, f"{step_name}:compensate", traceparent),
        idempotency_key=step_idempotency_key(run_id, f"{step_name}:compensate"),
        traceparent=traceparent,
        output=outputs.get(step_name),
    )
    try:
        await asyncio.wait_for(step.compensate(context), step.retry.timeout_seconds)
        refusal = refused_events(runner.event_check, context.events)
    except Exception as exc:
        return {"ok": False, "error": {"message": f"{type(exc).__name__}: {exc}"}}
    if refusal is not None:
        return {"ok": False, "error": refusal}
    return {"ok": True, "events": [[topic, data] for topic, data in context.events]}
