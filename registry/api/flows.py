"""HTTP routes for flows: what is registered, the runs (the exception queue among them), and the
operator actions on a run.

A run's business data (its keys, input, answer, each step's error and output summary) is for the
flow's owning team, admins and the consumer that started the run (its client id, as the gateway
names consumers; that consumer reads its run without a registry scope: it polls the `Location` it
was answered). Other readers see that a run exists, its state, steps and timestamps.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import Body, PathParameter, QueryParameter
from sqlalchemy import select

from gateway.flows.runner import FlowRunner
from gateway.flows.runs import RunQuery, RunRecord, RunState, StepRun
from registry import flows
from registry.access import require_read
from registry.api.dependencies import Caller, Config, Session
from registry.api.discovery import Limit, Offset, Text, When, instant
from registry.api.problems import errors
from registry.api.schemas import NO_NUL
from registry.api.security import WRITE_SECURITY
from registry.db.models import Api, FlowRun, utcnow
from registry.errors import NotFound

RECENT_RUNS = 20
RunId = Annotated[str, PathParameter(description="run id", max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
StepName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]


class FlowStepOut(msgspec.Struct):
    name: str
    description: str
    attempts: int
    timeout_seconds: float | None
    compensated: bool  # the step declares a compensation


class BoundOperation(msgspec.Struct):
    api: str
    operation_id: str | None  # None: the API's default binding


class RunKeys(msgspec.Struct):
    """A run named by its business keys: which project is blocked, which invoice is pending."""

    id: str
    state: RunState
    created_at: dt.datetime
    keys: dict[str, str]  # empty for readers who may not see the flow's business data


class FlowOut(msgspec.Struct):
    name: str
    title: str
    description: str
    owner: str
    business_keys: list[str]
    sla_seconds: float
    steps: list[FlowStepOut]
    operations: list[BoundOperation]
    runs: dict[str, int]  # by state
    late: int  # unfinished runs older than `sla_seconds`
    late_runs: list[RunKeys]  # the newest of them, at most RECENT_RUNS
    failed_runs: list[RunKeys]  # the newest runs parked as failed, at most RECENT_RUNS


class FlowList(msgspec.Struct):
    items: list[FlowOut]


class RunOut(msgspec.Struct):
    id: str
    flow: str
    state: RunState
    late: bool
    keys: dict[str, str]  # empty for readers who may not see the run's data
    created_at: dt.datetime
    updated_at: dt.datetime
    steps: list[StepRun]  # without errors and output summaries for those readers
    failed_step: str | None
    trace_id: str
    replay_of: str | None
    operation: str | None
    input: dict[str, Any] | None = None  # on a single run only, and for those who may see its data
    result: dict[str, Any] | None = None


class RunPage(msgspec.Struct):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class ReplayIn(msgspec.Struct, forbid_unknown_fields=True):
    from_step: StepName


class ActionOut(msgspec.Struct):
    run: str  # the run acted on, or the new run of a replay
    action: str


def _runner(request: Request) -> FlowRunner:
    return request.app.state.flow_runner


def _run_keys(run: FlowRun, owned: bool) -> RunKeys:
    keys = {key.name: key.value for key in run.keys} if owned else {}
    return RunKeys(id=run.id, state=RunState(run.state), created_at=run.created_at, keys=keys)


def run_out(run: RunRecord, runner: FlowRunner, *, data: bool, detail: bool, now: dt.datetime) -> RunOut:
    """`data`: the reader may see the run's business data; `detail`: one run, with input and answer."""
    steps = (
        run.steps
        if data
        else [msgspec.structs.replace(step, error=None, output_summary=None) for step in run.steps]
    )
    return RunOut(
        id=run.id,
        flow=run.flow,
        state=run.state,
        late=flows.is_late(run, runner.flows.get(run.flow), now),
        keys=run.keys if data else {},
        created_at=run.created_at,
        updated_at=run.updated_at,
        steps=steps,
        failed_step=run.failed_step,
        trace_id=run.trace_id,
        replay_of=run.replay_of,
        operation=run.operation,
        input=run.input if data and detail else None,
        result=run.result if data and detail else None,
    )


