"""Search latency with 10,000 APIs stored, through the HTTP API of a real server on loopback.

Run: .venv/bin/python bench/search.py [--apis 10000] [--queries 1000] [--database-url URL] [--direct N]
The catalog is written straight into a fresh database (the publish path is measured by
bench/publish.py); then a mix of free-text and filtered queries is timed client-side, one at a time.
`--direct N` times registry.search.search_apis in this process instead, each query N times keeping
its fastest: the database's share without HTTP, and steady on a machine that other work keeps busy.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert, text

from bench._server import running_server, token
from registry.db.engine import create_engine, migrate
from registry.db.models import Api, ApiTag, Team
from registry.search import index_api

WORDS = [
    "project",
    "milestone",
    "invoice",
    "payment",
    "time",
    "entry",
    "expense",
    "client",
    "engagement",
    "resource",
    "assignment",
    "timesheet",
    "approval",
    "billing",
    "revenue",
    "contract",
    "opportunity",
    "account",
    "ledger",
    "journal",
    "vendor",
    "purchase",
    "order",
    "receipt",
    "employee",
    "payroll",
    "benefit",
    "absence",
    "skill",
    "forecast",
    "budget",
    "margin",
    "rate",
    "card",
    "utilization",
    "customer",
    "lead",
    "campaign",
    "quote",
    "tax",
    "currency",
    "region",
    "portfolio",
    "risk",
    "document",
    "signature",
    "audit",
    "report",
]
DOMAINS = ["psa", "erp", "crm", "hcm", "payroll", "analytics"]
LAYERS = ["system", "process", "experience"]


async def seed(database_url: str, count: int) -> None:
    rng = random.Random(7)
    engine = create_engine(database_url)
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(Team), [{"id": i + 1, "name": f"team-{i}"} for i in range(50)])
    from registry.db.engine import session_factory

    sessions = session_factory(engine)
    async with sessions() as session:
        for start in range(0, count, 500):
            rows = []
            for n in range(start, min(start + 500, count)):
                words = rng.sample(WORDS, 3)
                rows.append(
                    Api(
                        id=n + 1,
                        name=f"{'-'.join(words[:2])}-{n}",
                        title=" ".join(w.title() for w in words),
                        description=" ".join(rng.choices(WORDS, k=25)),
                        owner_id=rng.randint(1, 50),
                        kind=rng.choice(["openapi", "openapi", "asyncapi"]),
                        domain=rng.choice(DOMAINS),
                        layer=rng.choice(LAYERS),
                        tags=sorted(set(rng.sample(WORDS, 3))),
                        latest_version="1.0.0",
                    )
                )
            session.add_all(rows)
            await session.flush()
            await session.execute(insert(ApiTag), [{"api_id": a.id, "tag": t} for a in rows for t in a.tags])
            for api in rows:
                operations = " ".join(
                    f"{rng.choice(['list', 'get', 'create', 'update'])}{w.title()} {w} summary"
                    for w in rng.choices(WORDS, k=12)
                )
                await index_api(session, api, operations)
            await session.commit()
        if engine.dialect.name == "sqlite":
            await session.execute(text("INSERT INTO api_search(api_search) VALUES ('optimize')"))
            await session.commit()
    await engine.dispose()


def queries(n: int) -> list[dict[str, str]]:
    rng = random.Random(11)
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append({"q": rng.choice(WORDS)})
        elif kind == 1:
            out.append({"q": " ".join(rng.sample(WORDS, 2))})
        elif kind == 2:
            out.append({"q": rng.choice(WORDS)[:4], "domain": rng.choice(DOMAINS)})
        else:
            out.append({"layer": rng.choice(LAYERS), "tag": rng.choice(WORDS), "limit": "50"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apis", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--direct", type=int, default=0, metavar="N")
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'search.db'}"
    started = time.perf_counter()
    asyncio.run(seed(url, args.apis))
    print(f"seeded {args.apis} APIs in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
    if args.direct:
        asyncio.run(direct(url, args.queries, args.direct))
        return
    with running_server(url) as (base, _):
        headers = {"Authorization": f"Bearer {token(base)}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for params in queries(50):  # warm-up
                http.get("/api/v1/search", params=params).raise_for_status()
            latencies = []
            by_shape: dict[str, list[float]] = {}
            hits = 0
            for params in queries(args.queries):
                begin = time.perf_counter()
                response = http.get("/api/v1/search", params=params)
                latencies.append((time.perf_counter() - begin) * 1000)
                by_shape.setdefault("+".join(sorted(params)), []).append(latencies[-1])
                response.raise_for_status()
                hits += response.json()["total"] > 0
            health = []
            for _ in range(200):
                begin = time.perf_counter()
                http.get("/health").raise_for_status()
                health.append((time.perf_counter() - begin) * 1000)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = _p99(latencies)
    print(f"{args.queries} queries, {hits} with hits: ", end="")
    print(f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms")
    for shape, values in sorted(by_shape.items()):
        values.sort()
        print(f"  {shape:24} p50 {statistics.median(values):5.1f} ms  p99 {_p99(values):5.1f} ms")
    print(f"  GET /health (floor)      p50 {statistics.median(health):5.1f} ms")


async def direct(database_url: str, count: int, repeat: int) -> None:
    from registry.db.engine import session_factory
    from registry.search import SearchQuery, search_apis

    engine = create_engine(database_url)
    sessions = session_factory(engine)
    by_shape: dict[str, list[float]] = {}
    for params in queries(count):
        query = SearchQuery(**{k: int(v) if k == "limit" else v for k, v in params.items()})
        fastest = float("inf")
        for _ in range(repeat):
            begin = time.perf_counter()
            async with sessions() as session:
                await search_apis(session, query)
            fastest = min(fastest, (time.perf_counter() - begin) * 1000)
        by_shape.setdefault("+".join(sorted(params)), []).append(fastest)
    await engine.dispose()
    everything = sorted(v for values in by_shape.values() for v in values)
    print(f"{count} queries in process, fastest of {repeat}: ", end="")
    print(f"p50 {statistics.median(everything):.1f} ms, p99 {_p99(everything):.1f} ms")
    for shape, values in sorted(by_shape.items()):
        values.sort()
        print(f"  {shape:24} p50 {statistics.median(values):5.1f} ms  p99 {_p99(values):5.1f} ms")


def _p99(sorted_values: list[float]) -> float:
    return sorted_values[max(0, int(len(sorted_values) * 0.99) - 1)]


if __name__ == "__main__":
    main()
