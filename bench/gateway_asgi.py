"""The gateway's own cost per request, without a server or sockets: ASGI calls in this process.

Run: PYTHONPATH=$PWD .venv/bin/python -m bench.gateway_asgi [--requests 20000] [--concurrency 64]
     [--rounds 3] 2>/dev/null
The same requests as bench/gateway.py, made by `--concurrency` coroutines on one event loop straight
into the ASGI app: (a) the bare litestar app, (b) the registry app's gateway with the Redis throttle
(127.0.0.1:6379), (c) with the in-process throttle, (d) (c) without the access log. What a request
costs here is the Python the app runs for it, without the HTTP server's parsing and the socket writes
(the same for every configuration): the figure the gateway's code can change, and on a shared machine
a steadier one than wrk's, since it is CPU time of this process (`time.process_time`). Each round runs
every configuration once, interleaved; the table shows each one's best round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar.testing import AsyncTestClient

from bench._server import ADMIN
from bench.gateway import BARE_PATH, BENCH_SLA, CLIENT, GATEWAY_PATH, REDIS_URL, bare_app

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def scope_of(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }


async def timed(app: Asgi, path: str, headers: dict[str, str], requests: int, concurrency: int) -> float:
    """CPU microseconds per request of `requests` calls made by `concurrency` coroutines."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def caller(count: int) -> None:
        for _ in range(count):
            await app(scope_of(path, headers), receive, send)

    await asyncio.gather(*(caller(requests // concurrency) for _ in range(concurrency)))  # warm-up
    statuses.clear()
    started = time.process_time()
    await asyncio.gather(*(caller(requests // concurrency) for _ in range(concurrency)))
    spent = time.process_time() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"{path}: statuses {sorted(set(statuses))}")
    return spent / len(statuses) * 1e6


@asynccontextmanager
async def registry_gateway(
    redis_url: str | None, access_log: bool
) -> AsyncIterator[tuple[Asgi, dict[str, str]]]:
    from registry.cli import configured_app

    workdir = tempfile.mkdtemp(prefix="charter-bench-asgi-")
    os.environ.update(
        {
            "CHARTER_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/b.db",
            "CHARTER_DEMO": "1",
            "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
            "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
            "CHARTER_CLIENTS": json.dumps(
                [{"client_id": CLIENT[0], "client_secret": CLIENT[1], "scopes": ["projects:read"]}]
            ),
            "CHARTER_REDIS_URL": redis_url or "",
            "CHARTER_ACCESS_LOG": "1" if access_log else "0",
        }
    )
    app = configured_app()
    async with AsyncTestClient(app, base_url="https://127.0.0.1") as client:
        issued = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
        admin = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        (await client.put("/api/v1/apis/projects/sla", json=BENCH_SLA, headers=admin)).raise_for_status()
        issued = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT)
        headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        for _ in range(100):
            probe = await client.get(GATEWAY_PATH, headers=headers)
            if "bench" in probe.headers.get("ratelimit-policy", ""):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"the gateway did not take the bench SLA: {probe.status_code} {probe.text}")
        yield app, headers


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    configurations: list[tuple[str, str | None, bool]] = [
        ("(b) gateway, Redis throttle", args.redis_url, True),
        ("(c) gateway, in-process", None, True),
        ("(d) gateway, in-process, no access log", None, False),
    ]
    best: dict[str, float] = {}
    load = (args.requests, args.concurrency)
    for _ in range(args.rounds):
        cost = await timed(bare_app, BARE_PATH, {}, *load)
        best["(a) bare litestar"] = min(best.get("(a) bare litestar", cost), cost)
        for name, redis_url, access_log in configurations:
            async with registry_gateway(redis_url, access_log) as (app, headers):
                cost = await timed(app, GATEWAY_PATH, headers, *load)
            best[name] = min(best.get(name, cost), cost)
    print(f"ASGI calls, {args.requests} requests {args.concurrency} at a time, best of {args.rounds}:")
    print("| config | CPU us/request | added to (a) |")
    print("| --- | --- | --- |")
    base = best["(a) bare litestar"]
    for name, cost in best.items():
        print(f"| {name} | {cost:.1f} | {cost - base:+.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
