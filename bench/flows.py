"""The cost of durability: a four-step flow on DBOS against the same four steps called directly.

Run: .venv/bin/python -m bench.flows [--runs 300] [--concurrency 20] [--database sqlite|postgres]
     .venv/bin/python -m bench.flows --recovery 1000 [--database ...]
     [--settings VARIANT]: the runner's settings, as named in bench.flows_compare (default: serve's)
The runner is the one `charter serve` uses (DBOS system database, the registry's run index written
behind in batches, events through the outbox); the steps are in-process async functions that return
at once, so the difference is what durability costs. Side by side in one run: the four calls made
directly, the same four as bare DBOS steps of a bare DBOS workflow (the engine's own floor on this
machine at this moment), and the Charter flow. Sequential runs give the latency (p50/p99 per run and
the cost added per step over the direct calls; the CPU time of the process per run, which a
machine loaded by others disturbs less than the wall clock); then `--concurrency` callers each start a run and
wait for its answer, again and again, which gives the throughput in runs/s.
`--processes 1,2` (PostgreSQL): throughput only, of that many separate processes on the same databases (each a
runner as `charter serve --workers N` starts, with its share of the callers and runs), and the CPU per
run of those processes and of the PostgreSQL backends serving them (read from /proc).
`--recovery N [--processes P]`: a child process starts N runs whose second step blocks, and exits hard
once they are all in flight; P new processes on the same databases (the first with the dead one's
executor id, which DBOS recovers at launch; the others with their own, as `serve --workers P` would
have them) are then timed until every run has succeeded: wall time from their start, and each
one's CPU time and the runs it finished. P > 1 needs PostgreSQL (DBOS on a SQLite file is one
process's).
PostgreSQL: a database `charter_bench_flows` (or $CHARTER_BENCH_DATABASE, so that two benches
can run at once) on 127.0.0.1:5432 is dropped and created.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
from dbos import DBOS

from gateway.flows import Flow, FlowInput, RetryPolicy, Step, StepContext
from gateway.flows.runner import FlowRunner
from gateway.flows.runs import RunQuery, RunState
from gateway.flows.system_database import SystemDatabaseSettings
from registry.db.engine import create_engine, migrate, session_factory
from registry.flows import SqlRunIndex, flow_system_database
from registry.settings import Settings

PG = "postgresql://postgres@127.0.0.1:5432"
DATABASE = os.environ.get("CHARTER_BENCH_DATABASE", "charter_bench_flows")


BLOCK = asyncio.Event()  # set in every process but the one that is killed


async def step(context: StepContext) -> dict:
    if context.step == "s1":
        await BLOCK.wait()
    return {"step": context.step, "n": len(context.outputs)}


STEPS = tuple(Step(f"s{i}", step, retry=RetryPolicy(attempts=1, timeout_seconds=None)) for i in range(4))
FLOW = Flow(name="bench", owner="bench", steps=STEPS)


@DBOS.step(name="bench_bare_step")
async def bare_step(name: str, n: int) -> dict:
    return {"step": name, "n": n}


@DBOS.workflow(name="bench_bare_workflow")
async def bare_workflow() -> dict:
    outputs: dict = {}
    for s in STEPS:
        outputs[s.name] = await bare_step(s.name, len(outputs))
    return outputs


async def bare_run() -> float:
    started = time.perf_counter()
    handle = await DBOS.start_workflow_async(bare_workflow)
    await handle.get_result()
    return time.perf_counter() - started


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


def parse(variant: str) -> tuple[SystemDatabaseSettings, int]:
    """The runner's settings a variant names, and its number of processes (see bench.flows_compare)."""
    settings: dict[str, object] = {"synchronous_commit": Settings().flows_synchronous_commit}
    processes = 1
    for token in variant.split("+"):
        name, _, value = token.partition("=")
        if name == "ping":
            settings["pre_ping"] = True
        elif name in ("sync", "async"):
            settings["synchronous_commit"] = name == "sync"
        elif name == "check4":
            settings["one_statement_check"] = False
        elif name == "threads":
            settings["executor_threads"] = int(value) or None
        elif name == "pool":
            settings["pool_size"] = int(value)
        elif name == "unbatched":
            settings["batched_recovery"] = False
        elif name == "recover":
            settings["recovery_concurrency"] = int(value) or None
        elif name == "procs":
            processes = int(value)
        elif name != "default":
            raise SystemExit(f"unknown setting {token!r} in variant {variant!r}")
    return SystemDatabaseSettings(**settings), processes  # type: ignore[arg-type]


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def databases(database: str, fresh: bool) -> str:
    if database == "postgres":
        if fresh:
            admin = await asyncpg.connect(f"{PG}/test")
            await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
            await admin.close()
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}"
    directory = Path(tempfile.gettempdir()) / DATABASE
    if fresh:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()
    return f"sqlite+aiosqlite:///{directory}/charter.db"


