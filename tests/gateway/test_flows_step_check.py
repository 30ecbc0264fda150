"""Charter's one-statement check before a DBOS step answers what DBOS's own check answers: the
recorded outcome, nothing, or DBOS's errors for a cancelled run, a missing one, a step of another
name. Against DBOS's method on the same PostgreSQL rows."""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from dbos import DBOS
from dbos._dbos import _get_dbos_instance
from dbos._error import DBOSUnexpectedStepError, DBOSWorkflowCancelledError

from gateway.flows import Flow, FlowInput, RetryPolicy, Step, StepContext, step_check
from gateway.flows.runner import FlowRunner
from gateway.flows.runs import RunState
from tests.gateway.flow_runners import postgres_url, running

HELD = asyncio.Event()


async def echo(context: StepContext) -> dict:
    if context.input.body.get("hold"):
        await HELD.wait()
    return {"step": context.step}


ONCE = RetryPolicy(attempts=1, timeout_seconds=None)
STEPS = tuple(Step(name, echo, retry=ONCE) for name in ("one", "two"))
FLOW = Flow(name="echo", owner="platform", steps=STEPS)


def test_the_patch_is_for_the_installed_dbos() -> None:
    # The patch replaces a DBOS internal; a DBOS upgrade must fail here until it is looked at again
    # (and then DBOS's own check runs: `install` patches only the version it was written for).
    assert importlib.metadata.version("dbos") == step_check.DBOS_VERSION
    assert step_check.applies()


@pytest.fixture
async def runner(postgres_database: str) -> AsyncIterator[FlowRunner]:
    async with running({"echo": FLOW}, await postgres_url(postgres_database)) as (runner, _):
        try:
            yield runner
        finally:
            HELD.set()


async def outcome(check: Callable[..., Any], *args: Any) -> Any:
    try:
        return await asyncio.to_thread(check, _get_dbos_instance()._sys_db, *args)
    except (AssertionError, DBOSWorkflowCancelledError, DBOSUnexpectedStepError) as exc:
        return type(exc).__name__


async def both(*args: Any) -> Any:
    ours = await outcome(step_check._check_operation_execution, *args)
    theirs = await outcome(step_check._original, *args)
    assert ours == theirs
    return ours


@pytest.mark.postgres
async def test_the_check_answers_as_dbos_does(runner: FlowRunner) -> None:
    assert step_check.SystemDatabase.check_operation_execution is step_check._check_operation_execution
    run_id = await runner.start_run("echo", FlowInput(body={}))
    record = await runner.wait(run_id, 30)
    assert record is not None and record.state is RunState.SUCCEEDED
    steps = await DBOS.list_workflow_steps_async(run_id)
    assert len(steps) == 2
    for recorded in steps:
        answer = await both(run_id, recorded["function_id"], recorded["function_name"])
        assert answer["output"] is not None and answer["error"] is None
        assert await both(run_id, recorded["function_id"], "another_step") == "DBOSUnexpectedStepError"
    assert await both(run_id, 99, "charter_flow_attempt") is None
    assert await both("no-such-run", 0, "charter_flow_attempt") == "AssertionError"

    held = await runner.start_run("echo", FlowInput(body={"hold": True}))
    while (current := runner.current(held)) is None or current.steps[0].state != "running":
        await asyncio.sleep(0.02)
    await DBOS.cancel_workflow_async(held)
    assert await both(held, 0, "charter_flow_attempt") == "DBOSWorkflowCancelledError"


def test_dbos_own_check_is_put_back_when_the_setting_is_off() -> None:
    try:
        assert step_check.install(False) is False
        assert step_check.SystemDatabase.check_operation_execution is step_check._original
    finally:
        step_check.install(True)
