"""The runner: flows executed as DBOS workflows, each step attempt a recorded DBOS step.

One DBOS workflow (`charter_flow_run`) runs any flow: it walks the flow's steps from a start index,
and makes each attempt of a step a DBOS step, so a completed attempt is never made again after a
crash and a recovered run resumes at its last completed step. Backoff between attempts is a
durable DBOS sleep. A step out of attempts parks the run (`failed`): the workflow then waits for an
operator's message (`retry` resumes at the failed step, `cancel` compensates the completed steps
in reverse). A replay is a new run that starts at a named step with the recorded outputs before it.

DBOS is a process-wide singleton: one runner is active per process (`start` / `stop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
from dbos import DBOS, SetWorkflowID

from gateway.flows.declaration import Flow, FlowInput, Outcome, StepContext, StepFailed, SystemClient
from gateway.flows.metrics import FlowMetrics
from gateway.flows.runs import FINISHED, RunIndex, RunRecord, RunState, StepRun

log = logging.getLogger("charter.flows")
OPERATOR_TOPIC = "charter-operator"
_PARK_WAIT_SECONDS = 24 * 3600.0
_SUMMARY_CHARS = 200
_INDEXED_WITHIN_SECONDS = 5.0  # a run started here writes its first record at once
_POLL_SECONDS = 0.25
_encoder = msgspec.json.Encoder()

ClientFactory = Callable[[Flow, str, str, str], SystemClient]  # flow, run id, step, traceparent
# Why an event breaks the contracts registered for its topic (none: it may be sent).
EventCheck = Callable[[str, Any], Sequence[str]]
# An event leaves through an outbox row and a broker message: a step does not send megabytes.
MAX_EVENT_BYTES = 256 * 1024


class RunConflict(Exception):
    """An operator action that does not fit the run's state (retry of a running run)."""


class UnknownRun(Exception):
    pass


class UnknownFlow(Exception):
    pass


