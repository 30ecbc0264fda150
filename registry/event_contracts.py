"""The registry's AsyncAPI contracts as the check of the events flows send through its outbox.

The contracts that apply are each AsyncAPI API's latest released (published or deprecated)
version. Compiled payload validators are kept by version fingerprint, so a reload after one
publish compiles one contract, not all of them; reloads follow `contract.*` events.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.events import ContractEvents, EventSchemaCatalog, compile_event_schemas
from contracts.kinds import Family
from registry.compatibility import stored_document
from registry.db.models import Api, ApiVersion
from registry.reloads import ScopedReload
from registry.versions import RELEASED

log = logging.getLogger("charter.flows")
# The events that change which contracts apply.
RELOAD_TOPICS = ("contract.published", "contract.deprecated", "contract.retired")


class EventContracts:
    """The current event schema catalog; `violations` is what the flow runner checks events with."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._compiled: dict[int, tuple[str, ContractEvents]] = {}
        self.catalog = EventSchemaCatalog()
        # Reloads run both in the background (announcements) and called directly (start-up, a backup
        # import); one that read the database earlier can finish later. Each takes a number when it
        # starts, and one that finishes after a later-started one has applied its catalog is dropped:
        # the later one read every change the earlier one was started for.
        self._started = 0
        self._applied = 0
        # Announcements during a reload fold into one more reload; a failed one keeps the contracts in force.
        self._reloads = ScopedReload(
            lambda _names: self.reload(),
            scope=lambda _event: None,  # one catalog, reloaded whole
            name="charter-event-contracts-reload",
            log=log,
            failure="event contracts reload failed; the previous contracts stay in force",
        )
        self.on_event = self._reloads.on_event
        self.wait = self._reloads.wait

    def violations(self, topic: str, payload: Any) -> list[str]:
        return self.catalog.violations(topic, payload)

    async def reload(self) -> None:
        self._started += 1
        generation = self._started
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Api.name, ApiVersion)
                    .join(ApiVersion, ApiVersion.api_id == Api.id)
                    .where(
                        ApiVersion.kind == Family.ASYNCAPI.value,
                        ApiVersion.state.in_(RELEASED),
                        ApiVersion.version == Api.latest_version,
                    )
                )
            ).all()
            compiled: dict[int, tuple[str, ContractEvents]] = {}
            for api, row in rows:
                cached = self._compiled.get(row.id)
                if cached is None or cached[0] != row.fingerprint:
                    label = f"{api} {row.version}"
                    try:
                        events = compile_event_schemas(label, await stored_document(session, row))
                    except Exception:
                        # One contract jsonschema-rs cannot compile (a pattern in a regex dialect
                        # it does not know) leaves its topics unchecked, not every other contract.
                        log.exception("contract %s cannot check events; its topics are sent unchecked", label)
                        continue
                    cached = (row.fingerprint, events)
                compiled[row.id] = cached
        if generation < self._applied:
            return
        self._applied = generation
        self._compiled = compiled
        self.catalog = EventSchemaCatalog(events for _, events in compiled.values())
