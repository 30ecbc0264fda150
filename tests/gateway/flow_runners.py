"""A flow runner on its own, as `charter serve` makes it, on a database of the tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.flows import Flow
from gateway.flows.runner import FlowRunner
from gateway.flows.system_database import SystemDatabaseSettings
from registry.db.engine import create_engine, migrate, session_factory
from registry.flows import SqlRunIndex, flow_system_database
from tests.conftest import PG_ADMIN_DSN, reset_postgres


async def postgres_url(database: str) -> str:
    """The test database `database`, emptied, as the registry names it."""
    await reset_postgres(database)
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://postgres@{host}/{database}"


@asynccontextmanager
async def running(
    flows: Mapping[str, Flow],
    database_url: str,
    system_database: SystemDatabaseSettings | None = None,
    executor_id: str = "local",
) -> AsyncIterator[tuple[FlowRunner, AsyncEngine]]:
    """A started runner of `flows` (steps get no system client) and the registry's engine."""
    engine = create_engine(database_url)
    await migrate(engine)
    runner = FlowRunner(
        flows,
        index=SqlRunIndex(session_factory(engine)),
        client_factory=lambda *args: object(),  # type: ignore[arg-type,return-value]
        system_database_url=flow_system_database(database_url),
        system_database=system_database,
        executor_id=executor_id,
    )
    await runner.start()
    try:
        yield runner, engine
    finally:
        await runner.stop()
        await engine.dispose()