class FlowRunner:
    def __init__(
        self,
        flows: Mapping[str, Flow],
        *,
        index: RunIndex,
        client_factory: ClientFactory,
        system_database_url: str,
        app_name: str = "charter-flows",
        executor_id: str = "local",
        metrics: FlowMetrics | None = None,
        event_check: EventCheck | None = None,
    ) -> None:
        self.flows = dict(flows)
        self.index = index
        self.client_factory = client_factory
        self.system_database_url = system_database_url
        self.app_name = app_name
        self.executor_id = executor_id
        self.metrics = metrics
        self.event_check = event_check
        self._settled: dict[str, asyncio.Event] = {}

    # Lifecycle: DBOS recovers this process's pending runs on launch, on the running event loop.
    async def start(self) -> None:
        global _active
        if _active is not None:
            raise RuntimeError("a flow runner is already active in this process")
        _active = self
        DBOS(
            config={
                "name": self.app_name,
                "system_database_url": self.system_database_url,
                "log_level": "WARNING",
                "executor_id": self.executor_id,
                # Every deployment runs the flows it has: recovery must not skip runs started by
                # an earlier build of the same flows.
                "application_version": "charter",
            }
        )
        DBOS.launch()

    async def recover_executor(self, executor_id: str) -> int:
        """Queue the unfinished runs of another executor, known to be dead, for a live replica to
        resume (whichever dequeues each first); the number queued.

        DBOS's startup recovery covers only this executor's own runs, and its recovery of other
        executors' runs is `DBOS._recover_pending_workflows` alone (no public equivalent in 3.4;
        tests/gateway/test_flows_takeover.py fails if it changes). It re-enqueues each run only while
        the run is still pending under `executor_id`, and one executor dequeues it, so two survivors
        recovering the same dead executor resume each run once."""
        handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [executor_id])
        return len(handles)

    async def stop(self) -> None:
        global _active
        if _active is not self:
            return
        await asyncio.to_thread(DBOS.destroy)
        _active = None

    # Starting runs.
    async def start_run(
        self,
        flow_name: str,
        flow_input: FlowInput,
        *,
        run_id: str | None = None,
        traceparent: str = "",
        request_hash: str | None = None,
    ) -> str:
        flow = self._flow(flow_name)
        run_id = run_id or str(uuid.uuid4())
        meta = {"traceparent": traceparent, "request_hash": request_hash, "created_at": _now().isoformat()}
        with SetWorkflowID(run_id):
            await DBOS.start_workflow_async(
                charter_flow_run, flow.name, msgspec.to_builtins(flow_input), 0, {}, meta
            )
        return run_id

    async def replay(self, run_id: str, from_step: str) -> str:
        source = await self._record(run_id)
        flow = self._flow(source.flow)
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
            "created_at": _now().isoformat(),
            "replay_of": run_id,
            "trace_id": source.trace_id,
        }
        with SetWorkflowID(new_id):
            await DBOS.start_workflow_async(charter_flow_run, flow.name, source.input, start, prior, meta)
        await self.wait(new_id, 0)
        return new_id

    async def retry(self, run_id: str) -> None:
        await self._signal(run_id, "retry")

    async def cancel(self, run_id: str) -> None:
        await self._signal(run_id, "cancel")

    async def _signal(self, run_id: str, action: str) -> None:
        record = await self._record(run_id)
        if record.state is not RunState.FAILED:
            raise RunConflict(f"run {run_id} is {record.state.value}; only a failed run can be {action}ed")
        await DBOS.send_async(run_id, action, OPERATOR_TOPIC)

    async def wait(self, run_id: str, timeout: float) -> RunRecord | None:
        """The run's record once it has finished or parked; when `timeout` passes first, the record
        as it stands (waiting on past `timeout` only for the run to be indexed at all).

        A run executing in this process wakes its waiters when it settles; one that another replica
        executes is polled for."""
        deadline = time.monotonic() + timeout
        indexed_deadline = deadline + _INDEXED_WITHIN_SECONDS
        settled = self._settled.setdefault(run_id, asyncio.Event())
        try:
            while True:
                record = await self.index.get(run_id)
                if record is not None and (record.state in FINISHED or record.state is RunState.FAILED):
                    return record
                now = time.monotonic()
                if (record is not None and now >= deadline) or now >= indexed_deadline:
                    return record
                left = (deadline if record is not None else indexed_deadline) - now
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(settled.wait(), min(left, _POLL_SECONDS))
                settled.clear()
        finally:
            if not settled.is_set():
                self._settled.pop(run_id, None)

    def _settle(self, run_id: str) -> None:
        waiting = self._settled.pop(run_id, None)
        if waiting is not None:
            waiting.set()

    async def _record(self, run_id: str) -> RunRecord:
        record = await self.index.get(run_id)
        if record is None:
            raise UnknownRun(run_id)
        return record

    def _flow(self, name: str) -> Flow:
        flow = self.flows.get(name)
        if flow is None:
            raise UnknownFlow(name)
        return flow


_active: FlowRunner | None = None


def _runner() -> FlowRunner:
    if _active is None:
        raise RuntimeError("no flow runner is active")
    return _active


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def step_idempotency_key(run_id: str, step: str) -> str:
    return hashlib.sha256(f"{run_id}\x00{step}".encode()).hexdigest()[:32]


def _summary(value: Any) -> str | None:
    if value is None:
        return None
    text = _encoder.encode(value).decode()
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 1] + "…"


@DBOS.step(name="charter_flow_attempt")
async def _attempt(
    flow_name: str, step_name: str, attempt: int, flow_input: dict, outputs: dict, traceparent: str
) -> dict[str, Any]:
    """One attempt of one step; its outcome is a value (not an exception) so DBOS records it."""
    runner = _runner()
    flow = runner._flow(flow_name)
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
    started = _now()
    clock = time.perf_counter()
    try:
        output = await asyncio.wait_for(step.run(context), step.retry.timeout_seconds)
        msgspec.json.encode(output)  # an output must be recordable
        refusal = _refused_events(runner, context.events)
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
    return {
        "ok": True,
        "output": output,
        "events": [[topic, data] for topic, data in context.events],
        "started_at": started.isoformat(),
        "ended_at": _now().isoformat(),
        "seconds": time.perf_counter() - clock,
    }