async def start_runner(
    url: str, system_database: SystemDatabaseSettings | None = None, executor_id: str = "local"
) -> tuple[FlowRunner, object]:
    engine = create_engine(url)
    await migrate(engine)
    runner = FlowRunner(
        {"bench": FLOW},
        index=SqlRunIndex(session_factory(engine)),
        client_factory=lambda *args: NoClient(),  # type: ignore[arg-type,return-value]
        system_database_url=flow_system_database(url),
        system_database=system_database,
        executor_id=executor_id,
    )
    await runner.start()
    return runner, engine


async def leave_pending(runs: int, database: str) -> None:
    """The killed process: N runs in flight at their blocking step, then a hard exit."""
    runner, _ = await start_runner(await databases(database, fresh=False), parse("default")[0])
    ids = [await runner.start_run("bench", FlowInput(body={"n": n})) for n in range(runs)]
    for run_id in ids:
        while (record := await runner.index.get(run_id)) is None or record.steps[0].state != "succeeded":
            await asyncio.sleep(0.01)
    os._exit(9)


async def recovery(runs: int, database: str, variant: str, processes: int) -> None:
    await databases(database, fresh=True)
    child = subprocess.run(
        [sys.executable, "-m", "bench.flows", "--leave-pending", str(runs), "--database", database],
        check=False,
    )
    assert child.returncode == 9, child.returncode
    started = time.time()
    command = [sys.executable, "-m", "bench.flows", "--database", database, "--settings", variant]
    recovering = [
        subprocess.Popen(
            [*command, "--recover-as", str(slot), "--recovery", str(runs), "--started", repr(started)],
            stdout=subprocess.PIPE,
        )
        for slot in range(processes)
    ]
    reports = [json.loads(process.communicate()[0]) for process in recovering]
    finished = await finished_by(database)
    load = os.getloadavg()
    for report in reports:
        print(
            f"| {database} | {variant} | {runs} pending | {processes} processes | process {report['slot']} "
            f"| launch {report['launch']:.1f} s | all succeeded after {report['elapsed']:.1f} s "
            f"| CPU {report['cpu']:.1f} s | finished {finished.get(report['executor'], 0)} runs "
            f"| load {load[0]:.1f} {load[1]:.1f} |"
        )


async def finished_by(database: str) -> dict[str, int]:
    """The runs each executor finished (the last to execute a run is its executor)."""
    if database != "postgres":
        return {"local": -1}  # not counted on SQLite: one process
    connection = await asyncpg.connect(f"{PG}/{DATABASE}")
    try:
        rows = await connection.fetch(
            "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' GROUP BY 1"
        )
    finally:
        await connection.close()
    return {row[0]: row[1] for row in rows}


async def recover_as(slot: int, runs: int, database: str, variant: str, started: float) -> None:
    """One recovering process: slot 0 has the dead process's executor id."""
    BLOCK.set()
    cpu_started = time.process_time()
    executor = "local" if slot == 0 else f"bench-{slot}"
    url = await databases(database, fresh=False)
    runner, engine = await start_runner(url, parse(variant)[0], executor_id=executor)
    launched = time.time() - started
    seen = time.time()
    while (done := (await runner.index.search(RunQuery(state=RunState.SUCCEEDED, limit=1)))[1]) < runs:
        if slot == 0 and time.time() - seen >= 1:
            seen = time.time()
            print(f"  {seen - started:.1f} s: {done} succeeded", file=sys.stderr)
        await asyncio.sleep(0.25)  # the count is of the whole index: often, it cost the recovery
    elapsed = time.time() - started
    cpu = time.process_time() - cpu_started
    await runner.stop()
    await engine.dispose()  # type: ignore[attr-defined]
    report = {"slot": slot, "executor": executor, "launch": launched, "elapsed": elapsed, "cpu": cpu}
    print(json.dumps(report))


