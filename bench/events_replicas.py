"""Two replicas on PostgreSQL and NATS JetStream: how long after a publish on A answers 201 B's
gateway routes the new version (polled every 2 ms).

    PYTHONPATH=$PWD .venv/bin/python bench/events_replicas.py [--publishes 30] [--nats nats://127.0.0.1:4222]

Uses a database and a stream of its own on the local PostgreSQL and NATS, dropped at the end.
Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bench._server import PG_ADMIN_DSN, admin_sql, drop_stream, running_server, token

DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "Bench", "version": "1.0.0"},
    "paths": {"/items": {"get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}}},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--publishes", type=int, default=30)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:10]
    database, stream = f"charter_bench_events_{tag}", f"CHARTER_BENCH_{tag}"
    asyncio.run(admin_sql(f'CREATE DATABASE "{database}"'))
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    key_file = Path(tempfile.mkdtemp(prefix="charter-bench-key-")) / "signing.pem"
    env = {
        "CHARTER_NATS_URL": args.nats,
        "CHARTER_NATS_STREAM": stream,
        "CHARTER_NATS_SUBJECT_PREFIX": f"charter-bench-{tag}",
        "CHARTER_SIGNING_KEY_FILE": str(key_file),
        "CHARTER_ACCESS_LOG": "0",
        "CHARTER_SECRETS_KEY": Fernet.generate_key().decode(),
    }
    try:
        url = f"postgresql+asyncpg://postgres@{host}/{database}"
        with running_server(url, **env) as (a, _), running_server(url, **env) as (b, _):
            admin = {"Authorization": f"Bearer {token(a)}"}
            httpx.post(f"{a}/api/v1/teams", json={"name": "bench"}, headers=admin).raise_for_status()
            latencies = []
            with httpx.Client() as client:
                for i in range(args.publishes):
                    api = f"bench-{i}"
                    response = client.post(
                        f"{a}/api/v1/apis/{api}/versions",
                        content=json.dumps(DOCUMENT),
                        params={"owner": "bench"},
                        headers={**admin, "Content-Type": "application/json"},
                    )
                    response.raise_for_status()
                    published = time.perf_counter()
                    while client.get(f"{b}/gw/{api}/v1/items").status_code == 404:
                        time.sleep(0.002)
                    latencies.append((time.perf_counter() - published) * 1000)
        print("  in order:", " ".join(f"{x:.0f}" for x in latencies))
        latencies.sort()
        print(
            f"publish on A (201) -> routed by B, {len(latencies)} publishes, two replicas, PostgreSQL + NATS"
        )
        p90 = latencies[int(0.9 * len(latencies)) - 1]
        print(
            f"  median {statistics.median(latencies):.1f} ms, p90 {p90:.1f} ms,"
            f" max {latencies[-1]:.1f} ms, min {latencies[0]:.1f} ms"
        )
    finally:
        asyncio.run(admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        asyncio.run(drop_stream(args.nats, stream))


if __name__ == "__main__":
    main()
