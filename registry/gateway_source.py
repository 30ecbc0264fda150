"""The registry as the embedded gateway's contract source, and the reloads that keep it current.

An announcement that names the API it changed (`contract.*`, `api.updated`: `{"api": name}`) reloads
that API's routes alone; with 10,000 APIs a full reload costs seconds of the event loop during which
the gateway answers nobody, an API's own reload a few milliseconds. Announcements of other kinds
(clients, consumers, flows' business events) do not touch the routes and reload nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.app import Gateway
from gateway.source import AdapterBinding, ContractApi, ContractVersion
from policies.throttle import RateLimitPolicy
from policies.versioning import VersionInfo, VersionState
from registry.compatibility import stored_document
from registry.db.models import Api, ApiVersion
from registry.events import Event
from registry.reloads import ScopedReload

log = logging.getLogger("charter.gateway")
_ROUTED = (VersionState.PUBLISHED.value, VersionState.DEPRECATED.value, VersionState.RETIRED.value)
# Topics of the changes that can alter routes: versions changing state, an API's SLA or adapter.
# `registry.imported` names no single API: every route is recompiled.
ROUTING_TOPICS = ("contract.", "api.", "registry.imported")
_CHUNK = 500  # names per IN (...): well under every driver's limit on bound parameters


class RegistryContracts:
    """Reads released and retired versions from the database; documents are cached by fingerprint,
    so a reload after one publish decodes one document, not all of them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._documents: dict[int, tuple[str, dict]] = {}

    async def load(self, names: Collection[str] | None = None) -> list[ContractApi]:
        async with self._sessionmaker() as session:
            if names is None:
                apis = list((await session.scalars(select(Api))).all())
                rows = list(
                    (await session.scalars(select(ApiVersion).where(ApiVersion.state.in_(_ROUTED)))).all()
                )
            else:
                apis, rows = [], []
                wanted = sorted(names)
                for start in range(0, len(wanted), _CHUNK):
                    chunk = (
                        await session.scalars(select(Api).where(Api.name.in_(wanted[start : start + _CHUNK])))
                    ).all()
                    apis.extend(chunk)
                    routed = ApiVersion.state.in_(_ROUTED) & ApiVersion.api_id.in_([api.id for api in chunk])
                    rows.extend((await session.scalars(select(ApiVersion).where(routed))).all())
            by_api: dict[int, list[ContractVersion]] = defaultdict(list)
            for row in rows:
                by_api[row.api_id].append(
                    ContractVersion(info=_info(row), document=await self._document(session, row))
                )
            return [
                ContractApi(
                    name=api.name,
                    versions=tuple(by_api[api.id]),
                    rate_limit=_rate_limit(api),
                    adapter=msgspec.convert(api.adapter, AdapterBinding) if api.adapter else None,
                )
                for api in apis
                if by_api.get(api.id)
            ]

    async def _document(self, session: AsyncSession, row: ApiVersion) -> dict:
        cached = self._documents.get(row.id)
        if cached is not None and cached[0] == row.fingerprint:
            return cached[1]
        document = await stored_document(session, row)
        self._documents[row.id] = (row.fingerprint, document)
        return document


def _info(row: ApiVersion) -> VersionInfo:
    return VersionInfo(
        version=row.version,
        state=VersionState(row.state),
        deprecated_at=row.deprecated_at,
        sunset=row.sunset,
        replacement=row.replacement,
    )


def _rate_limit(api: Api) -> RateLimitPolicy | None:
    sla = api.sla or {}
    limit = sla.get("rate_limit")
    if not isinstance(limit, dict):
        return None
    return RateLimitPolicy(
        name=str(sla.get("tier") or "default"),
        requests=int(limit["requests"]),
        per_seconds=int(limit["per_seconds"]),
        burst=int(limit.get("burst") or 0),
    )


def routed_apis(event: Event) -> frozenset[str] | None:
    """The APIs whose routes an announcement may have changed: none, the one it names, or None (all of
    them) for a routing change that names no API."""
    if not event.topic.startswith(ROUTING_TOPICS):
        return frozenset()
    name = event.payload.get("api")
    return frozenset({name}) if isinstance(name, str) and name else None


def gateway_reloader(gateway: Gateway, *, incremental: bool = True) -> ScopedReload:
    """Recompiles the routes an announcement changed (`incremental=False`: every route, every time)."""
    return ScopedReload(
        gateway.reload,
        scope=routed_apis if incremental else lambda event: None,
        name="charter-gateway-reload",
        log=log,
        failure="gateway reload failed; the previous routing table stays",
    )
