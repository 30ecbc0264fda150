"""Fixtures shared by every test package: the corpus, and databases (SQLite and the real PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest


def _find_corpus() -> Path:
    """The shared corpus sits beside the checkout; a clone elsewhere names it by CHARTER_CORPUS."""
    if configured := os.environ.get("CHARTER_CORPUS"):
        return Path(configured)
    beside = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    return beside if beside.is_dir() else Path("/work/shared/corpus")


CORPUS = _find_corpus()
DATA = Path(__file__).parent / "data"
PG_ADMIN_DSN = os.environ.get("CHARTER_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def corpus(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"corpus file {path} is missing; set CHARTER_CORPUS to the shared corpus directory")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of our own on the local server, dropped at the end of the session."""
    name = f"charter_test_{os.getpid()}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}"'))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    yield name
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def reset_postgres(name: str) -> None:
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(dsn)
    try:
        # `dbos` holds the flow engine's runs (workflow ids derive from idempotency keys).
        await conn.execute(
            "DROP SCHEMA IF EXISTS dbos CASCADE; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"
        )
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/charter.db"
    name = request.getfixturevalue("postgres_database")
    asyncio.run(reset_postgres(name))
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{name}"