class FlowController(Controller):
    path = "/api/v1/flows"
    tags = ["flows"]

    @get("", responses=errors(400, 401, 403), summary="Registered flows, their bindings and run counts")
    async def list_flows(
        self, request: Request, session: Session, principal: Caller, settings: Config
    ) -> FlowList:
        """Each flow with its steps, the operations bound to it, its runs by state, how many are late,
        and the newest late and failed runs (their business keys for the owning team and admins)."""
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        runner = _runner(request)
        bound: dict[str, list[BoundOperation]] = {}
        for name, adapter in await session.execute(
            select(Api.name, Api.adapter).where(Api.adapter.is_not(None))
        ):
            for operation_id, binding in _flow_bindings(adapter):
                bound.setdefault(str(binding), []).append(BoundOperation(api=name, operation_id=operation_id))
        await session.rollback()
        index = runner.index
        assert isinstance(index, flows.SqlRunIndex)
        counts = await index.counts()
        reader = await flows.RunReader.of(session, principal)
        now = utcnow()
        items = []
        for flow in sorted(runner.flows.values(), key=lambda f: f.name):
            due = now - dt.timedelta(seconds=flow.sla_seconds)
            late = await index.late(flow.name, due)
            owned = reader.owns(flow)
            late_runs = await index.recent(flow.name, flows.UNFINISHED, older_than=due, limit=RECENT_RUNS)
            failed_runs = await index.recent(flow.name, (RunState.FAILED,), limit=RECENT_RUNS)
            items.append(
                FlowOut(
                    name=flow.name,
                    title=flow.title,
                    description=flow.description,
                    owner=flow.owner,
                    business_keys=list(flow.business_keys),
                    sla_seconds=flow.sla_seconds,
                    steps=[
                        FlowStepOut(
                            name=step.name,
                            description=step.description,
                            attempts=step.retry.attempts,
                            timeout_seconds=step.retry.timeout_seconds,
                            compensated=step.compensate is not None,
                        )
                        for step in flow.steps
                    ],
                    operations=bound.get(flow.name, []),
                    runs=counts.get(flow.name, {}),
                    late=late,
                    late_runs=[_run_keys(run, owned) for run in late_runs],
                    failed_runs=[_run_keys(run, owned) for run in failed_runs],
                )
            )
        return FlowList(items=items)

    @get("/runs", responses=errors(400, 401, 403), summary="Search flow runs")
    async def list_runs(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        settings: Config,
        flow: Text = None,
        # `state` is litestar's reserved name for application state.
        run_state: Annotated[RunState | None, QueryParameter(name="state")] = None,
        key: Annotated[
            str | None,
            QueryParameter(max_length=500, pattern=NO_NUL, description="a business key value, exactly"),
        ] = None,
        key_name: Annotated[
            str | None,
            QueryParameter(
                max_length=100,
                pattern=NO_NUL,
                description="the business key `key` is a value of; alone: runs that have this key",
            ),
        ] = None,
        since: When = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> RunPage:
        """Runs, newest first: by flow, state (`failed` is the exception queue), business key value
        (exact, case-sensitive; `key_name` names the key), start. Keys, step errors and output summaries
        are shown in the runs of the caller's teams' flows (all, for admins) and the runs it started; a
        business key search covers only the caller's teams' flows (all, for admins)."""
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        runner = _runner(request)
        reader = await flows.RunReader.of(session, principal)
        visible = reader.searchable(runner.flows) if key is not None or key_name is not None else None
        query = RunQuery(
            flow=flow,
            state=run_state,
            key=key,
            key_name=key_name,
            flows=visible,
            since=instant(since, "since"),
            limit=limit,
            offset=offset,
        )
        runs, total = await runner.index.search(query)
        now = utcnow()
        return RunPage(
            items=[
                run_out(run, runner, data=reader.sees_data(run, runner.flows), detail=False, now=now)
                for run in runs
            ],
            total=total,
            limit=limit,
            offset=offset,
        )

    @get("/runs/{run_id:str}", responses=errors(400, 401, 403, 404), summary="One flow run, step by step")
    async def get_run(
        self, request: Request, session: Session, principal: Caller, settings: Config, run_id: RunId
    ) -> RunOut:
        """Steps with state, attempts, start and end, last error (the downstream problem), output summary;
        the request and the answer. The business data is for the flow's owning team, admins and the
        consumer that started the run, which needs no registry scope to read it; other readers see the
        run's state, steps and timestamps."""
        runner = _runner(request)
        run = await runner.index.get(run_id)
        reader = await flows.RunReader.of(session, principal)
        if run is None or not reader.started(run):
            require_read(principal, anonymous_reads=settings.anonymous_reads)
        if run is None:
            raise NotFound(f"flow run {run_id!r} does not exist")
        return run_out(run, runner, data=reader.sees_data(run, runner.flows), detail=True, now=utcnow())

    @post(
        "/runs/{run_id:str}/retry",
        status_code=202,
        responses=errors(400, 401, 403, 404, 409),
        summary="Resume a failed run at its failed step",
        security=WRITE_SECURITY,
    )
    async def retry(self, request: Request, session: Session, principal: Caller, run_id: RunId) -> ActionOut:
        """Steps that completed are not run again. For the flow's owning team or admins; audited."""
        await flows.operate(session, principal, _runner(request), run_id, "retry")
        return ActionOut(run=run_id, action="retry")

    @post(
        "/runs/{run_id:str}/replay",
        status_code=202,
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Start a new run from a step, with the recorded outputs before it",
        security=WRITE_SECURITY,
    )
    async def replay(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        run_id: RunId,
        data: Annotated[ReplayIn, Body()],
    ) -> ActionOut:
        """For the flow's owning team or admins; audited. Answers the new run's id."""
        new_run = await flows.operate(
            session, principal, _runner(request), run_id, "replay", from_step=data.from_step
        )
        return ActionOut(run=new_run, action="replay")

    @post(
        "/runs/{run_id:str}/cancel",
        status_code=202,
        responses=errors(400, 401, 403, 404, 409),
        summary="Cancel a running or failed run, compensating its completed steps in reverse",
        security=WRITE_SECURITY,
    )
    async def cancel(self, request: Request, session: Session, principal: Caller, run_id: RunId) -> ActionOut:
        """A failed (parked) run is compensated at once; a running one stops at its next step
        boundary (the attempt in flight completes) first. The run ends `compensated`, or
        `cancelled` when no completed step declares a compensation. For the flow's owning team or
        admins; audited."""
        await flows.operate(session, principal, _runner(request), run_id, "cancel")
        return ActionOut(run=run_id, action="cancel")


def _flow_bindings(adapter: Any) -> list[tuple[str | None, Any]]:
    if not isinstance(adapter, dict):
        return []
    found: list[tuple[str | None, Any]] = []
    if adapter.get("kind") == "flow":
        found.append((None, adapter.get("flow")))
    for operation_id, single in (adapter.get("operations") or {}).items():
        if isinstance(single, dict) and single.get("kind") == "flow":
            found.append((operation_id, single.get("flow")))
    return found
