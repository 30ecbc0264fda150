"""How DBOS works with its system database: the settings Charter gives it (PostgreSQL mostly).

DBOS records each step of a run in two transactions of its own; what its connections and threads
do around them is ours to configure (`DBOSConfig`: `db_engine_kwargs`, `max_executor_threads`):

- No ping before each transaction. DBOS's default engine pings every connection it takes from its
  pool (`pool_pre_ping`, a `SELECT 1` round trip), two of a step's ten round trips. A connection
  that died meanwhile (the database restarted) fails its first statement instead; DBOS retries
  every system-database operation on a connection error (`db_retry`), and SQLAlchemy then replaces
  the pool's connections (tests/faults/test_postgres_restart.py: a run in flight across a restart).
- `synchronous_commit` for DBOS's connections only: `off` stops each checkpoint's commit waiting
  for its WAL flush. Only a crash of the database server (not of Charter) can lose such commits,
  those of its last moments (at most three `wal_writer_delay`, 600 ms by default), and what it loses
  is bounded by what Charter has said: the registry's database is the same PostgreSQL cluster with
  one WAL, and its commits keep the server's setting, so the run index's write that answers a
  caller (a run settling, or a 202 with the run's address) flushes every DBOS checkpoint before it.
  What a crash can lose is the last steps of runs in flight: they run again when the run resumes,
  as if Charter had died before recording them, which steps tolerate (at least once, with an
  idempotency key per step). A run never skips a step.
- At most 16 threads for DBOS's database calls (DBOS's default is no limit). Each call of an async
  workflow runs in a thread of DBOS's executor, so a burst of runs (recovery resumes all of them at
  once) made hundreds of threads that mostly waited for one of the pool's 20 connections while
  contending for the GIL: recovering 1,000 runs cost 24% less CPU with 16 (bench.flows
  `--recovery 1000 --settings async` against `async+threads=16`). Fewer threads than connections
  leave connections for DBOS's own background work (its queue, notifications).
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
    executor_threads: int | None = 16  # DBOS's threads (see above); None: DBOS's default, no limit
    # Recovered runs one process executes at once (see FlowRunner._limit_recovery). A process takes
    # more at each of its polls of DBOS's queue, 50 ms apart while it recovers (FlowRunner._poll_fast),
    # so the limit spreads runs over processes without holding back one that has a core to spare.
    recovery_concurrency: int | None = 250
    batched_recovery: bool = True  # DBOS's recovery at launch in batches (see startup_recovery)


def dbos_engine_config(system_database_url: str, settings: SystemDatabaseSettings) -> dict[str, Any]:
    """The entries of DBOS's configuration that set up its system database engine."""
    config: dict[str, Any] = {}
    if settings.executor_threads is not None:
        config["max_executor_threads"] = settings.executor_threads
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