def _refused_events(runner: FlowRunner, events: list[tuple[str, Any]]) -> dict[str, Any] | None:
    """The error of a step whose events break their contracts, or None when all may be sent.

    A contract-breaking event fails its step for good (retrying the same code emits the same event)
    and parks the run, rather than being dropped or sent: consumers rely on the contract, and a
    dropped `project.created` would silently lose business, while a parked run is visible in the
    exception queue, names the violations, and is retried once the flow or the contract is fixed.
    """
    for topic, data in events:
        size = len(_encoder.encode(data))
        if size > MAX_EVENT_BYTES:
            return {"message": f"event {topic} is {size} bytes; at most {MAX_EVENT_BYTES} may be sent"}
        violations = list(runner.event_check(topic, data)) if runner.event_check is not None else []
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
        "ended_at": _now().isoformat(),
        "seconds": time.perf_counter() - clock,
    }


@DBOS.step(name="charter_flow_compensate")
async def _compensate(
    flow_name: str, step_name: str, flow_input: dict, outputs: dict, traceparent: str
) -> dict:
    runner = _runner()
    flow = runner._flow(flow_name)
    step = flow.step(step_name)
    run_id = DBOS.workflow_id or ""
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
        refusal = _refused_events(runner, context.events)
    except Exception as exc:
        return {"ok": False, "error": {"message": f"{type(exc).__name__}: {exc}"}}
    if refusal is not None:
        return {"ok": False, "error": refusal}
    return {"ok": True, "events": [[topic, data] for topic, data in context.events]}


@DBOS.workflow(name="charter_flow_run")
async def charter_flow_run(
    flow_name: str, flow_input: dict, start: int, prior_outputs: dict, meta: dict
) -> dict[str, Any]:
    runner = _runner()
    flow = runner._flow(flow_name)
    run = _Run(runner, flow, DBOS.workflow_id or "", flow_input, prior_outputs, meta, start)
    return await run.execute(start)


