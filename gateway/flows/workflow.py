"""The DBOS workflow that runs any flow: its steps in order from a start index, each attempt a
recorded DBOS step, so a recovered run resumes at its last completed step. Backoff between
attempts is a durable DBOS sleep. A step out of attempts parks the run (see `parking`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from dbos import DBOS
from dbos._error import DBOSWorkflowCancelledError, DBOSWorkflowConflictIDError

from gateway.flows import parking
from gateway.flows.declaration import Flow, FlowInput, Outcome
from gateway.flows.engine import active_runner
from gateway.flows.runs import RunRecord, RunState, StepRun
from gateway.flows.steps import attempt_step, now
from gateway.tracing import NO_SPAN, Attributes, Span

if TYPE_CHECKING:
    from gateway.flows.runner import FlowRunner

_SUMMARY_CHARS = 200
_encoder = msgspec.json.Encoder()


@DBOS.workflow(name="charter_flow_run")
async def charter_flow_run(
    flow_name: str, flow_input: dict, start: int, prior_outputs: dict, meta: dict
) -> dict[str, Any]:
    runner = active_runner()
    flow = runner.flow(flow_name)
    run = RunExecution(runner, flow, DBOS.workflow_id or "", flow_input, prior_outputs, meta, start)
    try:
        return await run.execute(start)
    except (DBOSWorkflowCancelledError, DBOSWorkflowConflictIDError):
        # DBOS 3.4 reports a cancel seen at a step boundary as either: the workflow is cancelled,
        # or this execution no longer owns it. (Imported here: cancellation builds on this module.)
        from gateway.flows import cancellation

        await cancellation.stopped(run)
        raise
    finally:
        runner.stopped(run.record.id)


class RunExecution:
    """The body of one run's workflow: deterministic given the recorded step outcomes."""

    def __init__(
        self,
        runner: FlowRunner,
        flow: Flow,
        run_id: str,
        flow_input: dict,
        prior_outputs: dict,
        meta: dict,
        start: int,
    ) -> None:
        self.runner, self.flow = runner, flow
        self.input = flow_input
        traceparent = str(meta.get("traceparent") or "")
        trace_id = str(meta.get("trace_id") or "") or (
            traceparent.split("-")[1] if traceparent.count("-") == 3 else ""
        )
        created = dt.datetime.fromisoformat(meta["created_at"])
        self.traceparent = _traceparent(run_id, traceparent, trace_id)
        steps = [StepRun(name=step.name) for step in flow.steps]
        for index in range(start):
            steps[index].state = "skipped" if flow.steps[index].name not in prior_outputs else "succeeded"
            steps[index].output_summary = summary(prior_outputs.get(flow.steps[index].name))
        self.record = RunRecord(
            id=run_id,
            flow=flow.name,
            state=RunState.RUNNING,
            keys=business_keys(flow, flow_input, prior_outputs),
            created_at=created,
            updated_at=created,
            steps=steps,
            input=flow_input,
            outputs=dict(prior_outputs),
            trace_id=trace_id,
            consumer=flow_input.get("consumer"),
            operation=flow_input.get("operation_id"),
            request_hash=meta.get("request_hash"),
            replay_of=meta.get("replay_of"),
        )
        # Events leave in the transaction that records what they announce (at least once: a run
        # recovered after a crash records, and announces, its replayed steps again).
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.span: Span = NO_SPAN

    @classmethod
    def from_record(cls, runner: FlowRunner, flow: Flow, record: RunRecord) -> RunExecution:
        """The run as its index record has it, to be taken on by another workflow (its cancel)."""
        run = cls.__new__(cls)
        run.runner, run.flow, run.input, run.record, run.events = runner, flow, record.input, record, []
        run.traceparent = _traceparent(record.id, "", record.trace_id)
        run.span = NO_SPAN
        return run

    def begin_span(self, start: int, *, resumed_by: str | None = None) -> None:
        """The run's span, from the caller's request (its `traceparent`) to the run's end or parking: a
        parked run's span ends there, and an operator's retry opens another in the same trace."""
        tracing = self.runner.tracing
        if not tracing.enabled:
            return
        attributes: dict[str, str | int | bool] = {
            "charter.flow": self.flow.name,
            "charter.flow.run": self.record.id,
            "charter.flow.start_step": self.flow.steps[start].name if start < len(self.flow.steps) else "",
        }
        if resumed_by:
            attributes["charter.flow.resumed_by"] = resumed_by
        self.span = tracing.start(
            f"flow.run {self.flow.name}", parent=self.traceparent, attributes=attributes
        )
        if not self.record.trace_id:  # a run nobody's request started: its trace is the span's
            self.record.trace_id = self.span.traceparent.split("-")[1]

    def end_span(self) -> None:
        span, self.span = self.span, NO_SPAN
        state = self.record.state
        span.set("charter.flow.state", state.value)
        span.set("charter.flow.failed_step", self.record.failed_step)
        if state is not RunState.SUCCEEDED and state is not RunState.RUNNING:
            span.fail(f"run {state.value}")
        span.end()

    def child_span(self, name: str, attributes: Attributes) -> Span:
        """A span under the run's (or, for a run without one here, its trace)."""
        parent: Span | str = self.span if self.span is not NO_SPAN else self.traceparent
        return self.runner.tracing.start(name, parent=parent, attributes=attributes)

    async def settle(self) -> None:
        """Write the record and wait for it to be in the index (a run parking, resuming or
        ending): what an operator acts on, or a caller is answered, is what the index says."""
        self.record.updated_at = now()
        events, self.events = self.events, []
        await self.runner.writer.write(self.record, events)
        if self.record.state is not RunState.RUNNING:
            self.runner.settled(self.record)

    def progress(self) -> None:
        """Write the record soon: the run goes on meanwhile (the engine, not the index, is what a
        resumed run relies on)."""
        self.record.updated_at = now()
        events, self.events = self.events, []
        self.runner.writer.changed(self.record, events)

    async def execute(self, start: int) -> dict[str, Any]:
        self.begin_span(start)
        try:
            return await self._execute(start)
        except BaseException as exc:  # stopped: cancelled, or taken over by another execution
            self.span.fail(type(exc).__name__)
            raise
        finally:
            self.end_span()

    async def _execute(self, start: int) -> dict[str, Any]:
        self.runner.running(self.record)
        if start < len(self.record.steps):
            self.record.steps[start].state = "running"
        self.progress()
        index = start
        while index < len(self.flow.steps):
            ok = await self._run_step(index)
            if ok:
                index += 1
                continue
            if self.flow.compensate_on_failure:
                return await parking.compensate(self, RunState.COMPENSATED, index)
            action = await parking.park(self, index)
            if action == "cancel":
                return await parking.compensate(self, RunState.CANCELLED, index)
            self.record.state, self.record.failed_step = RunState.RUNNING, None
            self.runner.running(self.record)
            await self.settle()
        outcome = self.flow.result(msgspec.convert(self.input, FlowInput), dict(self.record.outputs))
        self.record.result = _outcome(outcome)
        self.record.state = RunState.SUCCEEDED
        self.events.append(("flow.run.succeeded", self.status_event()))
        await self.settle()
        self.count()
        return self.record.result

    async def _run_step(self, index: int) -> bool:
        step = self.flow.steps[index]
        state = self.record.steps[index]
        if state.state != "running":  # else marked by the write that recorded the step before
            state.state, state.error, state.ended_at = "running", None, None
            self.progress()
        for attempt in range(1, step.retry.attempts + 1):
            state.attempts += 1
            span = self.child_span(
                f"flow.step {step.name}",
                {
                    "charter.flow": self.flow.name,
                    "charter.flow.step": step.name,
                    "charter.flow.attempt": state.attempts,
                    "charter.flow.retry": attempt > 1,
                },
            )
            try:
                outcome = await attempt_step(
                    self.flow.name,
                    step.name,
                    state.attempts,
                    self.input,
                    dict(self.record.outputs),
                    # The step's calls descend from its span (the run's traceparent when tracing is off).
                    span.traceparent or self.traceparent,
                )
            except BaseException as exc:  # the run stopped mid-attempt
                span.fail(type(exc).__name__)
                span.end()
                raise
            _describe_attempt(span, outcome)
            if state.started_at is None:
                state.started_at = dt.datetime.fromisoformat(outcome["started_at"])
            state.ended_at = dt.datetime.fromisoformat(outcome["ended_at"])
            metrics = self.runner.metrics
            if metrics is not None:
                metrics.step_latency.labels(self.flow.name, step.name).observe(outcome["seconds"])
            if outcome["ok"]:
                self.succeeded(index, outcome)
                self.progress()
                return True
            state.error = outcome["error"]
            if not outcome["retryable"] or attempt == step.retry.attempts:
                break
            self.progress()
            if metrics is not None:
                metrics.retries.labels(self.flow.name, step.name).inc()
            await DBOS.sleep_async(step.retry.delay(attempt))
        state.state = "failed"
        return False

    def succeeded(self, index: int, outcome: dict[str, Any]) -> None:
        """Record a successful attempt of step `index`."""
        output = outcome["output"]
        state = self.record.steps[index]
        self.record.outputs[state.name] = output
        state.state, state.output_summary, state.error = "succeeded", summary(output), None
        self.record.keys.update(keys_from(self.flow, output))
        if index + 1 < len(self.record.steps):
            self.record.steps[index + 1].state = "running"
        self.events += [(topic, self.business_event(data)) for topic, data in outcome["events"]]

    def count(self) -> None:
        if self.runner.metrics is not None:
            self.runner.metrics.runs.labels(self.flow.name, self.record.state.value).inc()

    def status_event(self) -> dict[str, Any]:
        return {
            "run": self.record.id,
            "flow": self.flow.name,
            "state": self.record.state.value,
            "keys": dict(self.record.keys),
            "failed_step": self.record.failed_step,
            "trace_id": self.record.trace_id,
        }

    def business_event(self, data: Any) -> dict[str, Any]:
        return {"run": self.record.id, "flow": self.flow.name, "data": data}


