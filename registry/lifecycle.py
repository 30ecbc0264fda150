"""Version lifecycle: draft -> published -> deprecated -> retired, and nothing backwards.

A published version is deprecated before it is retired, so that its consumers get notice (a sunset
date, a replacement, the webhooks). Only an admin may retire it at once, as an emergency with a reason
that the audit log keeps. A draft promised nothing to anyone: its owners may discard it by retiring it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.loading import LoadLimits
from policies.auth import Principal
from registry import audit, canonical_models, catalog, compatibility
from registry import scopes as ownership
from registry.access import ADMIN, require_owner, require_scope
from registry.api.schemas import ConformanceResult, ConformanceRun, DeprecateIn, RetireIn
from registry.db.engine import begin_write
from registry.db.models import Api, ApiVersion, Layer, VersionState, utcnow
from registry.errors import IllegalTransition, InvalidRequest
from registry.publishing import version_record
from registry.versions import find_version, get_version, refresh_latest

ALLOWED: dict[VersionState, frozenset[VersionState]] = {
    VersionState.DRAFT: frozenset({VersionState.PUBLISHED, VersionState.RETIRED}),
    VersionState.PUBLISHED: frozenset({VersionState.DEPRECATED}),
    VersionState.DEPRECATED: frozenset({VersionState.RETIRED}),
    VersionState.RETIRED: frozenset(),
}


async def release(
    session: AsyncSession,
    principal: Principal | None,
    api_name: str,
    version: str,
    *,
    limits: LoadLimits,
    force: bool = False,
) -> ApiVersion:
    """Publish a draft, judged against what is released now as a direct publish would be."""
    api = await catalog.get_api(session, api_name)
    require_owner(principal, api.owner)
    draft = await get_version(session, api, version)
    if draft.state != VersionState.DRAFT.value or draft.kind is None:
        await session.rollback()
        return await _transition(session, principal, api_name, version, VersionState.PUBLISHED)
    # Judged before the write lock (a diff costs CPU), and again under it if a version landed since.
    document = await compatibility.stored_document(session, draft)
    verdict = await compatibility.assess(
        session, api, draft.version, document, limits=limits, fingerprint=draft.fingerprint
    )
    compatibility.refuse_unless_forced(principal, api, draft.version, verdict, force=force)
    await session.rollback()

    async def judge_again(locked: Api, row: ApiVersion) -> None:
        current = await compatibility.current(
            session, locked, row.version, document, verdict, limits=limits, fingerprint=row.fingerprint
        )
        compatibility.refuse_unless_forced(principal, locked, row.version, current, force=force)
        for column, value in compatibility.change_columns(current).items():
            setattr(row, column, value)
        report = current.report
        if locked.layer == Layer.CANONICAL and report is not None and report.breaking:
            base = current.base_version
            name, number = locked.name, row.version
            affected = await canonical_models.affected_dependents(session, name, base, number)
            canonical_models.announce_breaking(session, name, number, base, report.changes, affected)

    return await _transition(session, principal, api_name, version, VersionState.PUBLISHED, judge=judge_again)


async def retire(
    session: AsyncSession, principal: Principal | None, api_name: str, version: str, data: RetireIn
) -> ApiVersion:
    if not data.emergency:
        return await _transition(session, principal, api_name, version, VersionState.RETIRED)
    require_scope(principal, ADMIN)
    if not (data.reason or "").strip():
        raise InvalidRequest("an emergency retire needs a reason, for the audit log")
    return await _transition(
        session, principal, api_name, version, VersionState.RETIRED, emergency_reason=data.reason
    )


async def deprecate(
    session: AsyncSession, principal: Principal | None, api_name: str, version: str, data: DeprecateIn
) -> ApiVersion:
    return await _transition(session, principal, api_name, version, VersionState.DEPRECATED, data)


async def _transition(
    session: AsyncSession,
    principal: Principal | None,
    api_name: str,
    version: str,
    target: VersionState,
    deprecation: DeprecateIn | None = None,
    *,
    emergency_reason: str | None = None,
    judge: Callable[[Api, ApiVersion], Awaitable[None]] | None = None,
) -> ApiVersion:
    await begin_write(session)
    api = await catalog.lock_api(session, api_name)
    actor = require_owner(principal, api.owner)
    row = await get_version(session, api, version)
    current = VersionState(row.state)
    skips_notice = current is VersionState.PUBLISHED and target is VersionState.RETIRED
    if skips_notice and emergency_reason is None:
        raise IllegalTransition(
            f"version {row.version} is published: deprecate it first, so that its consumers get notice "
            '(an admin may retire it at once with {"emergency": true, "reason": "..."})'
        )
    if target not in ALLOWED[current] and not skips_notice:
        raise IllegalTransition(f"version {row.version} is {current.value} and cannot become {target.value}")
    before = version_record(api, row)
    if judge is not None:
        await judge(api, row)
    now = utcnow()
    if target is VersionState.DEPRECATED:
        assert deprecation is not None
        await _check_deprecation(session, api, row, deprecation, now)
        row.deprecated_at = now
        row.sunset = deprecation.sunset
        row.replacement = deprecation.replacement
        row.deprecation_reason = deprecation.reason
    elif target is VersionState.RETIRED:
        row.retired_at = now
    elif target is VersionState.PUBLISHED:
        await ownership.require_unclaimed(session, api, await ownership.version_scopes(session, row))
        row.published_at = now
    row.state = target.value
    await session.flush()
    await refresh_latest(session, api)
    await catalog.reindex(session, api)
    after = version_record(api, row)
    action = {
        VersionState.PUBLISHED: "version.published",
        VersionState.DEPRECATED: "version.deprecated",
        VersionState.RETIRED: "version.retired",
    }[target]
    if emergency_reason is not None:
        action = "version.emergency-retired"
        after |= {"emergency": True, "emergency_reason": emergency_reason}
    audit.record(
        session,
        actor=actor.subject,
        action=action,
        subject=f"apis/{api.name}/versions/{row.version}",
        before=before,
        after=after,
    )
    audit.emit(session, f"contract.{target.value}", after)
    return row


async def _check_deprecation(
    session: AsyncSession, api: Api, row: ApiVersion, data: DeprecateIn, now: dt.datetime
) -> None:
    # RFC 8594: a sunset never comes before the deprecation it follows.
    if data.sunset is not None and data.sunset < now.date():
        raise InvalidRequest(f"sunset {data.sunset.isoformat()} is in the past")
    if data.replacement is not None:
        if data.replacement == row.version:
            raise InvalidRequest("a version cannot replace itself")
        replacement = await find_version(session, api, data.replacement)
        if replacement is None or replacement.state == VersionState.RETIRED.value:
            raise InvalidRequest(f"replacement {data.replacement!r} is not a live version of {api.name}")


async def record_conformance(
    session: AsyncSession, principal: Principal | None, api_name: str, version: str, result: ConformanceRun
) -> ApiVersion:
    """Keep a conformance run on the version, for consumers to see; the owning team reports it."""
    await begin_write(session)
    api = await catalog.get_api(session, api_name)
    actor = require_owner(principal, api.owner)
    row = await get_version(session, api, version)
    recorded = ConformanceResult(
        **msgspec.structs.asdict(result), checked_at=utcnow(), checked_by=actor.subject
    )
    row.conformance = msgspec.to_builtins(recorded)
    audit.record(
        session,
        actor=actor.subject,
        action="version.conformance-recorded",
        subject=f"apis/{api.name}/versions/{row.version}",
        after=row.conformance,
    )
    return row
