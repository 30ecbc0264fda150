"""Reloads that follow announcements: which parts an announcement reloads, and how a burst coalesces."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.source import ContractApi
from registry.db.engine import create_engine, session_factory
from registry.event_contracts import EventContracts
from registry.events import Event
from registry.gateway_source import RegistryContracts, routed_apis
from registry.reloads import ScopedReload
from tests.gateway.conftest import settled
from tests.samples import JSON_HEADERS, as_json, projects

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


def held_sessions(database_url: str, read: asyncio.Event, release: asyncio.Event) -> async_sessionmaker:
    """Sessions on the registry's database whose first query answers, then waits for `release`: the
    reload that runs it has read its snapshot and is held before it applies it."""

    class HeldSession(AsyncSession):
        async def execute(self, *args: Any, **kwargs: Any) -> Any:
            result = await super().execute(*args, **kwargs)
            if not read.is_set():
                read.set()
                await release.wait()
            return result

    return async_sessionmaker(create_engine(database_url), class_=HeldSession, expire_on_commit=False)


def asyncapi(address: str) -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": {"title": address, "version": "1.0.0"},
        "channels": {"events": {"address": address, "messages": {"event": {"payload": {"type": "object"}}}}},
        "operations": {"send": {"action": "send", "channel": {"$ref": "#/channels/events"}}},
    }


async def test_an_event_contracts_reload_that_read_earlier_never_replaces_a_later_one(
    client, publisher_headers, database_url
):
    read, release = asyncio.Event(), asyncio.Event()
    sessions = held_sessions(database_url, read, release)
    contracts = EventContracts(sessions)
    earlier = asyncio.create_task(contracts.reload())
    await read.wait()  # it read the database before the contract below was published

    published = await client.post(
        "/api/v1/apis/stock-events/versions",
        content=as_json(asyncapi("stock.low")),
        headers={**publisher_headers, **JSON_HEADERS},
        params={"owner": "delivery"},
    )
    assert published.status_code == 201, published.text
    await contracts.reload()  # as the announcement of that publish makes it
    assert contracts.catalog.covers("stock.low")

    release.set()
    await earlier
    await sessions.kw["bind"].dispose()
    assert contracts.catalog.covers("stock.low")


class HeldSource:
    """The registry's contracts, read on the test's own engine; a load answers, then waits for `release`."""

    def __init__(self, database_url: str, read: asyncio.Event, release: asyncio.Event) -> None:
        self.engine = create_engine(database_url)
        self._contracts = RegistryContracts(session_factory(self.engine))
        self._read, self._release = read, release

    async def load(self, names: Collection[str] | None = None) -> list[ContractApi]:
        apis = await self._contracts.load(names)
        self._read.set()
        await self._release.wait()
        return apis


async def on_app_loop(client, wait: Callable[..., Awaitable[None]], *args: Any) -> None:
    # asyncpg connections belong to the loop that opened them: the app's.
    await asyncio.to_thread(client.blocking_portal.call, wait, *args)


async def publish_projects(client, headers: dict[str, str], version: str) -> None:
    response = await client.post(
        "/api/v1/apis/projects/versions",
        content=as_json(projects(version)),
        headers={**headers, **JSON_HEADERS},
        params={"owner": "delivery"},
    )
    assert response.status_code == 201, response.text


async def test_a_routing_reload_that_read_earlier_never_replaces_routes_a_later_one_set(
    client, publisher_headers, database_url
):
    await publish_projects(client, publisher_headers, "1.0.0")
    app = client.app
    await on_app_loop(client, settled, app)
    gateway = app.state.gateway
    read, release = asyncio.Event(), asyncio.Event()
    held = HeldSource(database_url, read, release)
    announced_source, gateway.source = gateway.source, held
    everything = asyncio.create_task(gateway.reload())  # as after a backup import
    await read.wait()  # it read the routes before 2.0.0 was published
    gateway.source = announced_source

    await publish_projects(client, publisher_headers, "2.0.0")
    await on_app_loop(client, settled, app)  # the announcement's reload of `projects` alone
    assert [v.version for v in gateway._table["projects"].versions] == ["1.0.0", "2.0.0"]

    release.set()
    await everything
    await held.engine.dispose()
    assert [v.version for v in gateway._table["projects"].versions] == ["1.0.0", "2.0.0"]
