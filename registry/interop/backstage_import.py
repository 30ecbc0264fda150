"""`charter import-backstage`: publish the API entities of Backstage catalog files through the REST API,
as any client would (CHARTER_URL, CHARTER_TOKEN): the registry's own checks and audit apply."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from registry.interop.backstage_files import ApiEntity


class RegistryClient(Protocol):
    """What the CLI's registry client offers: an answer, or an error raised for answers >= 400."""

    def request(
        self, method: str, path: str, *, source: str | None = None, **kwargs: Any
    ) -> httpx.Response: ...

    def request_optional(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def stream(self, method: str, path: str, **kwargs: Any) -> AbstractContextManager[httpx.Response]: ...


@dataclass
class EntityOutcome:
    entity: ApiEntity
    outcome: str  # imported | unchanged | skipped | failed
    detail: str
    error: Exception | None = None


def import_entities(
    registry: RegistryClient, entities: list[ApiEntity], report: Callable[[EntityOutcome], None]
) -> list[EntityOutcome]:
    """Publish each entity's definition (creating its team when the token may), one at a time; a
    failure of one is reported and the others go on."""
    teams: set[str] | None = None
    outcomes = []
    for entity in entities:
        if entity.skipped:
            outcome = EntityOutcome(entity, "skipped", entity.skipped)
        elif entity.problem or entity.definition is None or entity.team is None:
            outcome = EntityOutcome(entity, "failed", entity.problem or "no definition")
        else:
            try:
                if teams is None:
                    teams = {t["name"] for t in registry.request("GET", "/api/v1/teams").json()["items"]}
                if entity.team not in teams:
                    registry.request("POST", "/api/v1/teams", json={"name": entity.team})
                    teams.add(entity.team)
                outcome = _publish(registry, entity)
            except Exception as exc:  # the CLI's error for a refused request: reported, the rest go on
                if not hasattr(exc, "details"):
                    raise
                outcome = EntityOutcome(entity, "failed", str(exc), exc)
        report(outcome)
        outcomes.append(outcome)
    return outcomes


def _publish(registry: RegistryClient, entity: ApiEntity) -> EntityOutcome:
    existed = registry.request_optional("GET", f"/api/v1/apis/{entity.name}") is not None
    params = {"owner": entity.team or ""}
    if entity.lifecycle == "experimental":
        params["draft"] = "true"  # Backstage's experimental stage is Charter's draft
    response = registry.request(
        "POST",
        f"/api/v1/apis/{entity.name}/versions",
        source=entity.source,
        content=entity.definition,
        headers={"Content-Type": entity.media_type},
        params=params,
    )
    body = response.json()
    if not existed:
        # The catalog entry as Backstage describes it; an API already here keeps its own.
        patch: dict[str, Any] = {"tags": entity.tags}
        if entity.title:
            patch["title"] = entity.title[:300]
        if entity.description:
            patch["description"] = entity.description
        if entity.system:
            patch["domain"] = entity.system[:100]
        registry.request("PATCH", f"/api/v1/apis/{entity.name}", json=patch)
    outcome = "imported" if response.status_code == 201 else "unchanged"
    return EntityOutcome(entity, outcome, f"{body['version']} ({body['state']}, owner {entity.team})")
