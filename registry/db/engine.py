"""Engine and sessions for SQLite (embedded default) or PostgreSQL, and migrations on start."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from registry.secret_box import SecretBox

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


WRITE = {"charter_write": True}

# PostgreSQL: how long opening a connection, one statement, and waiting for a free pooled connection
# may take. asyncpg waits 60 s to connect by default and statements have no limit, so a server that
# stops answering (frozen, or a network that drops packets) would hold requests for as long as the
# client waits; past these a request answers 503 instead. A statement waiting for a row lock that a
# concurrent publish holds is one statement too: 30 s is far above any publish measured here.
CONNECT_TIMEOUT_SECONDS = 5.0
STATEMENT_TIMEOUT_SECONDS = 30.0
POOL_TIMEOUT_SECONDS = 10.0
# The advisory lock that replicas take in turn to migrate one PostgreSQL database (any fixed number).
MIGRATION_LOCK = 0x636861727465
# The one that replicas take in turn to load the demo.
DEMO_LOCK = 0x636861727466


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    # pre-ping: a connection that a database restart broke is found and replaced at checkout, so
    # the first request after the restart does not fail on it.
    return create_async_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={"timeout": CONNECT_TIMEOUT_SECONDS, "command_timeout": STATEMENT_TIMEOUT_SECONDS},
    )


# asyncpg's errors that say the server cannot serve now: it refuses connections (starting up,
# shutting down, too many clients), it ended the session (admin shutdown, crash, a statement
# cancelled) or the connection broke. (Its InterfaceError is not one: "another operation is in
# progress" is a bug; a closed connection shows as an invalidated one.)
_ASYNCPG_UNAVAILABLE = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def database_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database cannot answer now, rather than that a statement is wrong.

    Opening a connection raises the socket's own errors (refused, reset, timed out) unwrapped; a
    statement on a broken connection raises a DBAPIError whose connection SQLAlchemy invalidated;
    the pool raises its TimeoutError when every connection stays checked out too long.
    """
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror | exc.TimeoutError):
        return True
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        cause = error.orig.__cause__ if error.orig is not None else None
        return isinstance(error.orig, _ASYNCPG_UNAVAILABLE) or isinstance(
            cause, (*_ASYNCPG_UNAVAILABLE, ConnectionError, TimeoutError)
        )
    return False


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout makes a second writer wait
    # for the lock instead of failing at once with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins (see _sqlite_begin).
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with "database is locked"
    # when another writer committed in between (no busy wait for a snapshot upgrade). Writers
    # therefore take the write lock up front; readers stay deferred and run beside them (WAL).
    if connection.get_execution_options().get("charter_write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql("BEGIN")


async def begin_write(session: AsyncSession) -> None:
    """Start the session's transaction as a writer; call before the first query of a write.

    Inside a transaction that is already a writer this does nothing; inside a reader it is a bug.
    """
    if session.in_transaction():
        connection = await session.connection()
        if not connection.sync_connection.get_execution_options().get("charter_write"):
            raise RuntimeError("begin_write() called inside a read transaction")
        return
    await session.connection(execution_options=WRITE)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # A Session class of its own per factory, so that session events (the outbox relay listens for
    # commits) concern this application only.
    sync_session_class = type("CharterSession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=sync_session_class)


def alembic_config(connection: Connection | None = None, secret_box: SecretBox | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    # Data migrations that seal stored secrets use it.
    config.attributes["secret_box"] = secret_box
    return config


async def migrate(engine: AsyncEngine, secret_box: SecretBox | None = None) -> None:
    """Bring the schema to the newest migration; safe to run on every start."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection, secret_box), "head")

    if engine.dialect.name != "postgresql":
        async with engine.begin() as connection:
            await connection.run_sync(upgrade)
        return
    # A connection of its own, without the statement timeout: a data migration may take minutes.
    migrating = create_async_engine(
        engine.url, poolclass=NullPool, connect_args={"timeout": CONNECT_TIMEOUT_SECONDS}
    )
    try:
        async with migrating.begin() as connection:
            # Replicas starting together on a fresh database would each create the schema, and all
            # but one fail on duplicate tables: they take turns, and the later ones find it done.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            await connection.run_sync(upgrade)
    finally:
        await migrating.dispose()


@asynccontextmanager
async def one_at_a_time(engine: AsyncEngine, key: int) -> AsyncIterator[None]:
    """Processes sharing PostgreSQL run the body in turn (a session advisory lock on a connection of
    its own, so the body may commit as often as it likes); on SQLite, one process's file, at once."""
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as connection:
        # Polled rather than waited for: a wait longer than the statement timeout would fail.
        while not await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
            await connection.rollback()
            await asyncio.sleep(0.1)
        await connection.commit()
        try:
            yield
        finally:
            await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            await connection.commit()