async def main(runs: int, concurrency: int, database: str, variant: str) -> None:
    BLOCK.set()
    runner, engine = await start_runner(await databases(database, fresh=True), parse(variant)[0])
    try:
        for _ in range(10):
            await one_run(runner)
            await bare_run()
        plain = []
        for _ in range(runs):
            started = time.perf_counter()
            await direct()
            plain.append(time.perf_counter() - started)
        cpu = time.process_time()
        bare = [await bare_run() for _ in range(runs)]
        bare_cpu = (time.process_time() - cpu) * 1000 / runs
        cpu = time.process_time()
        durable = [await one_run(runner) for _ in range(runs)]
        durable_cpu = (time.process_time() - cpu) * 1000 / runs
        bare_rate = await throughput(bare_run, runs, concurrency)
        rate = await throughput(lambda: one_run(runner), runs, concurrency)
    finally:
        await runner.stop()
        await engine.dispose()  # type: ignore[attr-defined]
    per_step = len(STEPS)
    added = (statistics.median(durable) - statistics.median(plain)) * 1000 / per_step
    bare_added = (statistics.median(bare) - statistics.median(plain)) * 1000 / per_step
    print(
        f"| {database} | {runs} | {pct(plain, 0.5):.3f} | {pct(bare, 0.5):.1f} | {bare_added:.1f} "
        f"| {bare_cpu:.1f} | {pct(durable, 0.5):.1f} | {pct(durable, 0.99):.1f} | {added:.1f} "
        f"| {durable_cpu:.1f} | {concurrency} "
        f"| {bare_rate:.0f} | {rate:.0f} |"
    )


async def throughput(run: object, runs: int, concurrency: int) -> float:
    """Runs/s with `concurrency` callers, each starting a run and awaiting its answer in turn."""
    left = runs

    async def caller() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await run()  # type: ignore[operator]

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return runs / (time.perf_counter() - started)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--recovery", type=int, default=0)
    parser.add_argument("--settings", default="default", help="the runner's, as in bench.flows_compare")
    parser.add_argument(
        "--processes",
        default="",
        help="e.g. 1,2: throughput of that many processes; with --recovery, how many recover",
    )
    parser.add_argument("--leave-pending", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--recover-as", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--started", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    recovering = int(args.processes or 1) if args.recovery and not args.leave_pending else 1
    if recovering > 1 and args.database != "postgres":
        parser.error("--processes needs --database postgres: DBOS on a SQLite file is one process's")
    if args.leave_pending:
        asyncio.run(leave_pending(args.leave_pending, args.database))
    elif args.processes and not args.recovery:
        from bench.flows_compare import several

        if args.database != "postgres":
            raise SystemExit("--processes needs --database postgres (processes share it)")
        print("| processes | runs | callers | flow runs/s | CPU ms per run (processes + PostgreSQL) | load |")
        for processes in (int(n) for n in args.processes.split(",")):
            result = asyncio.run(several(args.runs, args.concurrency, args.settings, processes))
            cpu, pg_cpu = result["flow_busy_cpu_ms"], result["flow_busy_pg_cpu_ms"]
            print(
                f"| {processes} | {args.runs // processes * processes} | {args.concurrency} "
                f"| {result['flow_runs_s']:.0f} | {cpu:.1f} + {pg_cpu:.1f} | {os.getloadavg()[0]:.1f} |",
                flush=True,
            )
    elif args.recover_as is not None:
        asyncio.run(recover_as(args.recover_as, args.recovery, args.database, args.settings, args.started))
    elif args.recovery:
        asyncio.run(recovery(args.recovery, args.database, args.settings, recovering))
    else:
        print(
            "| database | runs | direct p50 ms | bare DBOS p50 ms | bare DBOS added per step ms "
            "| bare DBOS CPU ms per run | flow p50 ms | flow p99 ms | flow added per step ms "
            "| flow CPU ms per run | concurrent callers "
            "| bare DBOS runs/s | flow runs/s |"
        )
        asyncio.run(main(args.runs, args.concurrency, args.database, args.settings))
