"""The cost of durability: a four-step flow on DBOS against the same four steps called directly.

Run: .venv/bin/python -m bench.flows [--runs 300] [--concurrency 20] [--database sqlite|postgres]
The runner is the one `charter serve` uses (DBOS system database, the registry's run index written at
every transition, events through the outbox); the steps are in-process async functions that return at
once, so the difference is what durability costs. Sequential runs give the latency (p50/p99 per run
and the added cost per step); `--concurrency` runs at once give the throughput in runs/s.
PostgreSQL: a database `charter_bench_flows` on 127.0.0.1:5432 is dropped and created.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from gateway.flows import Flow, FlowInput, RetryPolicy, Step, StepContext
from gateway.flows.runner import FlowRunner
from gateway.flows.runs import RunState
from registry.db.engine import create_engine, migrate, session_factory
from registry.flows import SqlRunIndex, flow_system_database

PG = "postgresql://postgres@127.0.0.1:5432"


async def step(context: StepContext) -> dict:
    return {"step": context.step, "n": len(context.outputs)}


STEPS = tuple(Step(f"s{i}", step, retry=RetryPolicy(attempts=1)) for i in range(4))
FLOW = Flow(name="bench", owner="bench", steps=STEPS)


class NoClient:
    pass


async def direct() -> None:
    outputs: dict = {}
    for s in STEPS:
        context = StepContext(
            run_id="direct",
            flow="bench",
            step=s.name,
            attempt=1,
            input=FlowInput(),
            outputs=outputs,
            client=NoClient(),
            idempotency_key="k",
            traceparent="",  # type: ignore[arg-type]
        )
        outputs[s.name] = await s.run(context)


async def one_run(runner: FlowRunner) -> float:
    started = time.perf_counter()
    run_id = await runner.start_run("bench", FlowInput(body={"x": 1}))
    record = await runner.wait(run_id, 30)
    assert record is not None and record.state is RunState.SUCCEEDED, record
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def main(runs: int, concurrency: int, database: str) -> None:
    if database == "postgres":
        admin = await asyncpg.connect(f"{PG}/test")
        await admin.execute("DROP DATABASE IF EXISTS charter_bench_flows WITH (FORCE)")
        await admin.execute("CREATE DATABASE charter_bench_flows")
        await admin.close()
        url = "postgresql+asyncpg://postgres@127.0.0.1:5432/charter_bench_flows"
    else:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp())}/charter.db"
    engine = create_engine(url)
    await migrate(engine)
    sessionmaker = session_factory(engine)
    runner = FlowRunner(
        {"bench": FLOW},
        index=SqlRunIndex(sessionmaker),
        client_factory=lambda *args: NoClient(),  # type: ignore[arg-type,return-value]
        system_database_url=flow_system_database(url),
    )
    await runner.start()
    try:
        for _ in range(10):
            await one_run(runner)
        plain = []
        for _ in range(runs):
            started = time.perf_counter()
            await direct()
            plain.append(time.perf_counter() - started)
        durable = [await one_run(runner) for _ in range(runs)]
        started = time.perf_counter()
        pending = runs
        while pending > 0:
            batch = min(concurrency, pending)
            await asyncio.gather(*(one_run(runner) for _ in range(batch)))
            pending -= batch
        rate = runs / (time.perf_counter() - started)
    finally:
        await runner.stop()
        await engine.dispose()
    added = (statistics.median(durable) - statistics.median(plain)) * 1000 / len(STEPS)
    print(
        f"| {database} | {runs} | {pct(plain, 0.5):.3f} | {pct(durable, 0.5):.1f} | {pct(durable, 0.99):.1f} "
        f"| {added:.1f} | {rate:.0f} |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    print("| database | runs | direct p50 ms | flow p50 ms | flow p99 ms | added per step ms | runs/s |")
    asyncio.run(main(args.runs, args.concurrency, args.database))
