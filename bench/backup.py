"""Export and import of a whole registry through the admin API of real servers, with their peak memory.

Run: .venv/bin/python bench/backup.py [--apis 500] [--versions 4] [--doc-kb 40] [--audit 20000]
The source registry is written straight into a fresh SQLite database (each version a distinct
document of about --doc-kb KiB); then `GET /api/v1/admin/export` is downloaded from one server and
`POST /api/v1/admin/import` sends it to a second one on an empty database. Printed: seconds for each,
the zip's size, and each server's peak resident memory before and after (started, with its gateway
loaded), against the raw size of the documents: whether a step holds the registry in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import insert

from bench._server import peak_rss_mb, running_server, token
from registry.db.engine import create_engine, migrate
from registry.db.models import Api, ApiVersion, AuditEvent, Team

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def document(api: int, version: int, size: int) -> bytes:
    """A small contract padded to `size` with a description of hex digits: few routes for the gateway
    to compile on start, and content that compresses about as much as prose (2 times)."""
    seed = f"{api}-{version}".encode()
    blocks = (hashlib.sha256(seed + n.to_bytes(4, "big")).hexdigest() for n in range(size // 64 + 1))
    description = "".join(blocks)[:size]
    return (
        f'{{"openapi": "3.0.3", "info": {{"title": "API {api}", "version": "{version}.0.0", '
        f'"description": "{description}"}}, "paths": {{"/items": {{"get": {{"responses": '
        f'{{"200": {{"description": "ok"}}}}}}}}}}}}'
    ).encode()


async def seed(database_url: str, apis: int, versions: int, doc_kb: int, audit: int) -> int:
    engine = create_engine(database_url)
    await migrate(engine)
    raw = 0
    async with engine.begin() as conn:
        await conn.execute(insert(Team), [{"id": 1, "name": "team"}])
        await conn.execute(
            insert(Api),
            [
                {
                    "id": a + 1,
                    "name": f"api-{a}",
                    "title": f"API {a}",
                    "owner_id": 1,
                    "layer": "system",
                    "kind": "openapi",
                    "latest_version": f"{versions}.0.0",
                }
                for a in range(apis)
            ],
        )
        for a in range(apis):
            rows = []
            for v in range(1, versions + 1):
                source = document(a, v, doc_kb * 1024)
                raw += 2 * len(source)
                rows.append(
                    {
                        "api_id": a + 1,
                        "version": f"{v}.0.0",
                        "state": "published",
                        "kind": "openapi",
                        "fingerprint": "sha256:" + hashlib.sha256(source).hexdigest(),
                        "media_type": "application/json",
                        "source": source,
                        "canonical": source,
                        "size_bytes": len(source),
                        "published_by": "bench",
                        "published_at": NOW,
                    }
                )
            await conn.execute(insert(ApiVersion), rows)
        for start in range(0, audit, 1000):
            await conn.execute(
                insert(AuditEvent),
                [
                    {
                        "at": NOW + dt.timedelta(seconds=i),
                        "actor": "bench",
                        "action": "version.published",
                        "subject": f"apis/api-{i % apis}",
                        "after": {"i": i},
                    }
                    for i in range(start, min(audit, start + 1000))
                ],
            )
    await engine.dispose()
    return raw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apis", type=int, default=500)
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--doc-kb", type=int, default=40)
    parser.add_argument("--audit", type=int, default=20_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="charter-bench-backup-"))
    source_db = f"sqlite+aiosqlite:///{workdir}/source.db"
    raw = asyncio.run(seed(source_db, args.apis, args.versions, args.doc_kb, args.audit))
    backup = workdir / "backup.zip"
    with running_server(source_db) as (url, process):
        headers = {"Authorization": f"Bearer {token(url)}"}
        source_before = peak_rss_mb(process.pid)
        started = time.perf_counter()
        with httpx.stream("GET", f"{url}/api/v1/admin/export", headers=headers, timeout=None) as response:
            response.raise_for_status()
            with backup.open("wb") as out:
                for chunk in response.iter_bytes(256 * 1024):
                    out.write(chunk)
        exported = time.perf_counter() - started
        source_rss = peak_rss_mb(process.pid)
    with running_server(f"sqlite+aiosqlite:///{workdir}/target.db") as (url, process):
        headers = {"Authorization": f"Bearer {token(url)}", "Content-Type": "application/zip"}
        target_before = peak_rss_mb(process.pid)
        started = time.perf_counter()
        with backup.open("rb") as stream:
            response = httpx.post(f"{url}/api/v1/admin/import", content=stream, headers=headers, timeout=None)
        response.raise_for_status()
        imported = time.perf_counter() - started
        target_rss = peak_rss_mb(process.pid)
    print(
        f"{args.apis} APIs x {args.versions} versions ({raw / 2**20:.0f} MiB of documents, canonical forms), "
        f"{args.audit} audit events"
    )
    size = backup.stat().st_size / 2**20
    print(f"export: {exported:.1f} s, zip {size:.1f} MiB")
    print(f"  source server peak RSS: {source_before:.0f} MiB before, {source_rss:.0f} MiB after")
    print(f"import: {imported:.1f} s, added {response.json()['added']}")
    print(f"  target server peak RSS: {target_before:.0f} MiB before, {target_rss:.0f} MiB after")


if __name__ == "__main__":
    main()
