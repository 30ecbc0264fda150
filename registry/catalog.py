"""Teams and APIs: create, read, change, with ownership rules and audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policies.auth import Principal
from policies.egress import EgressPolicy
from registry import audit, search
from registry import scopes as ownership
from registry.access import ADMIN, require_owner, require_scope
from registry.api.schemas import ApiIn, ApiPatch
from registry.db.engine import begin_write
from registry.db.models import Api, ApiVersion, Compatibility, Layer, Team, TeamMember
from registry.egress import require_allowed_targets
from registry.errors import AlreadyExists, Forbidden, InvalidRequest, NotFound


async def get_team(session: AsyncSession, name: str) -> Team:
    team = await session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise NotFound(f"team {name!r} does not exist")
    return team


async def list_teams(session: AsyncSession) -> Sequence[Team]:
    return (await session.scalars(select(Team).order_by(Team.name))).all()


async def create_team(
    session: AsyncSession,
    principal: Principal | None,
    *,
    name: str,
    description: str | None,
    members: Sequence[str],
) -> Team:
    actor = require_scope(principal, ADMIN)
    await begin_write(session)
    if await session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise AlreadyExists(f"team {name!r} already exists")
    team = Team(
        name=name,
        description=description,
        members=[TeamMember(subject=m) for m in sorted(set(members))],
    )
    session.add(team)
    await _flush_unique(session, f"team {name!r} already exists")
    audit.record(
        session,
        actor=actor.subject,
        action="team.created",
        subject=f"teams/{name}",
        after={"name": name, "description": description, "members": sorted(set(members))},
    )
    return team


async def get_api(session: AsyncSession, name: str) -> Api:
    api = await session.scalar(select(Api).where(Api.name == name))
    if api is None:
        raise NotFound(f"API {name!r} does not exist")
    return api


async def lock_api(session: AsyncSession, name: str) -> Api:
    """The API, its row locked until the transaction ends: every change to its versions goes through
    here, so that concurrent writers take turns and each sees the versions the others committed when
    it recomputes `latest_version` and the search row. (On SQLite the write lock already serializes
    writers and FOR UPDATE is not rendered.)"""
    api = await session.scalar(
        select(Api).where(Api.name == name).with_for_update(of=Api).execution_options(populate_existing=True)
    )
    if api is None:
        raise NotFound(f"API {name!r} does not exist")
    return api


async def create_api(session: AsyncSession, principal: Principal | None, data: ApiIn) -> Api:
    await begin_write(session)
    team = await get_team(session, data.owner)
    actor = require_owner(principal, team)
    if await session.scalar(select(Api.id).where(Api.name == data.name)) is not None:
        raise AlreadyExists(f"API {data.name!r} already exists")
    compatibility = data.compatibility or (
        Compatibility.FULL.value if data.layer == Layer.CANONICAL else Compatibility.BACKWARD.value
    )
    _check_compatibility(data.layer, compatibility)
    api = Api(
        name=data.name,
        title=data.title,
        description=data.description,
        owner_id=team.id,
        owner=team,
        domain=data.domain,
        layer=data.layer,
        tags=sorted(set(data.tags)),
        contacts=msgspec.to_builtins(data.contacts),
        compatibility=compatibility,
        validity=data.validity,
        sla=msgspec.to_builtins(data.sla) if data.sla else None,
    )
    session.add(api)
    await _flush_unique(session, f"API {data.name!r} already exists")
    await search.set_tags(session, api, api.tags)
    await search.index_api(session, api, "")
    audit.record(
        session, actor=actor.subject, action="api.created", subject=f"apis/{api.name}", after=api_record(api)
    )
    return api


async def update_api(session: AsyncSession, principal: Principal | None, name: str, patch: ApiPatch) -> Api:
    await begin_write(session)
    api = await lock_api(session, name)
    actor = require_owner(principal, api.owner)
    before = api_record(api)
    if patch.owner is not None and patch.owner != api.owner.name:
        new_owner = await session.scalar(select(Team).where(Team.name == patch.owner))
        if new_owner is None:
            # The API is found; what is wrong is the body's reference, so not a 404.
            raise InvalidRequest(f"owner: team {patch.owner!r} does not exist")
        # Handing an API to another team needs the right to write to both.
        require_owner(principal, new_owner)
        api.owner_id, api.owner = new_owner.id, new_owner
        # Its scopes move with it: they must not then be declared by two teams.
        await ownership.require_unclaimed(session, api, await ownership.declared_by(session, api))
    moves = patch.layer is not None and (patch.layer == Layer.CANONICAL) != (api.layer == Layer.CANONICAL)
    if moves and api.kind is not None:
        raise InvalidRequest(
            f"API {api.name!r} holds {api.kind} contracts: it cannot move in or out of layer `canonical`"
        )
    for field in ("title", "description", "layer", "domain", "compatibility", "validity"):
        value = getattr(patch, field)
        if value is not None:
            setattr(api, field, value)
    _check_compatibility(api.layer, api.compatibility)
    if patch.tags is not None:
        api.tags = sorted(set(patch.tags))
        await search.set_tags(session, api, api.tags)
    if patch.contacts is not None:
        api.contacts = msgspec.to_builtins(patch.contacts)
    if patch.sla is not None:
        api.sla = msgspec.to_builtins(patch.sla)
    await session.flush()
    await reindex(session, api)
    audit.record(
        session,
        actor=actor.subject,
        action="api.updated",
        subject=f"apis/{api.name}",
        before=before,
        after=api_record(api),
    )
    # The gateway's routing table holds SLA limits and adapter bindings: it listens for this.
    audit.emit(session, "api.updated", {"api": api.name})
    return api


async def set_adapter(
    session: AsyncSession,
    principal: Principal | None,
    name: str,
    adapter: dict[str, Any] | None,
    *,
    egress: EgressPolicy,
    flow_owners: Mapping[str, str],
) -> Api:
    """Bind the API's operations; `flow_owners` names the owning team of each flow this server hosts."""
    targets = upstream_targets(adapter)
    if targets:
        # Only the API's owners get the hosts resolved, and not while holding the write lock.
        require_owner(principal, (await get_api(session, name)).owner)
        await session.rollback()
        await require_allowed_targets(egress, targets)
    await begin_write(session)
    api = await get_api(session, name)
    actor = require_owner(principal, api.owner)
    if ADMIN not in actor.scopes:
        # A flow calls system APIs with its own client's scopes: an API that starts its runs hands
        # its callers the flow's privileges, which only the flow's own team may do.
        foreign = sorted(f for f in bound_flows(adapter) if flow_owners.get(f) != api.owner.name)
        if foreign:
            raise Forbidden(
                f"flow {', '.join(foreign)} is not owned by {api.owner.name}, the team that owns {api.name}"
            )
    before = api_record(api)
    api.adapter = adapter
    await session.flush()
    audit.record(
        session,
        actor=actor.subject,
        action="api.adapter-bound",
        subject=f"apis/{api.name}",
        before=before,
        after=api_record(api),
    )
    audit.emit(session, "api.updated", {"api": api.name})
    return api


