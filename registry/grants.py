"""Access requests: a consumer team asks for another team's API scopes for one of its clients, and
the owner team (or an admin) approves, rejects or later revokes. An approved request is the grant.

Every step is audited under `apis/<api>/access-requests/<id>` and announced on the outbox; a change of
a client's scopes is also announced as `client.updated`, from which every replica's issuer learns it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import Issue
from policies.auth import Principal
from registry import audit, catalog, clients
from registry import scopes as ownership
from registry.access import ADMIN, ALL_SCOPES, READ, is_member, require_owner, require_scope
from registry.db.engine import begin_write
from registry.db.models import AccessRequest, AccessState, Api, Client, TeamMember, utcnow
from registry.errors import Forbidden, IllegalTransition, InvalidRequest, NotFound, ScopeNotOwned

# Open requests one client may have at a time: each one is work for the owner team to read.
MAX_PENDING_PER_CLIENT = 20


class Requested(msgspec.Struct, frozen=True):
    request: AccessRequest
    created: bool


async def request_access(
    session: AsyncSession,
    principal: Principal | None,
    api_name: str,
    *,
    client_id: str,
    scopes: Sequence[str],
    reason: str | None,
) -> Requested:
    """A member of the client's team asks; the same open (or granted) request asked again is answered
    as it stands, so a retried call never files a second one."""
    await begin_write(session)
    api = await catalog.get_api(session, api_name)
    client = await clients.get_client(session, client_id)
    actor = require_owner(principal, client.team)
    wanted = sorted(set(scopes))
    if not wanted:
        raise InvalidRequest("name at least one scope", [Issue(pointer="/scopes", message="empty")])
    reserved = [s for s in wanted if s in ALL_SCOPES]
    if reserved:
        raise InvalidRequest(
            f"{', '.join(reserved)} are the registry's own scopes: only an admin gives them, at registration",
            [Issue(pointer="/scopes", message=f"{s} is a registry scope") for s in reserved],
        )
    declared = await ownership.declared_by(session, api)
    undeclared = [s for s in wanted if s not in declared]
    if undeclared:
        raise InvalidRequest(
            f"API {api.name} declares no scope {', '.join(undeclared)} in a published version",
            [Issue(pointer="/scopes", message=f"{s} is not a scope of {api.name}") for s in undeclared],
        )
    for open_request in await session.scalars(
        select(AccessRequest).where(
            AccessRequest.api_id == api.id,
            AccessRequest.client_id == client.id,
            AccessRequest.state.in_((AccessState.PENDING.value, AccessState.APPROVED.value)),
        )
    ):
        if sorted(open_request.scopes) == wanted:
            return Requested(open_request, created=False)
    pending = await session.scalar(
        select(func.count(AccessRequest.id)).where(
            AccessRequest.client_id == client.id, AccessRequest.state == AccessState.PENDING.value
        )
    )
    if (pending or 0) >= MAX_PENDING_PER_CLIENT:
        raise InvalidRequest(
            f"client {client.client_id} has {pending} requests waiting for a decision; "
            "wait for them or ask their owners"
        )
    row = AccessRequest(
        api_id=api.id,
        api=api,
        client_id=client.id,
        client=client,
        scopes=wanted,
        reason=reason,
        state=AccessState.PENDING.value,
        requested_by=actor.subject,
    )
    session.add(row)
    await session.flush()
    _announce(session, actor, "access.requested", row, before=None)
    return Requested(row, created=True)


async def _open_decision(
    session: AsyncSession,
    principal: Principal | None,
    api_name: str,
    request_id: int,
    state: AccessState,
    verb: str,
) -> tuple[Api, AccessRequest, Principal]:
    """Under the write lock: the API, the request in `state` (409 otherwise) and its owner deciding."""
    await begin_write(session)
    api = await catalog.get_api(session, api_name)
    row = await _get(session, api, request_id)
    actor = require_owner(principal, api.owner)
    _require_state(row, state, verb)
    return api, row, actor


async def approve(
    session: AsyncSession, principal: Principal | None, api_name: str, request_id: int
) -> AccessRequest:
    """The owner team grants: the client holds the scopes from now on (new tokens may carry them)."""
    api, row, actor = await _open_decision(
        session, principal, api_name, request_id, AccessState.PENDING, "approved"
    )
    # The API may have dropped a scope since it was asked for: it is no longer this team's to give.
    declared = await ownership.declared_by(session, api)
    gone = [s for s in row.scopes if s not in declared]
    if gone:
        raise InvalidRequest(
            f"API {api.name} no longer declares {', '.join(gone)}: reject this request "
            "and let the consumer ask again for what the API offers"
        )
    # A scope declared before one owner per scope was enforced may have several: any of them would
    # open every API that declares it, so only an admin may give it.
    shared = {
        scope: others
        for scope, owners in (await ownership.owners(session, row.scopes)).items()
        if (others := sorted({o.team for o in owners} - {api.owner.name}))
    }
    if shared and ADMIN not in actor.scopes:
        raise ScopeNotOwned(
            "; ".join(f"{s} is also declared by team {', '.join(t)}" for s, t in shared.items())
            + ": only an admin may grant it"
        )
    before = _record(row)
    _decide(row, actor, AccessState.APPROVED, None)
    merged = sorted(set(row.client.scopes) | set(row.scopes))
    _set_scopes(session, actor, row.client, merged, api, request=row)
    _announce(session, actor, "access.approved", row, before=before)
    return row


async def reject(
    session: AsyncSession, principal: Principal | None, api_name: str, request_id: int, reason: str | None
) -> AccessRequest:
    _, row, actor = await _open_decision(
        session, principal, api_name, request_id, AccessState.PENDING, "rejected"
    )
    before = _record(row)
    _decide(row, actor, AccessState.REJECTED, reason)
    _announce(session, actor, "access.rejected", row, before=before)
    return row


async def revoke(
    session: AsyncSession, principal: Principal | None, api_name: str, request_id: int, reason: str | None
) -> AccessRequest:
    """Takes the granted scopes off the client, except those another of its grants still gives."""
    api, row, actor = await _open_decision(
        session, principal, api_name, request_id, AccessState.APPROVED, "revoked"
    )
    before = _record(row)
    _decide(row, actor, AccessState.REVOKED, reason)
    await session.flush()
    still_granted = {
        scope
        for other in await session.scalars(
            select(AccessRequest).where(
                AccessRequest.client_id == row.client_id, AccessRequest.state == AccessState.APPROVED.value
            )
        )
        for scope in other.scopes
    }
    taken = set(row.scopes) - still_granted
    kept = [s for s in row.client.scopes if s not in taken]
    _set_scopes(session, actor, row.client, kept, api, reason, request=row)
    _announce(session, actor, "access.revoked", row, before=before)
    return row


class Holder(msgspec.Struct, frozen=True):
    client: Client
    scopes: list[str]  # the API's scopes the client holds
    granted_by: list[int]  # the approved requests that gave them; none: given at registration


async def holders(session: AsyncSession, principal: Principal | None, api_name: str) -> list[Holder]:
    """Every client holding a scope of the API, however it came by it: for the owner team and admins.

    Clients store their scopes as a list, so this reads them all: one owner's review, not a hot path.
    """
    api = await catalog.get_api(session, api_name)
    reader = require_scope(principal, READ)
    if not _decides(reader, api):
        raise Forbidden(f"{reader.subject} is not a member of team {api.owner.name}, which owns {api.name}")
    declared = await ownership.declared_by(session, api)
    granted: dict[int, list[int]] = {}
    for row in await session.scalars(
        select(AccessRequest).where(
            AccessRequest.api_id == api.id, AccessRequest.state == AccessState.APPROVED.value
        )
    ):
        granted.setdefault(row.client_id, []).append(row.id)
    out = []
    for client in await session.scalars(select(Client).order_by(Client.client_id)):
        held = sorted(declared.intersection(client.scopes))
        if held:
            out.append(Holder(client=client, scopes=held, granted_by=sorted(granted.get(client.id, []))))
    return out


async def take_back(
    session: AsyncSession, principal: Principal | None, api_name: str, client_id: str, reason: str | None
) -> Holder:
    """The owner team takes all of its API's scopes from a client, granted or given at registration,
    and revokes the approved requests that gave them."""
    await begin_write(session)
    api = await catalog.get_api(session, api_name)
    client = await clients.get_client(session, client_id)
    actor = require_owner(principal, api.owner)
    declared = await ownership.declared_by(session, api)
    approved = list(
        await session.scalars(
            select(AccessRequest).where(
                AccessRequest.api_id == api.id,
                AccessRequest.client_id == client.id,
                AccessRequest.state == AccessState.APPROVED.value,
            )
        )
    )
    for row in approved:
        before = _record(row)
        _decide(row, actor, AccessState.REVOKED, reason)
        _announce(session, actor, "access.revoked", row, before=before)
    taken = declared.union(*(row.scopes for row in approved))
    await session.flush()
    _set_scopes(session, actor, client, [s for s in client.scopes if s not in taken], api, reason)
    return Holder(client=client, scopes=[], granted_by=[])


async def get_request(
    session: AsyncSession, principal: Principal | None, api_name: str, request_id: int
) -> AccessRequest:
    reader = require_scope(principal, READ)
    api = await catalog.get_api(session, api_name)
    row = await _get(session, api, request_id)
    if not (_decides(reader, api) or is_member(reader, row.client.team)):
        raise NotFound(f"API {api.name} has no access request {request_id}")  # others' are not theirs to see
    return row


async def requests_of_api(
    session: AsyncSession,
    principal: Principal | None,
    api_name: str,
    *,
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AccessRequest], int]:
    """The owner team and admins see every request on the API; another team sees its own clients'."""
    reader = require_scope(principal, READ)
    api = await catalog.get_api(session, api_name)
    conditions = [AccessRequest.api_id == api.id]
    if not _decides(reader, api):
        teams = select(TeamMember.team_id).where(TeamMember.subject == reader.subject)
        conditions.append(AccessRequest.client_id.in_(select(Client.id).where(Client.team_id.in_(teams))))
    return await _page(session, conditions, state, limit, offset)


