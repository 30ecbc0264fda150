"""What the catalog page reads besides the search itself: facet values, and lifecycle badges for the
APIs on one page of results."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

import msgspec
import semver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.models import Api, ApiTag, ApiUsage, ApiVersion, Team, VersionState

# A facet lists at most this many values; the search box finds the rest.
MAX_FACET_VALUES = 200
MAX_USAGE_ROWS = 100


class Facets(msgspec.Struct, frozen=True):
    domains: list[str]
    owners: list[str]
    tags: list[str]


class Badge(msgspec.Struct, frozen=True):
    state: str  # deprecated | retired
    sunset: dt.date | None = None


async def facets(session: AsyncSession) -> Facets:
    """Each facet one indexed DISTINCT: cheap with 10,000 APIs."""
    domains = await session.scalars(
        select(Api.domain)
        .where(Api.domain.is_not(None))
        .distinct()
        .order_by(Api.domain)
        .limit(MAX_FACET_VALUES)
    )
    owners = await session.scalars(select(Team.name).order_by(Team.name).limit(MAX_FACET_VALUES))
    tags = await session.scalars(select(ApiTag.tag).distinct().order_by(ApiTag.tag).limit(MAX_FACET_VALUES))
    return Facets(domains=list(domains), owners=list(owners), tags=list(tags))


class FacetCache:
    """Facet values change when APIs are registered, not per request: one read serves every page for
    `ttl` seconds (three DISTINCT queries cost more than the search on a 10,000-API catalog)."""

    def __init__(self, ttl: float = 10.0) -> None:
        self._ttl = ttl
        self._value: Facets | None = None
        self._read_at = 0.0

    async def get(self, session: AsyncSession) -> Facets:
        now = time.monotonic()
        if self._value is None or now - self._read_at > self._ttl:
            self._value, self._read_at = await facets(session), now
        return self._value


async def badges(session: AsyncSession, apis: Sequence[Api]) -> dict[int, Badge]:
    """Deprecated: the API's latest version is (with its sunset date). Retired: nothing is callable
    any more and something was once released."""
    if not apis:
        return {}
    rows = await session.execute(
        select(ApiVersion.api_id, ApiVersion.version, ApiVersion.state, ApiVersion.sunset).where(
            ApiVersion.api_id.in_([a.id for a in apis]),
            ApiVersion.state.in_([VersionState.DEPRECATED.value, VersionState.RETIRED.value]),
        )
    )
    by_api: dict[int, list[tuple[str, str, dt.date | None]]] = {}
    for api_id, version, state, sunset in rows:
        by_api.setdefault(api_id, []).append((version, state, sunset))
    out: dict[int, Badge] = {}
    for api in apis:
        versions = by_api.get(api.id)
        if not versions:
            continue
        if api.latest_version is None:
            if any(state == VersionState.RETIRED.value for _, state, _ in versions):
                out[api.id] = Badge(VersionState.RETIRED.value)
            continue
        for version, state, sunset in versions:
            if version == api.latest_version and state == VersionState.DEPRECATED.value:
                out[api.id] = Badge(VersionState.DEPRECATED.value, sunset)
    return out


def previous_version(versions: Sequence[ApiVersion], version: str) -> str | None:
    """The highest version below `version` among the given ones (drafts and retired included)."""
    number = semver.Version.parse(version)
    lower = [v.version for v in versions if semver.Version.parse(v.version) < number]
    return max(lower, key=semver.Version.parse) if lower else None


class UsageRow(msgspec.Struct, frozen=True):
    version: str
    consumer: str
    calls: int
    last_seen: dt.datetime


async def usage_by_version(session: AsyncSession, api: Api) -> tuple[list[UsageRow], dict[str, int]]:
    """Calls the gateway served, by version and consumer (busiest first), and the total per version."""
    rows = await session.execute(
        select(ApiUsage.version, ApiUsage.consumer, func.sum(ApiUsage.calls), func.max(ApiUsage.last_seen))
        .where(ApiUsage.api == api.name)
        .group_by(ApiUsage.version, ApiUsage.consumer)
        .order_by(func.sum(ApiUsage.calls).desc())
        .limit(MAX_USAGE_ROWS)
    )
    usage = [UsageRow(version, consumer, int(calls), seen) for version, consumer, calls, seen in rows]
    totals = await session.execute(
        select(ApiUsage.version, func.sum(ApiUsage.calls))
        .where(ApiUsage.api == api.name)
        .group_by(ApiUsage.version)
    )
    by_version = {version: int(calls) for version, calls in totals}
    return usage, dict(
        sorted(by_version.items(), key=lambda item: semver.Version.parse(item[0]), reverse=True)
    )