def bound_flows(adapter: dict[str, Any] | None) -> set[str]:
    """The flows a binding starts, its single operations' included."""
    if adapter is None:
        return set()
    singles = [adapter, *(adapter.get("operations") or {}).values()]
    return {single["flow"] for single in singles if single.get("kind") == "flow" and single.get("flow")}


def upstream_targets(adapter: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The upstream URLs of a binding, its single operations' included, with their JSON pointers."""
    if adapter is None:
        return []
    found = [("/url", adapter["url"])] if adapter.get("url") else []
    for operation_id, single in (adapter.get("operations") or {}).items():
        if single.get("url"):
            escaped = operation_id.replace("~", "~0").replace("/", "~1")
            found.append((f"/operations/{escaped}/url", single["url"]))
    return found


async def reindex(session: AsyncSession, api: Api) -> None:
    """Search finds an API by its latest version's operations (or its newest draft's)."""
    stmt = select(ApiVersion.search_text).where(ApiVersion.api_id == api.id)
    if api.latest_version is not None:
        stmt = stmt.where(ApiVersion.version == api.latest_version)
    else:
        stmt = stmt.order_by(ApiVersion.id.desc()).limit(1)
    text = await session.scalar(stmt)
    await search.index_api(session, api, text or "")


def api_record(api: Api) -> dict:
    return {
        "name": api.name,
        "title": api.title,
        "description": api.description,
        "owner": api.owner.name,
        "layer": api.layer,
        "domain": api.domain,
        "tags": list(api.tags or []),
        "contacts": list(api.contacts or []),
        "compatibility": api.compatibility,
        "validity": api.validity,
        "sla": api.sla,
        "adapter": api.adapter,
    }


def _check_compatibility(layer: str, compatibility: str) -> None:
    """FULL judges a change both ways, which only a canonical model's diff does; a canonical model
    is FULL or NONE, since its producers and consumers are the same contracts' readers and writers."""
    if compatibility == Compatibility.FULL and layer != Layer.CANONICAL:
        raise InvalidRequest("compatibility FULL applies to canonical models (layer `canonical`) only")
    if layer == Layer.CANONICAL and compatibility not in (Compatibility.FULL, Compatibility.NONE):
        raise InvalidRequest(f"a canonical model's compatibility is FULL or NONE, not {compatibility}")


async def _flush_unique(session: AsyncSession, message: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(message) from None
