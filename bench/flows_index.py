"""The run-index write a settling flow run's caller waits for, alone: one run per batch with its
status event (what a sequential caller waits for), CPU per write of this process and the p50.

Run: .venv/bin/python -m bench.flows_index [--writes 1000] [--keys 0]
PostgreSQL: a database `<$CHARTER_BENCH_DATABASE or charter_bench_flows>_index` on 127.0.0.1:5432 is
dropped and created. The registry's commits are synchronous, so the wall time is mostly the commit's
WAL flush (the one a flow run's answer waits for); the CPU time is what Charter spends on the write.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import time
import uuid

import asyncpg

from bench.flows import DATABASE, PG
from gateway.flows.runs import RunRecord, RunState, RunWrite, StepRun
from registry.db.engine import create_engine, migrate, session_factory
from registry.flows import SqlRunIndex


def settled(keys: int) -> RunWrite:
    now = dt.datetime.now(dt.UTC)
    record = RunRecord(
        id=str(uuid.uuid4()),
        flow="bench",
        state=RunState.SUCCEEDED,
        keys={f"key{i}": f"value{i}" for i in range(keys)},
        created_at=now,
        updated_at=now,
        steps=[
            StepRun(name=f"s{i}", state="succeeded", attempts=1, started_at=now, ended_at=now)
            for i in range(4)
        ],
        input={"body": {"x": 1}},
        outputs={f"s{i}": {"step": f"s{i}", "n": i} for i in range(4)},
        result={"status": 200, "body": {"ok": True}, "headers": []},
    )
    return RunWrite(
        record, [("flow.run.succeeded", {"run": record.id, "flow": "bench", "state": "succeeded"})]
    )


async def main(writes: int, keys: int) -> None:
    database = f"{DATABASE}_index"
    admin = await asyncpg.connect(f"{PG}/test")
    await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {database}")
    await admin.close()
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    await migrate(engine)
    index = SqlRunIndex(session_factory(engine))
    try:
        for _ in range(50):
            await index.save_many([settled(keys)])
        walls = []
        cpu = time.process_time()
        for _ in range(writes):
            write = settled(keys)
            started = time.perf_counter()
            await index.save_many([write])
            walls.append(time.perf_counter() - started)
        cpu_ms = (time.process_time() - cpu) * 1000 / writes
    finally:
        if hasattr(index, "close"):  # an index from before it kept a connection has none
            await index.close()
        await engine.dispose()
    p50 = statistics.median(walls) * 1000
    print(f"| {writes} | {keys} | {p50:.1f} | {cpu_ms:.2f} | {os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=0, help="business keys per run")
    args = parser.parse_args()
    print("| writes | keys per run | p50 ms per write | CPU ms per write | load |")
    asyncio.run(main(args.writes, args.keys))
