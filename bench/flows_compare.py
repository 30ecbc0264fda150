"""Settings of the flow runner side by side: CPU per run (Charter's process and PostgreSQL's) and
throughput, each variant in a fresh process on a fresh database, the variants taking turns.

Run: .venv/bin/python -m bench.flows_compare --variants ping+sync,sync,async,procs=2 [--rounds 2]
         [--runs 300] [--concurrency 20]
A variant is `+`-separated settings (`default`: what `charter serve` uses): `ping` (DBOS's ping
before each transaction), `sync` / `async` (synchronous_commit on / off on DBOS's connections),
`check4` (DBOS's own check before a step, not Charter's one-statement one, see step_check),
`pool=N` (DBOS's pool), `threads=N` (DBOS's executor threads, 0: no limit), `procs=N` (N
processes on the same database, each a DBOS executor with
concurrency/N callers: what `charter serve --workers N` does; throughput only). The machine is
shared and loaded, so compare the ratios within one run and the CPU per run, which load disturbs
less than wall time.

The CPU of PostgreSQL is that of the backends connected to the bench database (read from /proc), so
the two together are what one run costs this machine's two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench.flows import BLOCK, DATABASE, PG, bare_run, databases, one_run, parse, start_runner, throughput
from gateway.flows.system_database import SystemDatabaseSettings

_TICKS = os.sysconf("SC_CLK_TCK")


class PostgresCpu:
    """CPU seconds of the server processes serving one database, backends that ended included
    (their last reading)."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.first: dict[int, float] = {}

    async def read(self) -> float:
        admin = await asyncpg.connect(f"{PG}/test")
        try:
            rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", DATABASE)
        finally:
            await admin.close()
        started = bool(self.last)
        for pid in (row["pid"] for row in rows):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / _TICKS
            self.first.setdefault(pid, 0.0 if started else seconds)
            self.last[pid] = seconds
        return sum(self.last.values()) - sum(self.first.values())


async def measure(runs: int, concurrency: int, settings: SystemDatabaseSettings) -> dict:
    BLOCK.set()
    runner, engine = await start_runner(await databases("postgres", fresh=True), settings)
    pg = PostgresCpu()
    out: dict = {}
    try:
        for _ in range(10):
            await one_run(runner)
            await bare_run()
        for name, run in (("bare", bare_run), ("flow", lambda: one_run(runner))):
            pg_before, cpu = await pg.read(), time.process_time()
            latencies = [await run() for _ in range(runs)]  # type: ignore[operator]
            out[f"{name}_p50_ms"] = statistics.median(latencies) * 1000
            out[f"{name}_cpu_ms"] = (time.process_time() - cpu) * 1000 / runs
            out[f"{name}_pg_cpu_ms"] = (await pg.read() - pg_before) * 1000 / runs
            pg_before, cpu = await pg.read(), time.process_time()
            out[f"{name}_runs_s"] = await throughput(run, runs, concurrency)
            out[f"{name}_busy_cpu_ms"] = (time.process_time() - cpu) * 1000 / runs
            out[f"{name}_busy_pg_cpu_ms"] = (await pg.read() - pg_before) * 1000 / runs
    finally:
        await runner.stop()
        await engine.dispose()  # type: ignore[attr-defined]
    return out


async def worker(runs: int, concurrency: int, settings: SystemDatabaseSettings) -> None:
    """One of several processes: ready, then on a line from the coordinator its share of runs."""
    BLOCK.set()
    runner, engine = await start_runner(await databases("postgres", fresh=False), settings)
    try:
        for _ in range(10):
            await one_run(runner)
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        cpu, started = time.process_time(), time.time()
        await throughput(lambda: one_run(runner), runs, concurrency)
        report = {"started": started, "ended": time.time(), "cpu": time.process_time() - cpu}
        print(json.dumps(report), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # connected until the coordinator has read the CPU
    finally:
        await runner.stop()
        await engine.dispose()  # type: ignore[attr-defined]


async def several(runs: int, concurrency: int, variant: str, processes: int) -> dict:
    await databases("postgres", fresh=True)
    command = [sys.executable, "-m", "bench.flows_compare", "--worker", variant]
    command += ["--runs", str(runs // processes), "--concurrency", str(concurrency // processes)]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    pg = PostgresCpu()
    await pg.read()
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = [json.loads(child.stdout.readline()) for child in children]  # type: ignore[union-attr]
    pg_cpu = await pg.read()
    for child in children:
        child.stdin.write("stop\n")  # type: ignore[union-attr]
        child.stdin.flush()  # type: ignore[union-attr]
        child.wait()
    total = runs // processes * processes
    elapsed = max(r["ended"] for r in reports) - min(r["started"] for r in reports)
    return {
        "flow_runs_s": total / elapsed,
        "flow_busy_cpu_ms": sum(r["cpu"] for r in reports) * 1000 / total,
        "flow_busy_pg_cpu_ms": pg_cpu * 1000 / total,
    }


def compare(variants: list[str], rounds: int, runs: int, concurrency: int) -> None:
    results: dict[str, list[dict]] = {variant: [] for variant in variants}
    for round_ in range(rounds):
        for variant in variants:
            command = [sys.executable, "-m", "bench.flows_compare", "--variant", variant]
            command += ["--runs", str(runs), "--concurrency", str(concurrency)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            load = os.getloadavg()[0]
            print(f"round {round_ + 1} {variant} (load {load:.1f}): {json.dumps(result)}", file=sys.stderr)
            results[variant].append(result)
    keys = [
        f"{kind}_{figure}"
        for kind in ("bare", "flow")
        for figure in ("p50_ms", "cpu_ms", "pg_cpu_ms", "runs_s", "busy_cpu_ms", "busy_pg_cpu_ms")
    ]
    print("| variant | " + " | ".join(keys) + " |")
    print("| --- " * (len(keys) + 1) + "|")
    for variant, rows in results.items():
        cells = []
        for key in keys:
            values = [row[key] for row in rows if key in row]
            cells.append(f"{statistics.median(values):.1f}" if values else "")
        print(f"| {variant} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", default="ping,default")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.runs, args.concurrency, parse(args.worker)[0]))
    elif args.variant:
        settings, processes = parse(args.variant)
        if processes > 1:
            result = asyncio.run(several(args.runs, args.concurrency, args.variant, processes))
        else:
            result = asyncio.run(measure(args.runs, args.concurrency, settings))
        print(json.dumps(result))
    else:
        compare(args.variants.split(","), args.rounds, args.runs, args.concurrency)
