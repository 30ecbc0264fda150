"""NATS restarted under a stream of publishes: the outbox holds events until JetStream takes them, so
none is lost; message ids keep the stream free of duplicates; every replica catches up."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import PG_ADMIN_DSN
from tests.loopback import free_port
from tests.registry.nats_support import (
    admin_headers,
    postgres_url,
    publish,
    replica_env,
    routes,
    stream_events,
    unique_stream,
    wait_until,
)
from tests.registry.support import charter_process

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not shutil.which("nats-server"), reason="no nats-server"),
]
PUBLISHES = 60


class NatsServer:
    """A private `nats-server -js` on a free port, its store in a directory that outlives restarts."""

    def __init__(self, store: Path) -> None:
        self.port = free_port()
        self.store = store
        self.url = f"nats://127.0.0.1:{self.port}"
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        log = (self.store.parent / "nats.log").open("ab")
        self._process = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._listening, timeout=20, every=0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=20)
            self._process = None

    def _listening(self) -> bool:
        import socket

        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    (tmp_path / "jetstream").mkdir()
    server = NatsServer(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def outbox(database_url: str) -> tuple[set[int], int]:
    """Ids of the `contract.published` events in the outbox, and how many rows wait to be relayed."""
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(dsn)
    try:
        published = await conn.fetch("SELECT id FROM outbox_events WHERE topic = 'contract.published'")
        waiting = await conn.fetchval("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL")
        return {row["id"] for row in published}, waiting
    finally:
        await conn.close()


def test_nats_restarted_under_publishes_loses_and_duplicates_nothing(
    nats_server, postgres_database, tmp_path
):
    stream, prefix = unique_stream()
    database_url = postgres_url(postgres_database)
    env = replica_env(database_url, nats_server.url, stream, prefix, str(tmp_path / "signing.pem"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with charter_process(tmp_path / "a", **env) as (a, _), charter_process(tmp_path / "b", **env) as (b, _):
        admin = admin_headers(a)
        team = httpx.post(f"{a}/api/v1/teams", json={"name": "delivery"}, headers=admin, timeout=10)
        assert team.status_code == 201, team.text
        failures: list[BaseException] = []

        def publishes() -> None:
            try:
                for i in range(PUBLISHES):
                    # Both replicas take writes, so both relay.
                    publish(a if i % 2 else b, admin, f"svc-{i}", "1.0.0")
            except BaseException as exc:  # reported by the test thread
                failures.append(exc)

        writer = threading.Thread(target=publishes)
        writer.start()
        wait_until(lambda: failures or routes(b, "svc-3", 1), timeout=60)
        assert not failures, failures
        nats_server.stop()
        # Longer than a relay waits for an acknowledgement: relays fail and retry; publishes go on, their
        # events wait in the outbox.
        time.sleep(6.0)
        nats_server.start()
        writer.join(timeout=300)
        assert not failures, failures

        expected, _ = asyncio.run(outbox(database_url))
        assert len(expected) == PUBLISHES
        wait_until(lambda: asyncio.run(outbox(database_url))[1] == 0, timeout=60, every=0.2)
        for replica in (a, b):
            for i in range(PUBLISHES):
                wait_until(lambda replica=replica, i=i: routes(replica, f"svc-{i}", 1), timeout=60)

    events = asyncio.run(stream_events(nats_server.url, stream, prefix))
    published = [e["id"] for e in events if e["topic"] == "contract.published"]
    assert set(published) == expected  # nothing lost
    assert len(published) == len(set(published))  # nothing stored twice


def test_a_replica_started_while_nats_is_down_serves_and_follows_once_it_answers(postgres_database, tmp_path):
    (tmp_path / "jetstream").mkdir()
    server = NatsServer(tmp_path / "jetstream")  # not started yet
    stream, prefix = unique_stream()
    env = replica_env(
        postgres_url(postgres_database), server.url, stream, prefix, str(tmp_path / "signing.pem")
    )
    (tmp_path / "a").mkdir()
    try:
        with charter_process(tmp_path / "a", **env) as (a, _):
            admin = admin_headers(a)
            team = httpx.post(f"{a}/api/v1/teams", json={"name": "delivery"}, headers=admin, timeout=10)
            assert team.status_code == 201, team.text
            publish(a, admin, "late", "1.0.0")  # its event waits in the outbox
            server.start()
            wait_until(lambda: routes(a, "late", 1), timeout=60)
            publish(a, admin, "later", "1.0.0")
            wait_until(lambda: routes(a, "later", 1), timeout=60)
        events = asyncio.run(stream_events(server.url, stream, prefix))
        assert [e["payload"]["api"] for e in events if e["topic"] == "contract.published"] == [
            "late",
            "later",
        ]
    finally:
        server.stop()
