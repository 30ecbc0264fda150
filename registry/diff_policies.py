"""Severity policies for the diff, stored in the registry: a global one and one per API.

An API's policy refines the global one (rule by rule, setting by setting). Publishing, the dry run,
the changes the registry reports and `charter check` all judge with the combined policy.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.diff import InvalidPolicy, SeverityPolicy
from contracts.diff.policy import check_policy
from policies.auth import Principal
from registry import audit, catalog
from registry.access import ADMIN, require_owner, require_scope
from registry.db.engine import begin_write
from registry.db.models import Api, DiffPolicy
from registry.errors import InvalidRequest

GLOBAL = "global"


def api_scope(api: str) -> str:
    return f"api:{api}"


def policy_of(row: DiffPolicy) -> SeverityPolicy:
    return msgspec.json.decode(row.content, type=SeverityPolicy)


async def put_policy(
    session: AsyncSession, principal: Principal | None, scope: str, policy: SeverityPolicy
) -> DiffPolicy:
    """The global policy is an admin's; an API's is its owning team's (or an admin's). Audited."""
    try:
        check_policy(policy)
    except InvalidPolicy as exc:
        raise InvalidRequest(exc.detail, exc.issues) from None
    await begin_write(session)
    actor = await _authorize(session, principal, scope)
    content = msgspec.json.encode(policy).decode()
    row = await stored_policy(session, scope)
    before = msgspec.json.decode(row.content) if row is not None else None
    if row is None:
        row = DiffPolicy(scope=scope, content=content, updated_by=actor.subject)
        session.add(row)
    else:
        row.content, row.updated_by = content, actor.subject
    await session.flush()
    audit.record(
        session,
        actor=actor.subject,
        action="diff-policy.updated",
        subject=f"diff-policies/{scope}",
        before=before,
        after=msgspec.to_builtins(policy),
    )
    return row


async def delete_policy(session: AsyncSession, principal: Principal | None, scope: str) -> None:
    """Idempotent, as DELETE is: removing a policy that is not stored changes (and audits) nothing."""
    await begin_write(session)
    actor = await _authorize(session, principal, scope)
    row = await stored_policy(session, scope)
    if row is None:
        return
    await session.delete(row)
    audit.record(
        session,
        actor=actor.subject,
        action="diff-policy.deleted",
        subject=f"diff-policies/{scope}",
        before=msgspec.json.decode(row.content),
    )


async def applicable(session: AsyncSession, api: Api) -> SeverityPolicy | None:
    """The API's policy over the global one; None when neither is stored (the catalog's levels)."""
    return (await effective(session, api))[0]


async def effective(session: AsyncSession, api: Api) -> tuple[SeverityPolicy | None, list[str]]:
    """The combined policy and the scopes of the stored policies it combines, widest first."""
    scopes = (GLOBAL, api_scope(api.name))
    rows = await session.scalars(select(DiffPolicy).where(DiffPolicy.scope.in_(scopes)))
    by_scope = {row.scope: policy_of(row) for row in rows.all()}
    own, wider = by_scope.get(api_scope(api.name)), by_scope.get(GLOBAL)
    policy = own.within(wider) if own is not None else wider
    return policy, [scope for scope in scopes if scope in by_scope]


async def stored_policy(session: AsyncSession, scope: str) -> DiffPolicy | None:
    return await session.scalar(select(DiffPolicy).where(DiffPolicy.scope == scope))


async def _authorize(session: AsyncSession, principal: Principal | None, scope: str) -> Principal:
    if scope == GLOBAL:
        return require_scope(principal, ADMIN)
    api = await catalog.get_api(session, scope.removeprefix("api:"))
    return require_owner(principal, api.owner)
