"""Replicas of `charter serve` on the shared PostgreSQL and a NATS server, for the events tests."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import nats
from nats.js.api import DeliverPolicy

from tests.conftest import PG_ADMIN_DSN, reset_postgres
from tests.registry.support import ADMIN, SECRETS_KEY
from tests.samples import projects

SHARED_NATS = "nats://127.0.0.1:4222"


def unique_stream() -> tuple[str, str]:
    """A stream name and subject prefix no concurrent run uses (stream subjects may not overlap)."""
    tag = uuid.uuid4().hex[:12]
    return f"CHARTER_TEST_{tag}", f"charter-test-{tag}"


def postgres_url(name: str) -> str:
    asyncio.run(reset_postgres(name))
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{name}"


def replica_env(database_url: str, nats_url: str, stream: str, prefix: str, key_file: str) -> dict[str, str]:
    return {
        "database_url": database_url,
        "nats_url": nats_url,
        "nats_stream": stream,
        "nats_subject_prefix": prefix,
        "signing_key_file": key_file,  # one issuer key, so that a token from one replica passes another
        "secrets_key": SECRETS_KEY,
        "access_log": "0",
        "egress_allow": "127.0.0.0/8",
    }


def token(url: str, client_id: str, secret: str) -> httpx.Response:
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )


def admin_headers(url: str) -> dict[str, str]:
    response = token(url, *ADMIN)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def publish(url: str, headers: dict[str, str], api: str, version: str, owner: str = "delivery") -> None:
    """Publish a version of `api` that needs no token and has no adapter: once routed, the gateway
    answers 503 no-adapter where it answered 404 before."""
    doc = projects(version)
    doc["security"] = []
    response = httpx.post(
        f"{url}/api/v1/apis/{api}/versions",
        content=json.dumps(doc),
        params={"owner": owner},
        headers={**headers, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 201, response.text


def routes(url: str, api: str, major: int) -> bool:
    response = httpx.get(f"{url}/gw/{api}/v{major}/projects", timeout=10)
    if response.status_code == 404:
        return False
    assert (response.status_code, response.json()["type"]) == (503, "/problems/no-adapter"), response.text
    return True


def wait_until(condition: Callable[[], bool], *, timeout: float = 20.0, every: float = 0.01) -> float:
    """Poll `condition` until true; returns the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {condition}")
        time.sleep(every)
    return time.monotonic() - start


async def stream_events(nats_url: str, stream: str, prefix: str) -> list[dict[str, Any]]:
    """Every message the stream holds, decoded, in stream order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        sub = await js.subscribe(
            f"{prefix}.>", stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
        )
        out: list[dict[str, Any]] = []
        while len(out) < last:
            msg = await sub.next_msg(timeout=10)
            out.append(
                json.loads(msg.data) | {"_subject": msg.subject, "_msg_id": msg.headers.get("Nats-Msg-Id")}
            )
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def delete_stream(nats_url: str, stream: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()
