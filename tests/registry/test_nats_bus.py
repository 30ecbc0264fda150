"""The relay's publishes on the machine's NATS JetStream, one private stream per test."""

from __future__ import annotations

import datetime as dt

import pytest

from registry.events import Event, InProcessBus
from registry.nats_bus import JetStreamEvents
from tests.registry.nats_support import SHARED_NATS, delete_stream, stream_events, unique_stream


@pytest.fixture
async def jetstream():
    stream, prefix = unique_stream()
    events = JetStreamEvents(SHARED_NATS, stream=stream, subject_prefix=prefix, bus=InProcessBus())

    async def nothing_cached() -> None:
        return None

    await events.start(nothing_cached)
    try:
        yield events
    finally:
        await events.aclose()
        await delete_stream(SHARED_NATS, stream)


async def test_a_recreated_database_reusing_row_ids_is_not_taken_for_a_replay(jetstream):
    before = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    first = Event(id=1, topic="contract.published", at=before, payload={"api": "projects"})
    # The same outbox row published again (a relay that crashed before marking it): stored once.
    await jetstream.publish(first)
    await jetstream.publish(first)
    # The database was recreated (or restored) while the stream lived on: row 1 is a new event.
    again = Event(
        id=1, topic="contract.published", at=before + dt.timedelta(hours=1), payload={"api": "ledger"}
    )
    await jetstream.publish(again)

    stored = await stream_events(SHARED_NATS, jetstream.stream, jetstream.prefix)
    assert [event["payload"]["api"] for event in stored] == ["projects", "ledger"]
