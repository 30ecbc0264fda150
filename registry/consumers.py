"""Who uses an API: registered consumers, and which of them a candidate contract would break."""

from __future__ import annotations

import msgspec
import nodesemver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.diff import Change, Level
from contracts.diff.openapi import normalize_path
from contracts.errors import Issue
from contracts.index import build_index
from contracts.kinds import detect_kind
from contracts.loading import Document, LoadLimits
from policies.auth import Principal
from policies.egress import EgressPolicy
from registry import audit, catalog, compatibility, diff_policies, usage
from registry.access import require_owner
from registry.api.schemas import AffectedConsumerOut
from registry.db.engine import begin_write
from registry.db.models import Api, ApiVersion, Consumer
from registry.egress import require_allowed_target
from registry.errors import InvalidRequest
from registry.secret_box import SecretBox
from registry.versions import RELEASED

_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "SEND", "RECEIVE"})


class Impact(msgspec.Struct, frozen=True):
    changes: list[Change]  # the candidate against each affected consumer's version, merged
    affected: list[AffectedConsumerOut]


async def register_consumer(
    session: AsyncSession,
    principal: Principal | None,
    api_name: str,
    *,
    consumer: str,
    team: str,
    versions: str,
    operations: list[str],
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    egress: EgressPolicy,
    secrets: SecretBox,
) -> tuple[Consumer, bool]:
    """Record (or update) that `consumer`, an app of `team`, uses this API; teams register their own apps."""
    if not _valid_range(versions):
        raise InvalidRequest(
            f"{versions!r} is not a semantic version range",
            [Issue(pointer="/versions", message="use a range such as ^1.4, ~2.0.1 or >=1.2.0 <3")],
        )
    if (webhook_url is None) != (webhook_secret is None):
        raise InvalidRequest("a webhook needs both `webhook_url` and `webhook_secret`")
    if webhook_url is not None:
        # Only the team's members get the host resolved, and not while holding the write lock.
        await catalog.get_api(session, api_name)
        require_owner(principal, await catalog.get_team(session, team))
        await session.rollback()
        await require_allowed_target(egress, webhook_url, pointer="/webhook_url")
    await begin_write(session)
    api = await catalog.get_api(session, api_name)
    owner = await catalog.get_team(session, team)
    actor = require_owner(principal, owner)
    row = await session.scalar(
        select(Consumer).where(Consumer.api_id == api.id, Consumer.consumer == consumer)
    )
    if row is not None and row.team_id != owner.id:
        # Registering under another team moves the app: its current team's members decide that.
        require_owner(principal, row.team)
    created = row is None
    before = _record(api, row) if row is not None else None
    if row is None:
        row = Consumer(api_id=api.id, consumer=consumer, registered_by=actor.subject)
        session.add(row)
    row.team_id, row.team = owner.id, owner
    row.versions = versions
    row.operations = list(dict.fromkeys(operations))
    row.webhook_url = webhook_url
    row.webhook_secret_sealed = secrets.seal(webhook_secret) if webhook_secret is not None else None
    await session.flush()
    after = _record(api, row)
    audit.record(
        session,
        actor=actor.subject,
        action="consumer.registered" if created else "consumer.updated",
        subject=f"apis/{api.name}/consumers/{consumer}",
        before=before,
        after=after,
    )
    audit.emit(session, "consumer.registered", after)
    return row, created


async def list_consumers(session: AsyncSession, api: Api) -> list[Consumer]:
    rows = await session.scalars(
        select(Consumer).where(Consumer.api_id == api.id).order_by(Consumer.consumer)
    )
    return list(rows.all())


