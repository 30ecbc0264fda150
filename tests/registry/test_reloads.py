"""Reloads that follow announcements: which parts an announcement reloads, and how a burst coalesces."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from registry.events import Event
from registry.gateway_source import routed_apis
from registry.reloads import ScopedReload

log = logging.getLogger("tests.reloads")


def event(topic: str, **payload: object) -> Event:
    return Event(id=1, topic=topic, at=dt.datetime.now(dt.UTC), payload=payload)


def test_announcements_name_the_routes_they_change():
    assert routed_apis(event("contract.published", api="billing", version="1.2.0")) == {"billing"}
    assert routed_apis(event("contract.retired", api="billing")) == {"billing"}
    assert routed_apis(event("api.updated", api="projects")) == {"projects"}
    assert routed_apis(event("api.updated")) is None  # a routing change naming no API: everything
    assert routed_apis(event("contract.published", api=7)) is None
    assert routed_apis(event("client.registered", client_id="x")) == frozenset()
    assert routed_apis(event("invoice.issued", api="billing")) == frozenset()  # a flow's business event


class Recorder:
    """A reload that records what it was asked for and can be held or made to fail."""

    def __init__(self) -> None:
        self.calls: list[frozenset[str] | None] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail = False

    async def __call__(self, names: frozenset[str] | None) -> None:
        self.calls.append(names)
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("database gone")


def scoped(recorder: Recorder) -> ScopedReload:
    return ScopedReload(recorder, scope=routed_apis, name="test-reload", log=log, failure="reload failed")


async def test_names_announced_during_a_reload_are_reloaded_together_next():
    recorder = Recorder()
    reload = scoped(recorder)
    recorder.gate.clear()
    await reload.on_event(event("contract.published", api="a"))
    await asyncio.sleep(0)
    for name in ("b", "c", "b"):
        await reload.on_event(event("contract.published", api=name))
    await reload.on_event(event("consumer.registered", api="d"))  # not a routing change
    recorder.gate.set()
    await reload.wait()
    assert recorder.calls == [{"a"}, {"b", "c"}]


async def test_an_unnamed_change_or_a_gap_reloads_everything():
    recorder = Recorder()
    reload = scoped(recorder)
    recorder.gate.clear()
    await reload.on_event(event("contract.published", api="a"))
    await asyncio.sleep(0)
    await reload.on_event(event("contract.published", api="b"))
    await reload.on_event(event("api.updated"))
    recorder.gate.set()
    await reload.wait()
    assert recorder.calls == [{"a"}, None]

    reload.resync()
    await reload.wait()
    assert recorder.calls[-1] is None


async def test_after_a_failed_reload_the_next_one_is_full():
    recorder = Recorder()
    reload = scoped(recorder)
    recorder.fail = True
    await reload.on_event(event("contract.published", api="a"))
    await reload.wait()
    recorder.fail = False
    await reload.on_event(event("contract.published", api="b"))
    await reload.wait()
    assert recorder.calls == [{"a"}, None]


async def test_a_change_announced_during_a_failed_reload_is_loaded_at_once_in_full():
    recorder = Recorder()
    reload = scoped(recorder)
    recorder.gate.clear()
    recorder.fail = True
    await reload.on_event(event("contract.published", api="a"))
    await asyncio.sleep(0)
    await reload.on_event(event("contract.published", api="b"))
    recorder.gate.set()

    async def retried() -> None:
        while len(recorder.calls) < 2:
            await asyncio.sleep(0)

    await asyncio.wait_for(retried(), timeout=5)  # the failed reload ends and the next one starts
    recorder.fail = False
    await reload.wait()
    assert recorder.calls == [{"a"}, None]  # no later announcement needed to load b
