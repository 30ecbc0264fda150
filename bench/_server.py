"""A real `charter serve` on loopback for benchmarks: its own temp database, torn down afterwards."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import nats

ADMIN = ("bench-admin", "bench-secret")
PG_ADMIN_DSN = os.environ.get("CHARTER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(
    database_url: str | None = None, *, code: Path | None = None, **env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`code`: the checkout whose registry runs (by default the one on the path). It becomes the working
    directory as well as PYTHONPATH: `python -m` puts the working directory first on the path."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="charter-bench-"))
    environ = {
        **os.environ,
        "CHARTER_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{workdir}/charter.db",
        "CHARTER_DEMO": "0",
        "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
        "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
        **env,
    }
    if code is not None:
        environ["PYTHONPATH"] = str(code)
    process = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", "serve", "--port", str(port)],
        env=environ,
        cwd=code,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("charter serve did not start")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def token(url: str) -> str:
    response = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
    response.raise_for_status()
    return response.json()["access_token"]


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of a process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def admin_sql(sql: str) -> None:
    """One statement on the local PostgreSQL as its administrator (databases of a benchmark's own)."""
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def drop_stream(url: str, stream: str) -> None:
    """Remove a benchmark's own JetStream stream, if its servers ever made it."""
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()
