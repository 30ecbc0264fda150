"""The operations console: flows with their runs by state, the exception queue (failed runs, newest
first), a run's step timeline, and the operator's retry and cancel buttons (CSRF-checked forms that
go through the same rules as the REST API: the flow's owning team or admins, audited)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from litestar import Controller, Request, Response, get, post
from litestar.params import PathParameter, QueryParameter
from litestar.response import Redirect, Template

from gateway.flows.runner import FlowRunner
from gateway.flows.runs import FINISHED, RunQuery, RunState
from registry import flows
from registry.access import ADMIN, WRITE
from registry.api.dependencies import Session
from registry.db.models import utcnow
from registry.web.access import page_principal, require_page_read
from registry.web.pages import Pager, page

QUEUE_PAGE = 50
RunId = Annotated[str, PathParameter(max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]
Text = Annotated[str | None, QueryParameter(max_length=500)]


class FlowConsoleController(Controller):
    path = "/flows"
    include_in_schema = False

    @get("/", name="portal:flows")
    async def console(
        self,
        request: Request,
        session: Session,
        flow: Text = None,
        key: Text = None,
        page_number: Annotated[int, QueryParameter(name="page", ge=1, le=20_000)] = 1,
    ) -> Template:
        principal = await require_page_read(request, catalog=False)
        runner: FlowRunner = request.app.state.flow_runner
        reader = await flows.RunReader.of(session, principal)
        index = runner.index
        assert isinstance(index, flows.SqlRunIndex)
        counts = await index.counts()
        now = utcnow()
        rows = []
        for declared in sorted(runner.flows.values(), key=lambda f: f.name):
            late = await index.late(declared.name, now - dt.timedelta(seconds=declared.sla_seconds))
            rows.append((declared, counts.get(declared.name, {}), late))
        chosen = {k: v.strip() for k, v in (("flow", flow), ("key", key)) if v and v.strip()}
        query = RunQuery(
            flow=chosen.get("flow"),
            state=RunState.FAILED,
            key=chosen.get("key"),
            flows=reader.searchable(runner.flows) if "key" in chosen else None,
            limit=QUEUE_PAGE,
            offset=(page_number - 1) * QUEUE_PAGE,
        )
        found, total = await index.search(query)
        failed = [reader.shown(run, runner.flows) for run in found]
        pages = max(1, -(-total // QUEUE_PAGE))

        def link(number: int) -> str:
            return "/flows?" + urlencode({**chosen, "page": number})

        return page(
            request,
            "flows.html",
            principal,
            flows=rows,
            states=[s.value for s in RunState],
            failed=failed,
            total=total,
            chosen=chosen,
            now=now,
            pager=Pager(
                number=page_number,
                pages=pages,
                previous=link(page_number - 1) if page_number > 1 else None,
                next=link(page_number + 1) if page_number < pages else None,
            ),
        )

    @get("/runs/{run_id:str}", name="portal:flow-run")
    async def run_page(self, request: Request, session: Session, run_id: RunId) -> Template:
        principal = await require_page_read(request, catalog=False)
        runner: FlowRunner = request.app.state.flow_runner
        run = await flows.get_run(runner, run_id)
        declared = runner.flows.get(run.flow)
        reader = await flows.RunReader.of(session, principal)
        sees_data = reader.sees_data(run, runner.flows)
        run = reader.shown(run, runner.flows)
        # The buttons show where the action would be allowed; the action checks again (and audits).
        owns = declared is not None and reader.owns(declared)
        may_operate = owns and principal is not None and bool({ADMIN, WRITE} & principal.scopes)
        timeline = [
            (
                step,
                (step.ended_at - step.started_at).total_seconds()
                if step.started_at and step.ended_at
                else None,
            )
            for step in run.steps
        ]
        return page(
            request,
            "flow_run.html",
            principal,
            run=run,
            flow=declared,
            timeline=timeline,
            late=flows.is_late(run, declared),
            sees_data=sees_data,
            may_operate=may_operate and run.state is RunState.FAILED,
            may_replay=may_operate and run.state is not RunState.RUNNING and declared is not None,
            refresh=run.state is RunState.RUNNING or _awaiting_action(request, run.updated_at),
            notice=_notice(request.query_params.get("done", ""), run.state),
        )

    @post("/runs/{run_id:str}/retry", name="portal:flow-run-retry", status_code=303)
    async def retry(self, request: Request, session: Session, run_id: RunId) -> Response[Any]:
        return await self._operate(request, session, run_id, "retry")

    @post("/runs/{run_id:str}/cancel", name="portal:flow-run-cancel", status_code=303)
    async def cancel(self, request: Request, session: Session, run_id: RunId) -> Response[Any]:
        return await self._operate(request, session, run_id, "cancel")

    @post("/runs/{run_id:str}/replay", name="portal:flow-run-replay", status_code=303)
    async def replay(self, request: Request, session: Session, run_id: RunId) -> Response[Any]:
        form = await request.form()
        from_step = str(form.get("from_step") or "")[:200]
        principal = await page_principal(request)
        new_run = await flows.operate(
            session, principal, request.app.state.flow_runner, run_id, "replay", from_step=from_step
        )
        return Redirect(f"/flows/runs/{quote(new_run, safe='')}", status_code=303)

    async def _operate(self, request: Request, session: Session, run_id: str, action: str) -> Response[Any]:
        principal = await page_principal(request)
        await flows.operate(session, principal, request.app.state.flow_runner, run_id, action)
        acted_at = f"{utcnow().timestamp():.3f}"
        return Redirect(f"/flows/runs/{run_id}?done={action}&at={acted_at}", status_code=303)


def _notice(action: str, state: RunState) -> str | None:
    if action not in ("retry", "cancel"):
        return None
    if state in FINISHED:
        return f"The run has ended: {state.value}."
    return "Retry started." if action == "retry" else "Cancellation started."


# After a retry or cancel the run changes when its workflow takes the signal: the page watches it
# that long, not forever.
AWAIT_ACTION_SECONDS = 30


def _awaiting_action(request: Request, updated_at: dt.datetime) -> bool:
    """The page was reached from an action the run has not shown yet (it has not changed since)."""
    try:
        acted_at = float(request.query_params.get("at", ""))
    except ValueError:
        return False
    now = utcnow().timestamp()
    return updated_at.timestamp() < acted_at and now - acted_at < AWAIT_ACTION_SECONDS
