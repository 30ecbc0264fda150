"""Stored rows as wire structs."""

from __future__ import annotations

import msgspec

from registry.api.schemas import (
    AccessRequestOut,
    AdapterIn,
    ApiOut,
    AuditOut,
    ClientOut,
    ConformanceResult,
    Contact,
    Deprecation,
    GrantOut,
    SearchHit,
    Sla,
    TeamOut,
    VersionOut,
)
from registry.db.models import AccessRequest, Api, ApiVersion, AuditEvent, Client, Team
from registry.grants import Holder


def team_out(team: Team) -> TeamOut:
    return TeamOut(
        name=team.name,
        description=team.description,
        members=sorted(m.subject for m in team.members),
        created_at=team.created_at,
    )


def api_out(api: Api) -> ApiOut:
    return ApiOut(
        name=api.name,
        title=api.title,
        description=api.description,
        owner=api.owner.name,
        layer=api.layer,
        domain=api.domain,
        tags=list(api.tags or []),
        contacts=msgspec.convert(api.contacts or [], list[Contact]),
        compatibility=api.compatibility,
        validity=api.validity,
        sla=msgspec.convert(api.sla, Sla) if api.sla else None,
        adapter=msgspec.convert(api.adapter, AdapterIn) if api.adapter else None,
        kind=api.kind,
        latest_version=api.latest_version,
        created_at=api.created_at,
        updated_at=api.updated_at,
    )


def search_hit(api: Api) -> SearchHit:
    return SearchHit(
        name=api.name,
        title=api.title,
        description=api.description,
        owner=api.owner.name,
        layer=api.layer,
        domain=api.domain,
        tags=list(api.tags or []),
        kind=api.kind,
        latest_version=api.latest_version,
    )


def version_out(api: Api, row: ApiVersion, files: list[str]) -> VersionOut:
    deprecation = None
    if row.deprecated_at is not None:
        deprecation = Deprecation(
            deprecated_at=row.deprecated_at,
            sunset=row.sunset,
            replacement=row.replacement,
            reason=row.deprecation_reason,
        )
    return VersionOut(
        api=api.name,
        version=row.version,
        state=row.state,  # type: ignore[arg-type]
        kind=row.kind,
        spec_version=row.spec_version,
        fingerprint=row.fingerprint,
        media_type=row.media_type,
        size_bytes=row.size_bytes,
        files=files,
        published_at=row.published_at,
        published_by=row.published_by,
        deprecation=deprecation,
        retired_at=row.retired_at,
        base_version=row.base_version,
        required_bump=row.required_bump,  # type: ignore[arg-type]
        breaking=row.breaking,
        change_count=row.change_count,
        conformance=msgspec.convert(row.conformance, ConformanceResult) if row.conformance else None,
    )


def audit_out(event: AuditEvent) -> AuditOut:
    return AuditOut(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        subject=event.subject,
        before=event.before,
        after=event.after,
    )


def client_out(client: Client) -> ClientOut:
    return ClientOut(
        client_id=client.client_id,
        name=client.name,
        team=client.team.name,
        scopes=list(client.scopes),
        created_at=client.created_at,
        created_by=client.created_by,
    )


def access_request_out(row: AccessRequest) -> AccessRequestOut:
    return AccessRequestOut(
        id=row.id,
        api=row.api.name,
        owner=row.api.owner.name,
        client_id=row.client.client_id,
        team=row.client.team.name,
        scopes=list(row.scopes),
        reason=row.reason,
        state=row.state,  # type: ignore[arg-type]
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        decided_at=row.decided_at,
        decided_by=row.decided_by,
        decision_reason=row.decision_reason,
    )


def grant_out(holder: Holder) -> GrantOut:
    return GrantOut(
        client_id=holder.client.client_id,
        team=holder.client.team.name,
        scopes=holder.scopes,
        granted_by=holder.granted_by,
    )
