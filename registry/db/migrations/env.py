"""Alembic environment: runs on the connection that registry.db.engine.migrate hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from registry.db.models import Base

connection = context.config.attributes.get("connection")


def run(conn) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=conn.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    # `alembic revision --autogenerate` from a shell: CHARTER_DATABASE_URL with a sync driver.
    import os

    url = os.environ.get("CHARTER_ALEMBIC_URL", "sqlite:///./charter-alembic.db")
    with create_engine(url).connect() as conn:
        run(conn)
        conn.commit()
