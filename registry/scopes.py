"""Who owns a scope: the team whose API's released contracts declare it.

The gateway checks the scopes a token carries against the scopes an operation requires, and scope
names are one namespace for every API behind it. A scope therefore belongs to the team of the API
that declares it, and only that team (or an admin) may put it on a client. Each scope has one owner
team: a contract that declares a scope another team's released API declares is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import Issue
from contracts.index import declared_scopes
from contracts.loading import Document
from contracts.plural import counted
from registry.access import ALL_SCOPES
from registry.db.models import Api, ApiVersion, Team, VersionScope
from registry.errors import InvalidRequest, ScopeNotOwned, ScopeTaken
from registry.versions import RELEASED

# Longer scopes fit no registered client (registration takes up to 100 characters).
MAX_SCOPE_LENGTH = 200
_CHUNK = 500  # scopes per IN list: a contract may declare thousands


class ScopeOwner(msgspec.Struct, frozen=True):
    api: str
    team: str


def declared(document: Document) -> frozenset[str]:
    if not isinstance(document, dict):  # stored below full validity, it may be any YAML value
        return frozenset()
    return frozenset(s for s in declared_scopes(document) if len(s) <= MAX_SCOPE_LENGTH)


def index_version(session: AsyncSession, version: ApiVersion, scopes: frozenset[str]) -> None:
    """Record the scopes a stored version declares (drafts too: a release must not parse it again)."""
    session.add_all(VersionScope(version_id=version.id, scope=s) for s in sorted(scopes))


async def version_scopes(session: AsyncSession, version: ApiVersion) -> frozenset[str]:
    rows = await session.scalars(select(VersionScope.scope).where(VersionScope.version_id == version.id))
    return frozenset(rows.all())


async def owners(session: AsyncSession, scopes: Iterable[str]) -> dict[str, list[ScopeOwner]]:
    """For each scope, the APIs whose released versions declare it and their teams (empty: nobody's)."""
    wanted = sorted(set(scopes))
    found: dict[str, set[ScopeOwner]] = {s: set() for s in wanted}
    for start in range(0, len(wanted), _CHUNK):
        rows = await session.execute(
            select(VersionScope.scope, Api.name, Team.name)
            .join(ApiVersion, ApiVersion.id == VersionScope.version_id)
            .join(Api, Api.id == ApiVersion.api_id)
            .join(Team, Team.id == Api.owner_id)
            .where(VersionScope.scope.in_(wanted[start : start + _CHUNK]), ApiVersion.state.in_(RELEASED))
            .distinct()
        )
        for scope, api, team in rows:
            found[scope].add(ScopeOwner(api=api, team=team))
    return {s: sorted(o, key=lambda owner: (owner.team, owner.api)) for s, o in found.items()}


async def declared_by(session: AsyncSession, api: Api) -> frozenset[str]:
    """The scopes the API's released versions declare: what it may grant."""
    rows = await session.scalars(
        select(VersionScope.scope)
        .join(ApiVersion, ApiVersion.id == VersionScope.version_id)
        .where(ApiVersion.api_id == api.id, ApiVersion.state.in_(RELEASED))
        .distinct()
    )
    return frozenset(rows.all())


async def require_own(session: AsyncSession, team: Team, scopes: Sequence[str]) -> None:
    """A team gives its clients the scopes of its own APIs; another team's need that team's grant,
    and a scope no released API declares is nobody's to give yet (it would be held in advance of the
    API that later declares it)."""
    found = await owners(session, (s for s in scopes if s not in ALL_SCOPES))
    foreign: list[Issue] = []
    unknown: dict[str, Issue] = {}
    for position, scope in enumerate(scopes):
        if scope in ALL_SCOPES:
            continue
        others = [o for o in found[scope] if o.team != team.name]
        if others:
            foreign.append(Issue(pointer=f"/scopes/{position}", message=_belongs(scope, others)))
        elif not found[scope]:
            unknown[scope] = Issue(
                pointer=f"/scopes/{position}", message=f"no published API declares {scope}"
            )
    if foreign:
        raise ScopeNotOwned(
            "; ".join(issue.message for issue in foreign) + f" (team {team.name} may not give it)",
            foreign,
        )
    if unknown:
        raise InvalidRequest(f"no published API declares {', '.join(unknown)}", list(unknown.values()))


def _belongs(scope: str, others: list[ScopeOwner]) -> str:
    return f"{scope} belongs to {_apis(others)}: ask with POST /api/v1/apis/{others[0].api}/access-requests"


def _apis(owners: list[ScopeOwner]) -> str:
    return ", ".join(f"API {o.api} of team {o.team}" for o in owners)


async def require_unclaimed(session: AsyncSession, api: Api, scopes: Iterable[str]) -> None:
    """Refuse to release a contract declaring a scope that another team's released API declares."""
    taken = {
        scope: others
        for scope, declared in (await owners(session, scopes)).items()
        if (others := [o for o in declared if o.team != api.owner.name])
    }
    if taken:
        issues = [
            Issue(pointer="", message=f"{scope} is declared by " + _apis(others))
            for scope, others in sorted(taken.items())
        ]
        raise ScopeTaken(
            f"the contract declares {counted(len(taken), 'scope')} of another team: "
            f"{', '.join(sorted(taken))}; "
            "scope names are shared by every API behind the gateway, so choose names of your own",
            issues,
        )
