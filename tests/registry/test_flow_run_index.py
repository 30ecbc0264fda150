"""The run index on the registry's database: business keys as runs gain and change them, written
again by another process (a recovered run), and status events through the outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from gateway.flows.runs import RunQuery, RunRecord, RunState, RunWrite
from registry.db.engine import create_engine, migrate, session_factory
from registry.db.models import OutboxEvent
from registry.flows import SqlRunIndex

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def run(keys: dict[str, str], state: RunState = RunState.RUNNING) -> RunRecord:
    return RunRecord(
        id="run-1",
        flow="onboarding",
        state=state,
        keys=keys,
        created_at=NOW,
        updated_at=NOW,
        steps=[],
        input={},
    )


async def found(index: SqlRunIndex, value: str) -> list[str]:
    return [r.id for r in (await index.search(RunQuery(key=value)))[0]]


async def test_business_keys_follow_the_run_across_writes_and_processes(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    first = SqlRunIndex(sessions)
    try:
        await first.save_many([RunWrite(run({}))])
        await first.save_many([RunWrite(run({"opportunityId": "opp-1"}))])
        assert await found(first, "opp-1") == ["run-1"]
        # A later step's output changes one key and adds another.
        await first.save_many([RunWrite(run({"opportunityId": "opp-2", "projectId": "p-7"}))])
        assert await found(first, "opp-1") == []
        assert await found(first, "opp-2") == await found(first, "p-7") == ["run-1"]
        # Another process resumes the run and writes the same keys again, knowing none of them.
        second = SqlRunIndex(sessions)
        try:
            done = run({"opportunityId": "opp-2", "projectId": "p-7"}, RunState.SUCCEEDED)
            await second.save_many([RunWrite(done, [("flow.run.succeeded", {"run": "run-1"})])])
        finally:
            await second.close()
        assert await found(first, "p-7") == ["run-1"]
        stored = await first.get("run-1")
        assert stored is not None and stored.state is RunState.SUCCEEDED
        async with sessions() as session:
            topics = (await session.scalars(select(OutboxEvent.topic))).all()
            assert topics == ["flow.run.succeeded"]
            assert await session.scalar(select(func.count()).select_from(OutboxEvent)) == 1
    finally:
        await first.close()
        await engine.dispose()