async def impact(session: AsyncSession, api: Api, candidate: Document, *, limits: LoadLimits) -> Impact:
    """Each consumer is judged against the released version its range resolves to today: a change
    touches it when it is breaking and concerns an operation or channel it calls (all, if it listed none)."""
    released = list(
        (
            await session.scalars(
                select(ApiVersion).where(ApiVersion.api_id == api.id, ApiVersion.state.in_(RELEASED))
            )
        ).all()
    )
    by_version = {row.version: row for row in released}
    policy = await diff_policies.applicable(session, api)
    reports: dict[str, list[Change]] = {}
    aliases: dict[str, dict[str, str]] = {}

    async def touching(base: str, operations: list[str]) -> list[Change]:
        if base not in reports:
            base_document = await compatibility.stored_document(session, by_version[base])
            report = await compatibility.diff_document(base_document, candidate, limits=limits, policy=policy)
            reports[base] = report.changes
            aliases[base] = _operation_ids(base_document)
        wanted = {_operation_key(op, aliases[base]) for op in operations}
        return [
            c
            for c in reports[base]
            if c.level is Level.ERROR and (not wanted or _operation_key(c.operation or "", {}) in wanted)
        ]

    affected = []
    registered = await list_consumers(session, api)
    for consumer in registered:
        base = nodesemver.max_satisfying(list(by_version), consumer.versions, False)
        if base is None:
            continue
        hits = await touching(base, consumer.operations)
        if hits:
            affected.append(
                AffectedConsumerOut(
                    consumer=consumer.consumer,
                    team=consumer.team.name,
                    versions=consumer.versions,
                    base_version=base,
                    change_ids=sorted({c.id for c in hits}),
                )
            )
    # Consumers nobody registered but the gateway has served: judged on the versions they called.
    known = {c.consumer for c in registered}
    seen: dict[tuple[str, str], list[str]] = {}
    for row in await usage.usage_of(session, api.name):
        if row.consumer not in known and row.version in by_version:
            seen.setdefault((row.consumer, row.version), []).append(row.operation)
    for (consumer_name, version), operations in sorted(seen.items()):
        hits = await touching(version, operations)
        if hits:
            affected.append(
                AffectedConsumerOut(
                    consumer=consumer_name,
                    team=None,
                    versions=version,
                    base_version=version,
                    change_ids=sorted({c.id for c in hits}),
                    observed=True,
                )
            )
    changes = list(
        {
            (c.id, c.operation, c.base_pointer, c.revision_pointer): c for r in reports.values() for c in r
        }.values()
    )
    return Impact(changes=changes, affected=affected)


def _valid_range(text: str) -> bool:
    try:
        return nodesemver.valid_range(text, False) is not None
    except ValueError:  # node-semver raises on some malformed comparators instead of answering None
        return False


def _operation_ids(document: Document) -> dict[str, str]:
    """operationId -> the diff's label of that operation, so consumers may name either."""
    try:
        index = build_index(document, detect_kind(document))
    except Exception:  # a document below full validity: naming operations by id is then unavailable
        return {}
    out = {}
    for op in index.operations:
        if op.operation_id:
            label = f"{op.method} {op.path}" if op.method not in ("SEND", "RECEIVE") else f"channel {op.path}"
            out[op.operation_id] = label
    return out


def _operation_key(name: str, operation_ids: dict[str, str]) -> str:
    """One spelling for `GET /projects/{id}`, `get /projects/{projectId}`, an operationId, a channel."""
    name = operation_ids.get(name, name).strip()
    method, _, rest = name.partition(" ")
    if method.upper() in _METHODS and rest.startswith("/"):
        return f"{method.upper()} {normalize_path(rest)}"
    if method == "channel":
        return f"channel {rest}"
    return f"channel {name}"  # a bare channel address


def _record(api: Api, row: Consumer) -> dict:
    return {
        "api": api.name,
        "consumer": row.consumer,
        "team": row.team.name if row.team else None,
        "versions": row.versions,
        "operations": list(row.operations or []),
    }


async def users_of_version(session: AsyncSession, api: Api, version: str) -> list[AffectedConsumerOut]:
    """Who a deprecation of `version` concerns: registered consumers whose range resolves to it today,
    and consumers the gateway has seen calling it."""
    released = (
        await session.scalars(
            select(ApiVersion.version).where(ApiVersion.api_id == api.id, ApiVersion.state.in_(RELEASED))
        )
    ).all()
    out = []
    registered = await list_consumers(session, api)
    for consumer in registered:
        if nodesemver.max_satisfying(list(released), consumer.versions, False) == version:
            out.append(
                AffectedConsumerOut(
                    consumer=consumer.consumer,
                    team=consumer.team.name,
                    versions=consumer.versions,
                    base_version=version,
                    change_ids=["version-deprecated"],
                )
            )
    known = {c.consumer for c in registered}
    observed = sorted(
        {row.consumer for row in await usage.usage_of(session, api.name) if row.version == version}
    )
    out += [
        AffectedConsumerOut(
            consumer=name,
            team=None,
            versions=version,
            base_version=version,
            change_ids=["version-deprecated"],
            observed=True,
        )
        for name in observed
        if name not in known
    ]
    return out
