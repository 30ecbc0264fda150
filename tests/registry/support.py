"""Helpers for registry tests: settings of the test deployment and tokens from its issuer."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from registry.settings import Settings
from tests.loopback import free_port

ADMIN = ("admin", "admin-secret")
# Clients of the test deployment: a publisher in the `delivery` team, a reader, an outsider.
CLIENTS = [
    {
        "client_id": "delivery-ci",
        "client_secret": "delivery-secret",
        "scopes": ["registry:read", "registry:write"],
    },
    {"client_id": "reader", "client_secret": "reader-secret", "scopes": ["registry:read"]},
    {
        "client_id": "finance-ci",
        "client_secret": "finance-secret",
        "scopes": ["registry:read", "registry:write"],
    },
]


# Tests run their upstreams and webhook receivers on loopback: the operator's allow-list names it.
LOOPBACK = "127.0.0.0/8,::1"
# One fixed key, so that several apps over one database (and PostgreSQL) read each other's secrets.
SECRETS_KEY = "kGj7tA5tqQW3G1u0c2V0aXmXb7m8Hq0l7v9yZ1pXcVo="


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "public_url": "http://testserver.local",
        "admin_client_id": ADMIN[0],
        "admin_client_secret": ADMIN[1],
        "clients_json": json.dumps(CLIENTS),
        "demo": False,
        "egress_allow": LOOPBACK,
        "secrets_key": SECRETS_KEY,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def fetch_token(client: AsyncTestClient, client_id: str, secret: str, scope: str | None = None) -> str:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    form = {"grant_type": "client_credentials"}
    if scope:
        form["scope"] = scope
    response = await client.post("/oauth/token", data=form, headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def charter(*args: str, url: str, secret: str = "admin-secret", **env: str) -> subprocess.CompletedProcess:
    environ = {
        **{k: v for k, v in os.environ.items() if k != "CHARTER_TOKEN"},
        "CHARTER_URL": url,
        "CHARTER_CLIENT_ID": "admin",
        "CHARTER_CLIENT_SECRET": secret,
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "registry.cli", *args], env=environ, capture_output=True, text=True, timeout=60
    )


@contextmanager
def charter_server(workdir: Path, **env: str) -> Iterator[str]:
    """A real `charter serve` on loopback (SQLite in `workdir`, no demo, CHARTER_* from `env`, which may
    name another `database_url`); its output goes to `workdir/server.log`, shown if it fails to start."""
    with charter_process(workdir, **env) as (url, _):
        yield url


@contextmanager
def charter_process(
    workdir: Path, *, python_path: str | None = None, port: int | None = None, **env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`charter_server`, with its process (for tests that kill it) and more import paths for it; on
    `port` when the test must know its URL beforehand (say, to register it with a provider)."""
    port = port or free_port()
    environ = {
        **os.environ,
        "CHARTER_DATABASE_URL": f"sqlite+aiosqlite:///{workdir}/charter.db",
        "CHARTER_DEMO": "0",
        "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
        "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
        # Replicas of one deployment name one public URL, the tokens' issuer: left to derive it from
        # its own port, each would refuse the tokens of the others.
        "CHARTER_PUBLIC_URL": "http://charter.test",
        **{f"CHARTER_{name.upper()}": value for name, value in env.items()},
    }
    if python_path:
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [python_path, environ.get("PYTHONPATH")]))
    log_path = workdir / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry.cli", "serve", "--port", str(port)],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                pytest.fail(f"charter serve did not start: {log_path.read_text()[-2000:]}")
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=30)
