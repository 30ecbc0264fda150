"""Who may do what in the registry: scopes on the token, membership of the owning team."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from policies.auth import Principal
from registry.db.models import Team, TeamMember
from registry.errors import Forbidden, Unauthenticated

READ = "registry:read"
WRITE = "registry:write"
ADMIN = "registry:admin"
ALL_SCOPES = (READ, WRITE, ADMIN)


def require_scope(principal: Principal | None, scope: str) -> Principal:
    if principal is None:
        raise Unauthenticated("a bearer token is required")
    if scope not in principal.scopes and ADMIN not in principal.scopes:
        raise Forbidden(f"the token lacks the scope {scope}", missing_scopes=frozenset({scope}))
    return principal


def require_read(principal: Principal | None, *, anonymous_reads: bool) -> None:
    if principal is None and anonymous_reads:
        return
    require_scope(principal, READ)


def require_owner(principal: Principal | None, team: Team) -> Principal:
    """Writes to an API need `registry:write` and membership of its owning team (admins excepted)."""
    principal = require_scope(principal, WRITE)
    if ADMIN in principal.scopes:
        return principal
    if not is_member(principal, team):
        raise Forbidden(f"{principal.subject} is not a member of the owning team {team.name}")
    return principal


def is_member(principal: Principal, team: Team) -> bool:
    return any(member.subject == principal.subject for member in team.members)


async def team_names(session: AsyncSession, principal: Principal) -> frozenset[str]:
    """The teams `principal` is a member of."""
    rows = await session.scalars(
        select(Team.name)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.subject == principal.subject)
    )
    return frozenset(rows)
