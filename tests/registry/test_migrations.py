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


async def test_scopes_of_versions_stored_before_ownership_are_indexed(database_url, client, published):
    """Revision 0010 reads the scopes of every stored, unretired version out of its document."""
    from alembic import command
    from sqlalchemy import select

    from registry.db.engine import alembic_config
    from registry.db.models import VersionScope

    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0009"))
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
            rows = (await connection.execute(select(VersionScope.version_id, VersionScope.scope))).all()
    finally:
        await engine.dispose()
    assert len({version for version, _ in rows}) == len(published)
    assert {scope for _, scope in rows} == {"projects:read", "projects:write"}


async def test_versions_stored_before_contract_words_were_indexed_are_found_by_them(
    database_url, client, published, reader_headers
):
    """Revision 0018 indexes the schema and property names of stored versions, and fills an API's
    empty description from its latest contract."""
    from alembic import command
    from sqlalchemy import text

    from registry.db.engine import alembic_config

    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.downgrade(alembic_config(sync), "0017"))
            # As an earlier release left them: operation words only, no description taken.
            await connection.execute(text("UPDATE api_versions SET search_text = 'listProjects'"))
            await connection.execute(text("UPDATE apis SET description = NULL"))
            await connection.execute(text("DELETE FROM api_search"))
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
    finally:
        await engine.dispose()
    found = await client.get("/api/v1/search", params={"q": "Project client"}, headers=reader_headers)
    assert [hit["name"] for hit in found.json()["items"]] == ["projects"]
    api = (await client.get("/api/v1/apis/projects", headers=reader_headers)).json()
    assert api["description"] == "Projects 2.0.0"