async def requests_of_client(
    session: AsyncSession,
    principal: Principal | None,
    client_id: str,
    *,
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AccessRequest], int]:
    client = await visible_client(session, principal, client_id)
    return await _page(session, [AccessRequest.client_id == client.id], state, limit, offset)


async def visible_client(session: AsyncSession, principal: Principal | None, client_id: str) -> Client:
    """A client, for its own team's members and admins."""
    reader = require_scope(principal, READ)
    client = await clients.get_client(session, client_id)
    if ADMIN not in reader.scopes and not is_member(reader, client.team):
        raise Forbidden(
            f"{reader.subject} is not a member of team {client.team.name}, which owns {client_id}"
        )
    return client


async def _page(
    session: AsyncSession, conditions: list, state: str | None, limit: int, offset: int
) -> tuple[list[AccessRequest], int]:
    if state is not None:
        conditions = [*conditions, AccessRequest.state == state]
    total = await session.scalar(select(func.count(AccessRequest.id)).where(*conditions))
    rows = await session.scalars(
        select(AccessRequest).where(*conditions).order_by(AccessRequest.id.desc()).limit(limit).offset(offset)
    )
    return list(rows.all()), total or 0


def _decides(principal: Principal, api: Api) -> bool:
    return ADMIN in principal.scopes or is_member(principal, api.owner)


