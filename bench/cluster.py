"""Several `charter serve` replicas on one PostgreSQL, Redis and NATS under a mixed load.

Run: .venv/bin/python -m bench.cluster [--replicas 3] [--duration 60] [--workers 24]
         [--nats-url nats://127.0.0.1:4222 | --no-nats] [--redis-url redis://127.0.0.1:6379/0]
Makes a fresh PostgreSQL database (`charter_cluster`) and JetStream stream of its own (both dropped
afterwards, so the machine's `CHARTER` stream is left alone), starts the first replica
(it migrates and loads the demo), then the others at once, all with the same secrets key, Redis
throttle and NATS URL and nothing else shared. For `--duration` seconds `--workers` concurrent
callers spread these requests over the replicas at random:
  publish  a new API (admin) bound to the mock adapter; then, in the background, every other
           replica's gateway is polled until it routes the new API: the propagation time;
  search   a free-text catalog query;
  gateway  GET /gw/projects/v1/projects/p-1 with a client token (scope projects:read; the token is
           taken from one replica and used on all of them);
  flow     POST /gw/time-to-bill/v1/billing-runs for acme's 2026-11: a three-step durable run
           (PSA, ERP lines, ERP invoice) answered 201, each call with a fresh Idempotency-Key.
Prints per kind: count, errors (an unexpected status or a transport error), p50/p99 latency; and
the propagation p50/p99/max. Targets: zero errors, propagation p99 under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bench._server import ADMIN, admin_sql, drop_stream, free_port

DATABASE = "charter_cluster"
CLIENT = ("cluster-bench", "cluster-bench-secret")
UNTHROTTLED = {
    "tier": "bench",
    "rate_limit": {"requests": 1_000_000_000, "per_seconds": 1, "burst": 1_000_000_000},
}
# The APIs the gateway and flow requests pass through (the flow's steps call the systems).
LOADED_APIS = ("projects", "time-to-bill", "psa", "erp")
MIX = {"publish": 1, "search": 3, "gateway": 10, "flow": 2}


def small_contract(name: str) -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": f"Bench {name}", "version": "1.0.0"},
        "paths": {
            "/items": {
                "get": {
                    "operationId": "listItems",
                    "responses": {
                        "200": {
                            "description": "items",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"type": "string"}},
                                    "example": ["a", "b"],
                                }
                            },
                        }
                    },
                }
            }
        },
    }


@dataclass
class Replica:
    url: str
    process: subprocess.Popen
    log: Path


@contextlib.contextmanager
def replicas(count: int, env: dict[str, str]) -> Iterator[list[Replica]]:
    workdir = Path(tempfile.mkdtemp(prefix="charter-cluster-"))
    started: list[Replica] = []

    def start(index: int) -> Replica:
        port = free_port()
        log = workdir / f"replica-{index}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "registry.cli", "serve", "--port", str(port)],
                # One public URL (the tokens' issuer) for every replica, as behind a load balancer.
                env={
                    **os.environ,
                    **env,
                    "CHARTER_PUBLIC_URL": "http://charter.bench",
                    "CHARTER_FLOWS_EXECUTOR_ID": f"bench-replica-{index}",
                },
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return Replica(f"http://127.0.0.1:{port}", process, log)

    def wait_healthy(replica: Replica) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{replica.url}/health", timeout=1).status_code == 200:
                    return
            if replica.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"replica {replica.url} did not start:\n{replica.log.read_text()[-3000:]}")

    try:
        started.append(start(0))  # the first one migrates and loads the demo
        wait_healthy(started[0])
        started.extend(start(i) for i in range(1, count))
        for replica in started[1:]:
            wait_healthy(replica)
        yield started
    except BaseException:
        for replica in started:
            print(f"--- {replica.url} log tail:\n{replica.log.read_text()[-4000:]}", file=sys.stderr)
        raise
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            try:
                replica.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    propagation: list[float] = field(default_factory=list)
    unpropagated: int = 0


async def bearer(http: httpx.AsyncClient, url: str, auth: tuple[str, str]) -> dict[str, str]:
    response = await http.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=auth)
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def prepare(http: httpx.AsyncClient, urls: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    admin = await bearer(http, urls[0], ADMIN)
    for name in LOADED_APIS:
        response = await http.put(f"{urls[0]}/api/v1/apis/{name}/sla", json=UNTHROTTLED, headers=admin)
        response.raise_for_status()
    client = await bearer(http, urls[0], CLIENT)
    # Every replica answers the gateway with the raised SLA before the clock starts.
    deadline = time.monotonic() + 30
    for url in urls:
        while "bench" not in (
            await http.get(f"{url}/gw/projects/v1/projects/p-1", headers=client)
        ).headers.get("ratelimit-policy", ""):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} did not route the raised SLA within 30 s: the replicas do not converge"
                )
            await asyncio.sleep(0.2)
    return admin, client


async def propagated(
    http: httpx.AsyncClient, others: list[str], path: str, since: float, tally: Tally
) -> None:
    async def routed(url: str) -> float | None:
        while time.monotonic() - since < 10:
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(url + path)).status_code == 200:
                    return time.monotonic() - since
            await asyncio.sleep(0.02)
        return None

    for seconds in await asyncio.gather(*(routed(url) for url in others)):
        if seconds is None:
            tally.unpropagated += 1
        else:
            tally.propagation.append(seconds)


async def one_request(
    kind: str,
    http: httpx.AsyncClient,
    urls: list[str],
    admin: dict[str, str],
    client: dict[str, str],
    tally: Tally,
    background: set[asyncio.Task[None]],
) -> None:
    url = random.choice(urls)
    name = f"bench-{uuid.uuid4().hex[:10]}"
    started = time.monotonic()
    try:
        if kind == "publish":
            response = await http.post(
                f"{url}/api/v1/apis/{name}/versions",
                content=json.dumps(small_contract(name) | {"security": []}),
                params={"owner": "delivery"},
                headers={**admin, "Content-Type": "application/json"},
            )
            expected = {201}
            if response.status_code in expected:
                response = await http.put(
                    f"{url}/api/v1/apis/{name}/adapter", json={"kind": "mock"}, headers=admin
                )
                expected = {200}
                bound = time.monotonic()
                task = asyncio.create_task(
                    propagated(http, [u for u in urls if u != url], f"/gw/{name}/v1/items", bound, tally)
                )
                background.add(task)
                task.add_done_callback(background.discard)
        elif kind == "search":
            response = await http.get(f"{url}/api/v1/search", params={"q": "project"}, headers=admin)
            expected = {200}
        elif kind == "gateway":
            response = await http.get(f"{url}/gw/projects/v1/projects/p-1", headers=client)
            expected = {200}
        else:
            response = await http.post(
                f"{url}/gw/time-to-bill/v1/billing-runs",
                json={"client": "acme", "period": "2026-11"},
                headers={**client, "Idempotency-Key": uuid.uuid4().hex},
            )
            expected = {200, 201}
    except httpx.HTTPError as error:
        tally.errors[kind].append(f"{type(error).__name__}: {error}")
        return
    tally.latencies[kind].append(time.monotonic() - started)
    if response.status_code not in expected:
        tally.errors[kind].append(f"{response.status_code} {response.text[:200]}")


async def load(urls: list[str], duration: float, workers: int) -> Tally:
    tally = Tally()
    background: set[asyncio.Task[None]] = set()
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        admin, client = await prepare(http, urls)
        kinds, weights = list(MIX), list(MIX.values())
        end = time.monotonic() + duration

        async def worker() -> None:
            while time.monotonic() < end:
                kind = random.choices(kinds, weights)[0]
                await one_request(kind, http, urls, admin, client, tally, background)

        await asyncio.gather(*(worker() for _ in range(workers)))
        if background:
            await asyncio.wait(background)
    return tally


def quantile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def report(tally: Tally, duration: float) -> None:
    print(f"{'kind':<9} {'count':>7} {'req/s':>7} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for kind in MIX:
        values = tally.latencies[kind]
        errors = len(tally.errors[kind])
        print(
            f"{kind:<9} {len(values):>7} {len(values) / duration:>7.1f} {errors:>7} "
            f"{quantile(values, 0.5) * 1000:>8.1f} {quantile(values, 0.99) * 1000:>8.1f}"
        )
    seen = tally.propagation
    print(
        f"propagation (publish on one replica -> routed by another): {len(seen)} observed, "
        f"{tally.unpropagated} not within 10 s; p50 {quantile(seen, 0.5) * 1000:.0f} ms, "
        f"p99 {quantile(seen, 0.99) * 1000:.0f} ms, max {max(seen, default=float('nan')) * 1000:.0f} ms"
    )
    for kind, errors in tally.errors.items():
        for error in errors[:5]:
            print(f"  {kind} error: {error}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--workers", type=int, default=24, help="concurrent callers")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--no-nats", action="store_true", help="replicas share only PostgreSQL and Redis")
    args = parser.parse_args()

    asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
    asyncio.run(admin_sql(f'CREATE DATABASE "{DATABASE}"'))
    env = {
        "CHARTER_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DATABASE}",
        "CHARTER_DEMO": "1",
        "CHARTER_SECRETS_KEY": Fernet.generate_key().decode(),  # sealed secrets on PostgreSQL
        "CHARTER_REDIS_URL": args.redis_url,
        "CHARTER_ACCESS_LOG": "0",
        "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
        "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
        "CHARTER_CLIENTS": json.dumps(
            [
                {
                    "client_id": CLIENT[0],
                    "client_secret": CLIENT[1],
                    "scopes": ["projects:read", "time-to-bill:run"],
                }
            ]
        ),
    }
    stream = f"CHARTER_CLUSTER_{uuid.uuid4().hex[:10]}"
    if not args.no_nats:
        env["CHARTER_NATS_URL"] = args.nats_url
        env["CHARTER_NATS_STREAM"] = stream
        env["CHARTER_NATS_SUBJECT_PREFIX"] = stream.lower().replace("_", "-")
    try:
        with replicas(args.replicas, env) as started:
            tally = asyncio.run(load([r.url for r in started], args.duration, args.workers))
        print(
            f"{args.replicas} replicas, {args.workers} callers, {args.duration:.0f} s, "
            f"{'NATS ' + args.nats_url if not args.no_nats else 'no NATS'}"
        )
        report(tally, args.duration)
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        if not args.no_nats:
            asyncio.run(drop_stream(args.nats_url, stream))


if __name__ == "__main__":
    main()
