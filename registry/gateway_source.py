"""The registry as the embedded gateway's contract source, and the reloads that keep it current."""

from __future__ import annotations

import logging
from collections import defaultdict

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.app import Gateway
from gateway.source import AdapterBinding, ContractApi, ContractVersion
from policies.throttle import RateLimitPolicy
from policies.versioning import VersionInfo, VersionState
from registry.compatibility import stored_document
from registry.db.models import Api, ApiVersion
from registry.reloads import CoalescingReload

log = logging.getLogger("charter.gateway")
_ROUTED = (VersionState.PUBLISHED.value, VersionState.DEPRECATED.value, VersionState.RETIRED.value)


class RegistryContracts:
    """Reads released and retired versions from the database; documents are cached by fingerprint,
    so a reload after one publish decodes one document, not all of them."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker
        self._documents: dict[int, tuple[str, dict]] = {}

    async def load(self) -> list[ContractApi]:
        async with self._sessionmaker() as session:
            apis = (await session.scalars(select(Api))).all()
            rows = (await session.scalars(select(ApiVersion).where(ApiVersion.state.in_(_ROUTED)))).all()
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


def gateway_reloader(gateway: Gateway) -> CoalescingReload:
    """Rebuilds the routing table when the registry announces a change."""
    return CoalescingReload(
        gateway.reload,
        name="charter-gateway-reload",
        log=log,
        failure="gateway reload failed; the previous routing table stays",
    )
