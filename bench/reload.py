"""Gateway reloads with many APIs: a full reload against one API's, and gateway calls during a burst.

Run: .venv/bin/python -m bench.reload [--apis 10000] [--burst 20] [--callers 8] [--database-url URL]
Seeds a fresh database (a temporary SQLite file, or the PostgreSQL database URL given, whose tables
must be empty) with `--apis` APIs, each one published OpenAPI version of three paths bound to the mock
adapter, written straight into the tables (publishing 10,000 documents through the API would take
many minutes of validation, which is not what is measured). Then, for each way of following
announcements, the registry app runs in this process (one event loop, as one uvicorn worker):
  full:        every announcement recompiles every API's routes (what the gateway did before);
  incremental: an announcement recompiles the routes of the API it names.
and the bench measures the reload itself (median of a few), then `--callers` concurrent clients
calling the gateway (GET on a random API, `--pause` seconds apart) while `--burst` new versions are
published one after the other through the REST API; it prints the p50, p99 and max latency of the
calls made from the first publish until the gateway routes the last one, the calls answered per
second in that time and before it (quiet), and how long the burst took to be routed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import logging
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
from cryptography.fernet import Fernet
from sqlalchemy import insert, select

from contracts.canonical import canonical_json
from registry import app as composition
from registry.app import create_app
from registry.db.engine import create_engine, migrate, session_factory
from registry.db.models import Api, ApiVersion, Team
from registry.gateway_source import gateway_reloader
from registry.settings import Settings

ADMIN = ("admin", "admin-secret")
SEED = 7


def document(index: int, version: str = "1.0.0") -> dict[str, Any]:
    item = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}
    ok = {"description": "OK", "content": {"application/json": {"schema": item}}}
    by_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    return {
        "openapi": "3.0.3",
        "info": {"title": f"Bench API {index}", "version": version},
        "security": [],
        "paths": {
            "/items": {"get": {"operationId": "listItems", "responses": {"200": ok}}},
            "/items/{id}": {
                "parameters": by_id,
                "get": {"operationId": "getItem", "responses": {"200": ok, "404": {"description": "none"}}},
            },
            "/items/{id}/history": {
                "parameters": by_id,
                "get": {"operationId": "itemHistory", "responses": {"200": ok}},
            },
        },
    }


def api_name(index: int) -> str:
    return f"bench-{index:05d}"


async def seed(database_url: str, apis: int) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with session_factory(engine)() as session:
            team = Team(name="bench")
            session.add(team)
            await session.flush()
            api_rows = [
                {
                    "name": api_name(i),
                    "title": f"Bench API {i}",
                    "owner_id": team.id,
                    "kind": "openapi",
                    "layer": "system",
                    "tags": [],
                    "contacts": [],
                    "adapter": {"kind": "mock"},
                    "latest_version": "1.0.0",
                }
                for i in range(apis)
            ]
            await session.execute(insert(Api), api_rows)
            ids = dict((await session.execute(select(Api.name, Api.id))).all())
            version_rows = []
            for i in range(apis):
                canonical = canonical_json(document(i))
                version_rows.append(
                    {
                        "api_id": ids[api_name(i)],
                        "version": "1.0.0",
                        "state": "published",
                        "kind": "openapi",
                        "spec_version": "3.0.3",
                        "fingerprint": hashlib.sha256(canonical).hexdigest(),
                        "media_type": "application/json",
                        "source": canonical,
                        "canonical": canonical,
                        "size_bytes": len(canonical),
                        "published_by": "bench",
                    }
                )
            await session.execute(insert(ApiVersion), version_rows)
            await session.commit()
    finally:
        await engine.dispose()


def settings(database_url: str, secrets_key: str) -> Settings:
    return Settings(
        database_url=database_url,
        public_url="http://bench.local",
        admin_client_id=ADMIN[0],
        admin_client_secret=ADMIN[1],
        demo=False,
        secrets_key=secrets_key,
        access_log=False,
    )


async def timed(action: Any) -> float:
    started = time.perf_counter()
    await action()
    return time.perf_counter() - started


async def run_mode(
    mode: str, args: argparse.Namespace, database_url: str, secrets_key: str
) -> dict[str, Any]:
    # The composition root builds the reloader; the bench picks how it follows announcements.
    composition.gateway_reloader = functools.partial(gateway_reloader, incremental=mode == "incremental")  # type: ignore[assignment]
    app = create_app(settings(database_url, secrets_key), flows={})
    gateway = app.state.gateway
    random.seed(SEED)
    async with app.lifespan():
        full = [await timed(gateway.reload) for _ in range(2)]
        one = [
            await timed(functools.partial(gateway.reload, {api_name(random.randrange(args.apis))}))
            for _ in range(20)
        ]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            answer = await client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
            admin = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            latencies: list[float] = []
            failures = 0
            stop = asyncio.Event()

            async def caller() -> None:
                nonlocal failures
                while not stop.is_set():
                    name = api_name(random.randrange(args.apis))
                    started = time.perf_counter()
                    response = await client.get(f"/gw/{name}/v1/items/i-{random.randrange(100)}")
                    latencies.append(time.perf_counter() - started)
                    failures += response.status_code != 200
                    # Paced below saturation, so that a stall shows as latency, not as a queue.
                    await asyncio.sleep(args.pause)

            callers = [asyncio.create_task(caller()) for _ in range(args.callers)]
            await asyncio.sleep(1)  # warm up
            latencies.clear()
            quiet_started = time.perf_counter()
            await asyncio.sleep(2)
            quiet = sorted(latencies)
            quiet_rate = len(quiet) / (time.perf_counter() - quiet_started)
            latencies.clear()
            started = time.perf_counter()
            targets = [random.randrange(args.apis) for _ in range(args.burst)]
            for n, index in enumerate(targets):
                body = msgspec.json.encode(document(index, version=f"1.{n + 1}.0"))
                published = await client.post(
                    f"/api/v1/apis/{api_name(index)}/versions",
                    content=body,
                    headers={**admin, "Content-Type": "application/json"},
                )
                if published.status_code != 201:
                    stop.set()
                    raise SystemExit(f"publish refused: {published.status_code} {published.text[:500]}")
            last = api_name(targets[-1])
            while True:  # until the gateway routes the last publish
                routes = gateway._table.get(last)
                if routes is not None and f"1.{args.burst}.0" in routes.routes:
                    break
                await asyncio.sleep(0.005)
            settle = time.perf_counter() - started
            burst = sorted(latencies)
            stop.set()
            await asyncio.gather(*callers)
    return {
        "mode": mode,
        "full_reload_s": statistics.median(full),
        "one_api_reload_ms": statistics.median(one) * 1000,
        "quiet_p99_ms": percentile(quiet, 99) * 1000,
        "quiet_rate": quiet_rate,
        "calls": len(burst),
        "p50_ms": percentile(burst, 50) * 1000,
        "p99_ms": percentile(burst, 99) * 1000,
        "max_ms": burst[-1] * 1000 if burst else float("nan"),
        "settle_s": settle,
        "failures": failures,
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * p / 100))]


async def main_async(args: argparse.Namespace) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per call otherwise
    workdir = Path(tempfile.mkdtemp(prefix="charter-reload-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir}/charter.db"
    secrets_key = Fernet.generate_key().decode()
    started = time.perf_counter()
    await seed(database_url, args.apis)
    print(f"seeded {args.apis} APIs in {time.perf_counter() - started:.1f} s ({database_url.split(':')[0]})")
    header = (
        "mode",
        "full reload s",
        "1-API reload ms",
        "quiet calls/s",
        "quiet p99 ms",
        "burst calls/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "routed after s",
    )
    print("{:<12} {:>13} {:>15} {:>13} {:>12} {:>13} {:>7} {:>8} {:>8} {:>14}".format(*header))
    for mode in ("full", "incremental"):
        r = await run_mode(mode, args, database_url, secrets_key)
        reloads = f"{r['mode']:<12} {r['full_reload_s']:>13.2f} {r['one_api_reload_ms']:>15.1f}"
        rate = r["calls"] / r["settle_s"]
        burst = f"{rate:>13.0f} {r['p50_ms']:>7.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f}"
        failed = f"  ({r['failures']} calls not 200)" if r["failures"] else ""
        quiet = f"{r['quiet_rate']:>13.0f} {r['quiet_p99_ms']:>12.1f}"
        print(f"{reloads} {quiet} {burst} {r['settle_s']:>14.2f}{failed}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apis", type=int, default=10_000)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.01, help="seconds each caller waits between calls")
    parser.add_argument("--database-url", default=None)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
