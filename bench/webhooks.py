"""Webhook deliveries from the durable log: events turned into rows, rows sent to a loopback receiver.

Run: .venv/bin/python -m bench.webhooks [--events 2000] [--subscriptions 5] [--replicas 1]
     [--database sqlite|postgres]
`record` is timed for every event (the rows of all matching subscriptions, in one insert), then
`--replicas` delivery workers (WebhookDeliveries over one database, as replicas would run them)
send every row to a uvicorn receiver on loopback that answers 204 at once; deliveries/s is rows
sent over the time until none is pending. PostgreSQL: a database `charter_bench_webhooks` on
127.0.0.1:5432 is dropped and created.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import threading
import time

import asyncpg
import uvicorn
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from bench._server import free_port
from policies.egress import EgressPolicy
from registry.db.engine import create_engine, migrate, session_factory
from registry.db.models import Team, WebhookDelivery, WebhookSubscription
from registry.events import Event
from registry.secret_box import SecretBox
from registry.webhooks import WebhookDeliveries

PG = "postgresql://postgres@127.0.0.1:5432"
received = 0


async def receiver(scope, receive, send) -> None:
    global received
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    received += 1
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def main(args: argparse.Namespace) -> None:
    if args.database == "postgres":
        admin = await asyncpg.connect(f"{PG}/test")
        await admin.execute("DROP DATABASE IF EXISTS charter_bench_webhooks WITH (FORCE)")
        await admin.execute("CREATE DATABASE charter_bench_webhooks")
        await admin.close()
        url = "postgresql+asyncpg://postgres@127.0.0.1:5432/charter_bench_webhooks"
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp(prefix='charter-bench-')}/charter.db"
    engine = create_engine(url)
    await migrate(engine)
    sessionmaker = session_factory(engine)
    box = SecretBox([Fernet.generate_key()])

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        await asyncio.sleep(0.05)

    async with sessionmaker() as session:
        team = Team(name="bench")
        session.add(team)
        await session.flush()
        for n in range(args.subscriptions):
            session.add(
                WebhookSubscription(
                    team_id=team.id,
                    url=f"http://127.0.0.1:{port}/hook/{n}",
                    secret_sealed=box.seal("bench-secret-bench-secret"),
                    topics=["contract.*"],
                    apis=[],
                    flows=[],
                    created_by="bench",
                )
            )
        await session.commit()

    replicas = [
        WebhookDeliveries(
            sessionmaker,
            egress=EgressPolicy.from_allow_list("127.0.0.1"),
            secrets=box,
            batch=args.batch,
            defer_writes=False,
        )
        for _ in range(args.replicas)
    ]
    now = dt.datetime.now(dt.UTC)
    record_ms = []
    for n in range(args.events):
        event = Event(
            id=n + 1,
            topic="contract.published",
            at=now,
            payload={"api": "projects", "version": f"1.{n}.0", "state": "published"},
        )
        started = time.perf_counter()
        await replicas[n % len(replicas)].record(event)
        record_ms.append((time.perf_counter() - started) * 1000)

    rows = args.events * args.subscriptions
    started = time.perf_counter()

    async def work(replica: WebhookDeliveries) -> None:
        while await replica.deliver_due():
            pass

    await asyncio.gather(*(work(replica) for replica in replicas))
    elapsed = time.perf_counter() - started
    async with sessionmaker() as session:
        delivered = await session.scalar(
            select(func.count(WebhookDelivery.id)).where(WebhookDelivery.state == "delivered")
        )
    for replica in replicas:
        await replica.aclose()
    server.should_exit = True
    await engine.dispose()
    quantiles = statistics.quantiles(record_ms, n=100)
    print(
        f"| {args.database} | {args.events} events x {args.subscriptions} subscriptions | "
        f"record p50 {quantiles[49]:.1f} ms p99 {quantiles[98]:.1f} ms | "
        f"{args.replicas} worker(s), batch {args.batch}: {rows} rows in {elapsed:.1f} s = "
        f"{rows / elapsed:.0f} deliveries/s | delivered {delivered}, received {received} |"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    asyncio.run(main(parser.parse_args()))
