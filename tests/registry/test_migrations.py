"""Migrations: applied on start, idempotent, and in step with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from registry.db.engine import create_engine, migrate
from registry.db.models import Base


async def test_migrations_match_the_models_and_run_twice(database_url):
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        await migrate(engine)
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
        # The full-text table is created by hand in the migration and has no model.
        diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("api_search"))]
        diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name == "ix_api_search_tsv")]
        assert diff == []
    finally:
        await engine.dispose()
