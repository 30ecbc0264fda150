"""The catalog as Backstage entities (`backstage.io/v1alpha1`): an `API` per API, a `Group` per team.

A Backstage instance adds `GET /api/v1/backstage/entities` (YAML by `Accept`) as a catalog location.
The entities are produced in batches of rows read by keyset, so that a registry of any size is
answered with bounded memory (the answer is streamed, never built whole).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import semver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.models import Api, ApiVersion, Team, VersionState

API_VERSION = "backstage.io/v1alpha1"
ANNOTATION = "charter.dev"
BATCH = 200
# Backstage's rules for names (63 characters of letters, digits, `-_.`) and for tags.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_TAG_INVALID = re.compile(r"[^a-z0-9+#]+")
LIFECYCLE = {
    VersionState.PUBLISHED.value: "production",
    VersionState.DEPRECATED.value: "deprecated",
    VersionState.RETIRED.value: "deprecated",
    VersionState.DRAFT.value: "experimental",
}


def backstage_tag(tag: str) -> str | None:
    """A Charter tag as a Backstage tag (lowercase `[a-z0-9+#]` words joined by `-`), or None."""
    words = _TAG_INVALID.sub("-", tag.lower()).strip("-")
    return words[:63].rstrip("-") or None


def _shown_version(api: Api, versions: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """(version, state) the entity describes: the latest released one, else the highest of any state."""
    if not versions:
        return None
    if api.latest_version is not None:
        for number, state in versions:
            if number == api.latest_version:
                return number, state
    return max(versions, key=lambda v: semver.Version.parse(v[0]))


def api_entity(api: Api, versions: Sequence[tuple[str, str]], public_url: str) -> dict[str, Any]:
    shown = _shown_version(api, versions)
    name = quote(api.name, safe="")
    page = f"{public_url}/apis/{name}"
    annotations = {f"{ANNOTATION}/api": api.name, f"{ANNOTATION}/url": page}
    if shown is not None:
        annotations[f"{ANNOTATION}/version"] = shown[0]
    tags = list(dict.fromkeys(t for t in map(backstage_tag, api.tags or []) if t))
    spec: dict[str, Any] = {
        "type": api.kind or "openapi",
        "lifecycle": LIFECYCLE[shown[1]] if shown else "experimental",
        "owner": f"group:default/{api.owner.name}",
    }
    if api.domain:
        spec["system"] = api.domain
    if shown is not None:
        document = f"{public_url}/api/v1/apis/{name}/versions/{quote(shown[0], safe='')}"
        spec["definition"] = {"$text": document}
    metadata: dict[str, Any] = {
        "name": api.name,
        "title": api.title,
        "annotations": annotations,
        "tags": tags,
        "links": [{"url": page, "title": "Charter catalog"}],
    }
    if api.description:
        metadata["description"] = api.description
    return {"apiVersion": API_VERSION, "kind": "API", "metadata": metadata, "spec": spec}


def group_entity(team: Team, public_url: str) -> dict[str, Any]:
    # Members are token subjects; those that cannot be Backstage user names are left out.
    members = sorted(f"user:default/{m.subject}" for m in team.members if _NAME.match(m.subject))
    metadata: dict[str, Any] = {
        "name": team.name,
        "annotations": {f"{ANNOTATION}/url": f"{public_url}/teams/{quote(team.name, safe='')}"},
    }
    if team.description:
        metadata["description"] = team.description
    return {
        "apiVersion": API_VERSION,
        "kind": "Group",
        "metadata": metadata,
        "spec": {"type": "team", "children": [], "members": members},
    }


async def entities(session: AsyncSession, public_url: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every entity, in batches: the teams, then the APIs, each ordered by id (keyset pages)."""
    after = 0
    while True:
        teams = (
            await session.scalars(select(Team).where(Team.id > after).order_by(Team.id).limit(BATCH))
        ).all()
        if not teams:
            break
        yield [group_entity(team, public_url) for team in teams]
        after = teams[-1].id
    after = 0
    while True:
        apis = (await session.scalars(select(Api).where(Api.id > after).order_by(Api.id).limit(BATCH))).all()
        if not apis:
            break
        found: dict[int, list[tuple[str, str]]] = {api.id: [] for api in apis}
        rows = await session.execute(
            select(ApiVersion.api_id, ApiVersion.version, ApiVersion.state).where(
                ApiVersion.api_id.in_(list(found))
            )
        )
        for api_id, number, state in rows:
            found[api_id].append((number, state))
        yield [api_entity(api, found[api.id], public_url) for api in apis]
        after = apis[-1].id