def _describe_attempt(span: Span, outcome: dict[str, Any]) -> None:
    if not outcome["ok"]:
        error = outcome.get("error") or {}
        span.set("charter.flow.retryable", bool(outcome.get("retryable")))
        span.set("http.response.status_code", error.get("status"))
        span.fail(str(error.get("message") or "failed"))
    span.end()


def _traceparent(run_id: str, traceparent: str, trace_id: str) -> str:
    """The caller's traceparent, or one of the run's own in the trace it belongs to."""
    return traceparent or (
        f"00-{trace_id}-{uuid.uuid5(uuid.NAMESPACE_URL, run_id).hex[:16]}-01" if trace_id else ""
    )


def summary(value: Any) -> str | None:
    if value is None:
        return None
    text = _encoder.encode(value).decode()
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "body": outcome.body, "headers": [list(h) for h in outcome.headers]}


def business_keys(flow: Flow, flow_input: dict, outputs: Mapping[str, Any]) -> dict[str, str]:
    keys: dict[str, str] = {}
    params = flow_input.get("path_params") or {}
    body = flow_input.get("body")
    for name in flow.business_keys:
        if name in params:
            keys[name] = str(params[name])
        elif isinstance(body, dict) and isinstance(body.get(name), str | int):
            keys[name] = str(body[name])
    for output in outputs.values():
        keys.update(keys_from(flow, output))
    return keys


def keys_from(flow: Flow, output: Any) -> dict[str, str]:
    if not isinstance(output, dict):
        return {}
    return {name: str(output[name]) for name in flow.business_keys if isinstance(output.get(name), str | int)}