class _Run:
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
        self.traceparent = traceparent or (
            f"00-{trace_id}-{uuid.uuid5(uuid.NAMESPACE_URL, run_id).hex[:16]}-01" if trace_id else ""
        )
        steps = [StepRun(name=step.name) for step in flow.steps]
        for index in range(start):
            steps[index].state = "skipped" if flow.steps[index].name not in prior_outputs else "succeeded"
            steps[index].output_summary = _summary(prior_outputs.get(flow.steps[index].name))
        self.record = RunRecord(
            id=run_id,
            flow=flow.name,
            state=RunState.RUNNING,
            keys=_keys(flow, flow_input, prior_outputs),
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
        self._dirty = False
        # Events leave in the transaction that records what they announce (at least once: a run
        # recovered after a crash records, and announces, its replayed steps again).
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._writing: set[asyncio.Task[None]] = set()
        self._write_lock = asyncio.Lock()

    async def save(self) -> None:
        """Write the record now (a run starting, parking, resuming or ending)."""
        self.record.updated_at = _now()
        self._dirty = True
        await self._flush()
        if self.record.state in FINISHED or self.record.state is RunState.FAILED:
            self.runner._settle(self.record.id)

    def progress(self) -> None:
        """Write the record soon: a step's progress. Writes in flight are folded into one, so the
        index costs the run two synchronous writes, not two per step; the engine, not the index,
        is what a resumed run relies on."""
        self.record.updated_at = _now()
        self._dirty = True
        # One task per change: a task that finds nothing left to write (an earlier one took its
        # change along) ends at once; a writer between its last check and its end misses nothing.
        task = asyncio.create_task(self._flush_in_background())
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _flush_in_background(self) -> None:
        try:
            await self._flush()
        except Exception:  # the next write carries the change; the run goes on
            log.exception("could not index the progress of run %s", self.record.id)

    async def _flush(self) -> None:
        async with self._write_lock:
            while self._dirty:
                self._dirty = False
                snapshot = msgspec.json.decode(msgspec.json.encode(self.record), type=RunRecord)
                events, self._events = self._events, []
                await self.runner.index.save(snapshot, events)

    async def execute(self, start: int) -> dict[str, Any]:
        if start < len(self.record.steps):
            self.record.steps[start].state = "running"
        await self.save()
        index = start
        while index < len(self.flow.steps):
            ok = await self._run_step(index)
            if ok:
                index += 1
                continue
            if self.flow.compensate_on_failure:
                return await self._compensate(RunState.COMPENSATED, index)
            action = await self._park(index)
            if action == "cancel":
                return await self._compensate(RunState.CANCELLED, index)
            self.record.state, self.record.failed_step = RunState.RUNNING, None
            await self.save()
        outcome = self.flow.result(msgspec.convert(self.input, FlowInput), dict(self.record.outputs))
        self.record.result = _outcome(outcome)
        self.record.state = RunState.SUCCEEDED
        self._events.append(("flow.run.succeeded", self._status_event()))
        await self.save()
        self._count()
        return self.record.result

    async def _run_step(self, index: int) -> bool:
        step = self.flow.steps[index]
        state = self.record.steps[index]
        if state.state != "running":  # else marked by the save that recorded the step before
            state.state, state.error, state.ended_at = "running", None, None
            self.progress()
        for attempt in range(1, step.retry.attempts + 1):
            state.attempts += 1
            outcome = await _attempt(
                self.flow.name,
                step.name,
                state.attempts,
                self.input,
                dict(self.record.outputs),
                self.traceparent,
            )
            if state.started_at is None:
                state.started_at = dt.datetime.fromisoformat(outcome["started_at"])
            state.ended_at = dt.datetime.fromisoformat(outcome["ended_at"])
            metrics = self.runner.metrics
            if metrics is not None:
                metrics.step_latency.labels(self.flow.name, step.name).observe(outcome["seconds"])
            if outcome["ok"]:
                output = outcome["output"]
                self.record.outputs[step.name] = output
                state.state, state.output_summary, state.error = "succeeded", _summary(output), None
                self.record.keys.update(_keys_from(self.flow, output))
                if index + 1 < len(self.record.steps):
                    self.record.steps[index + 1].state = "running"
                self._events += [(topic, self._business_event(data)) for topic, data in outcome["events"]]
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

    async def _park(self, index: int) -> str:
        self.record.state = RunState.FAILED
        self.record.failed_step = self.flow.steps[index].name
        self._events.append(("flow.run.failed", self._status_event()))
        await self.save()
        self._count()
        if self.runner.metrics is not None:
            self.runner.metrics.parked.labels(self.flow.name).inc()
        while True:
            message = await DBOS.recv_async(OPERATOR_TOPIC, timeout_seconds=_PARK_WAIT_SECONDS)
            if message in ("retry", "cancel"):
                return str(message)

    async def _compensate(self, final: RunState, failed_index: int) -> dict[str, Any]:
        self.record.failed_step = self.flow.steps[failed_index].name
        for index in range(failed_index - 1, -1, -1):
            step, state = self.flow.steps[index], self.record.steps[index]
            if step.compensate is None or state.state != "succeeded":
                continue
            outcome = await _compensate(
                self.flow.name, step.name, self.input, dict(self.record.outputs), self.traceparent
            )
            if outcome["ok"]:
                state.state = "compensated"
                self._events += [(topic, self._business_event(data)) for topic, data in outcome["events"]]
            else:
                state.error = outcome["error"]
        self.record.state = final
        self._events.append(("flow.run.failed", self._status_event()))
        await self.save()
        self._count()
        return {"status": 409, "body": None, "headers": []}

    def _count(self) -> None:
        if self.runner.metrics is not None:
            self.runner.metrics.runs.labels(self.flow.name, self.record.state.value).inc()

    def _status_event(self) -> dict[str, Any]:
        return {
            "run": self.record.id,
            "flow": self.flow.name,
            "state": self.record.state.value,
            "keys": dict(self.record.keys),
            "failed_step": self.record.failed_step,
            "trace_id": self.record.trace_id,
        }

    def _business_event(self, data: Any) -> dict[str, Any]:
        return {"run": self.record.id, "flow": self.flow.name, "data": data}


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "body": outcome.body, "headers": [list(h) for h in outcome.headers]}


def _keys(flow: Flow, flow_input: dict, outputs: Mapping[str, Any]) -> dict[str, str]:
    keys: dict[str, str] = {}
    params = flow_input.get("path_params") or {}
    body = flow_input.get("body")
    for name in flow.business_keys:
        if name in params:
            keys[name] = str(params[name])
        elif isinstance(body, dict) and isinstance(body.get(name), str | int):
            keys[name] = str(body[name])
    for output in outputs.values():
        keys.update(_keys_from(flow, output))
    return keys


def _keys_from(flow: Flow, output: Any) -> dict[str, str]:
    if not isinstance(output, dict):
        return {}
    return {name: str(output[name]) for name in flow.business_keys if isinstance(output.get(name), str | int)}
