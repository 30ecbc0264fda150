"""A run as operators see it, and the index that stores it and sends its events (implemented by
the host, e.g. the registry).

The durable engine keeps what it needs to resume a run; the index keeps what people search for:
state, business keys, each step's attempts and error, the answer. The runner writes whole records
(idempotent upserts), many runs in one batch (see `progress`), so a run recovered after a crash
rewrites the same record.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec


class RunState(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # parked: waits for an operator's retry or cancel
    CANCELLED = "cancelled"
    COMPENSATED = "compensated"


FINISHED = frozenset({RunState.SUCCEEDED, RunState.CANCELLED, RunState.COMPENSATED})


class StepRun(msgspec.Struct, kw_only=True):
    name: str
    state: str = "pending"  # pending, running, succeeded, failed, compensated, skipped
    attempts: int = 0
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    error: dict[str, Any] | None = None  # {"message", "status", "problem"}
    output_summary: str | None = None


class RunRecord(msgspec.Struct, kw_only=True):
    id: str
    flow: str
    state: RunState
    keys: dict[str, str]
    created_at: dt.datetime
    updated_at: dt.datetime
    steps: list[StepRun]
    input: dict[str, Any]
    outputs: dict[str, Any] = {}
    failed_step: str | None = None
    result: dict[str, Any] | None = None  # {"status", "body", "headers"} once succeeded
    trace_id: str = ""
    consumer: str | None = None
    operation: str | None = None
    request_hash: str | None = None  # of the request an Idempotency-Key was sent with
    replay_of: str | None = None


class RunQuery(msgspec.Struct, kw_only=True):
    flow: str | None = None
    state: RunState | None = None
    key: str | None = None  # a business key value, exactly (of any key, or of the one named `key_name`)
    key_name: str | None = None  # alone: runs that have this business key
    flows: frozenset[str] | None = None  # only runs of these flows
    since: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


class RunWrite(msgspec.Struct):
    record: RunRecord
    events: Sequence[tuple[str, dict[str, Any]]] = ()


class RunIndex(Protocol):
    async def save_many(self, writes: Sequence[RunWrite]) -> None:
        """Insert or replace each run (its `created_at` stays the first one stored), and send their
        `events` (topic, payload) if and only if the records are stored: through the host's outbox.
        All or nothing."""
        ...

    async def close(self) -> None:
        """Release what writing holds (the runner has stopped writing)."""
        ...

    async def get(self, run_id: str) -> RunRecord | None: ...

    async def search(self, query: RunQuery) -> tuple[list[RunRecord], int]: ...

    async def counts(self) -> dict[str, dict[str, int]]:
        """Runs by flow and state."""
        ...