async def _get(session: AsyncSession, api: Api, request_id: int) -> AccessRequest:
    row = await session.scalar(
        select(AccessRequest).where(AccessRequest.id == request_id, AccessRequest.api_id == api.id)
    )
    if row is None:
        raise NotFound(f"API {api.name} has no access request {request_id}")
    return row


def _require_state(row: AccessRequest, state: AccessState, target: str) -> None:
    if row.state != state.value:
        raise IllegalTransition(f"access request {row.id} is {row.state} and cannot be {target}")


def _decide(row: AccessRequest, actor: Principal, state: AccessState, reason: str | None) -> None:
    row.state = state.value
    row.decided_at = utcnow()
    row.decided_by = actor.subject
    row.decision_reason = reason


def _set_scopes(
    session: AsyncSession,
    actor: Principal,
    client: Client,
    scopes: list[str],
    api: Api,
    reason: str | None = None,
    request: AccessRequest | None = None,
) -> None:
    before = sorted(client.scopes)
    client.scopes = sorted(scopes)
    if client.scopes == before:
        return
    audit.record(
        session,
        actor=actor.subject,
        action="client.scopes-changed",
        subject=f"clients/{client.client_id}",
        before={"scopes": before},
        after={
            "scopes": client.scopes,
            "api": api.name,
            "access_request": request.id if request else None,
            "reason": reason,
        },
    )
    audit.emit(session, "client.updated", {"client_id": client.client_id, "scopes": client.scopes})


def _announce(
    session: AsyncSession, actor: Principal, action: str, row: AccessRequest, before: dict | None
) -> None:
    after = _record(row)
    audit.record(
        session,
        actor=actor.subject,
        action=action,
        subject=f"apis/{row.api.name}/access-requests/{row.id}",
        before=before,
        after=after,
    )
    audit.emit(session, action, after)


def _record(row: AccessRequest) -> dict:
    return {
        "id": row.id,
        "api": row.api.name,
        "owner": row.api.owner.name,
        "client_id": row.client.client_id,
        "team": row.client.team.name,
        "scopes": list(row.scopes),
        "reason": row.reason,
        "state": row.state,
        "requested_by": row.requested_by,
        "decided_by": row.decided_by,
        "decision_reason": row.decision_reason,
    }
