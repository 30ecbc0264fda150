"""How DBOS connects to its system database: the engine settings Charter gives it on PostgreSQL.

DBOS records each step of a run in two transactions of its own; what its connections do around
them is ours to configure (DBOS's `db_engine_kwargs`, documented in `DBOSConfig`):

- No ping before each transaction. DBOS's default engine pings every connection it takes from its
  pool (`pool_pre_ping`, a `SELECT 1` round trip), which is two of a step's ten round trips. A
  connection that died meanwhile (the database restarted) fails its first statement instead; DBOS
  retries every system-database operation on a connection error (`db_retry`), and SQLAlchemy then
  replaces the pool's connections, so the operation succeeds on a fresh one.
- `synchronous_commit` (PostgreSQL), for DBOS's connections only: `off` stops each checkpoint's
  commit waiting for its WAL flush. A crash of the database server (not of Charter) may then lose
  the checkpoints of the last moments (at most three times `wal_writer_delay`, 600 ms by default):
  those steps run again when the run resumes, as if Charter had died before recording them. Steps
  already tolerate that (they are at-least-once, with an idempotency key per step); a run never
  skips a step, and nothing is lost but the repeated work. The registry's own data (the catalog, the
  run index, the outbox) keeps the server's setting.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import make_url

DBOS_APPLICATION_NAME = "dbos_transact"  # DBOS's own default, which our connect_args replace


class SystemDatabaseSettings(msgspec.Struct, frozen=True, kw_only=True):
    synchronous_commit: bool = True  # False: checkpoints commit without waiting for the WAL flush
    pool_size: int | None = None  # DBOS's connections to its system database (its default: 20)
    pre_ping: bool = False  # ping each connection before use (DBOS's default; see above)
    one_statement_check: bool = True  # DBOS's check before a step in one round trip (see step_check)


def dbos_engine_config(system_database_url: str, settings: SystemDatabaseSettings) -> dict[str, Any]:
    """The entries of DBOS's configuration that set up its system database engine."""
    config: dict[str, Any] = {}
    if settings.pool_size is not None:
        config["sys_db_pool_size"] = settings.pool_size
    if make_url(system_database_url).get_backend_name() != "postgresql":
        return config  # SQLite: DBOS's own settings (its pool and sync are of a file)
    # DBOS merges these over its defaults key by key, replacing `connect_args` whole.
    connect_args: dict[str, Any] = {"application_name": DBOS_APPLICATION_NAME}
    if not settings.synchronous_commit:
        connect_args["options"] = "-c synchronous_commit=off"
    config["db_engine_kwargs"] = {"pool_pre_ping": settings.pre_ping, "connect_args": connect_args}
    return config
