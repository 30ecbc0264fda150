"""Replicas of `charter serve` on one private PostgreSQL, racing each other and dying under load.

Two replicas publishing one version with different content at the same instant: one wins (2xx),
the other gets 409 problem+json, never a 500, and the stored document is the winner's. A replica
killed with SIGKILL in the middle of publishes loses none that it acknowledged. (Flow runs that a
killed replica leaves are taken over by a survivor: tests/gateway/test_flows_takeover.py.)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.synchronize
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from policies.auth.keys import load_or_create_signing_key
from registry.db.engine import create_engine, migrate
from tests.faults.deployment import (
    VERSIONS,
    admin_headers,
    create_api,
    edition,
    is_problem,
    replica_env,
    started_together,
    until,
)
from tests.faults.servers import PrivatePostgres
from tests.registry.support import charter_process

ROUNDS = 25


@dataclass
class Replicas:
    urls: tuple[str, str]
    headers: dict[str, str]
    database_url: str
    dsn: str
    root: Path


@pytest.fixture(scope="module")
def replicas(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    database = private_postgres.create_database()
    database_url = private_postgres.url(database)
    workdirs = [root / "a", root / "b"]
    for workdir in workdirs:
        workdir.mkdir()
    # Started at once on a fresh database and a fresh signing key file, as a deployment of two
    # replicas starts: both migrate the schema and create the key; one does, the other uses it.
    processes = [charter_process(workdir, **replica_env(database_url, workdir)) for workdir in workdirs]
    with started_together(*processes) as started:
        urls = [url for url, _ in started]
        headers = admin_headers(urls[0])
        with httpx.Client(base_url=urls[0], timeout=30) as client:
            create_api(client, headers)
        yield Replicas((urls[0], urls[1]), headers, database_url, private_postgres.dsn(database), root)


def _create_key_at_the_barrier(path: str, barrier: multiprocessing.synchronize.Barrier) -> str:
    barrier.wait()
    return load_or_create_signing_key(path).kid


def test_replicas_creating_the_signing_key_file_at_once_all_start_with_one_key(tmp_path: Path) -> None:
    """Replicas started together on a fresh volume each create CHARTER_SIGNING_KEY_FILE: none fails
    on the file another created a moment before, and all sign with the same key."""
    path = str(tmp_path / "signing.pem")
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager:
        barrier = manager.Barrier(4)
        with context.Pool(4) as pool:
            kids = pool.starmap(_create_key_at_the_barrier, [(path, barrier)] * 4)
    assert len(set(kids)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signing.pem"]


def test_replicas_starting_together_on_a_fresh_database_migrate_it_once(
    private_postgres: PrivatePostgres,
) -> None:
    """Each replica brings the schema to the newest migration on start; on a fresh database two
    starting at once must not both create it (the loser would exit with a duplicate-table error)."""
    url = private_postgres.url(private_postgres.create_database())

    async def start_together() -> None:
        engines = [create_engine(url) for _ in range(3)]
        try:
            await asyncio.gather(*(migrate(engine) for engine in engines))
        finally:
            for engine in engines:
                await engine.dispose()

    asyncio.run(start_together())


def test_one_version_published_at_once_on_two_replicas_stores_the_winner(replicas: Replicas) -> None:
    barrier = threading.Barrier(2, timeout=30)
    answers: list[list[httpx.Response]] = [[], []]
    documents = [[edition(f"2.{n}.0", f"replica {side}") for n in range(ROUNDS)] for side in (0, 1)]

    def publisher(side: int) -> None:
        with httpx.Client(base_url=replicas.urls[side], timeout=60) as client:
            client.get("/health")  # a warm connection, so that both requests leave at the barrier
            for document in documents[side]:
                barrier.wait()
                answers[side].append(client.post(VERSIONS, content=document, headers=replicas.headers))

    threads = [threading.Thread(target=publisher, args=(side,)) for side in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    with httpx.Client(timeout=30) as client:
        for n in range(ROUNDS):
            pair = answers[0][n], answers[1][n]
            statuses = sorted(r.status_code for r in pair)
            assert statuses == [201, 409], [r.text for r in pair]
            loser = next(r for r in pair if r.status_code == 409)
            assert is_problem(loser, 409) and loser.json()["type"] == "/problems/version-conflict"
            winner = 0 if pair[0].status_code == 201 else 1
            # Read from the replica that lost: it serves what the winner stored.
            stored = client.get(f"{replicas.urls[1 - winner]}{VERSIONS}/2.{n}.0", headers=replicas.headers)
            assert stored.status_code == 200, stored.text
            assert stored.content == documents[winner][n]


def test_no_publish_acknowledged_by_a_replica_killed_with_sigkill_is_lost(replicas: Replicas) -> None:
    survivor = replicas.urls[0]
    workdir = replicas.root / "victim"
    workdir.mkdir()
    acknowledged: dict[str, bytes] = {}
    stop = threading.Event()

    def publish_in_a_loop(url: str, major: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for n in range(10_000):
                if stop.is_set():
                    return
                version = f"{major}.{n}.0"
                document = edition(version)
                try:
                    response = client.post(VERSIONS, content=document, headers=replicas.headers)
                except httpx.TransportError:
                    return  # the replica is gone; the request in flight was never acknowledged
                assert response.status_code == 201, response.text
                acknowledged[version] = document

    with charter_process(workdir, **replica_env(replicas.database_url, workdir)) as (victim, process):
        publishers = [
            threading.Thread(target=publish_in_a_loop, args=(victim, 3)),
            threading.Thread(target=publish_in_a_loop, args=(survivor, 4)),
        ]
        for thread in publishers:
            thread.start()
        try:
            until(lambda: sum(v.startswith("3.") for v in acknowledged) >= 5, "the victim acknowledged some")
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            on_survivor = sum(v.startswith("4.") for v in acknowledged)
            until(
                lambda: sum(v.startswith("4.") for v in acknowledged) >= on_survivor + 5, "survivor goes on"
            )
        finally:
            stop.set()
            for thread in publishers:
                thread.join(timeout=60)

    with httpx.Client(base_url=survivor, timeout=30) as client:
        for version, document in acknowledged.items():
            stored = client.get(f"{VERSIONS}/{version}", headers=replicas.headers)
            assert stored.status_code == 200, (version, stored.text)
            assert stored.content == document

    # The events of the victim's last commits are in the shared outbox: the survivor relays them.
    until(lambda: pending_events(replicas.dsn) == 0, "the survivor relayed the victim's events")


def pending_events(dsn: str) -> int:
    async def count() -> int:
        connection = await asyncpg.connect(dsn)
        try:
            return await connection.fetchval("SELECT count(*) FROM outbox_events WHERE relayed_at IS NULL")
        finally:
            await connection.close()

    return asyncio.run(count())
