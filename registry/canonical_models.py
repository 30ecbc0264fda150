"""Canonical models in the registry: the models a contract is checked against, who declares them,
and the owners told when a model changes in a breaking way.

A canonical model is an API of layer `canonical` holding JSON Schema documents; its owning team is
the object's steward. The pure checks live in contracts.canonical_models; this module hands them the
published models and keeps, per stored version, the schemas that declare one (`x-canonical`), so
that a model's dependents are one indexed lookup.
"""

from __future__ import annotations

from collections import defaultdict

import msgspec
import nodesemver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.canonical_models import Declarations
from contracts.diff import Change, Level
from contracts.lint import RULES, Ruleset
from contracts.lint.canonical import CONTEXT_RULES, LintContext
from contracts.loading import Document
from registry import audit
from registry.api.schemas import DependentOut
from registry.compatibility import stored_document
from registry.db.models import Api, ApiVersion, CanonicalDeclaration, Layer, Team
from registry.versions import RELEASED

TOPIC = "canonical.breaking-change"
# Without a stored ruleset, publishing runs the canonical rules alone, at their default levels.
CANONICAL_RULES = Ruleset({rule: RULES[rule].severity for rule in CONTEXT_RULES})
# Longer pointers are checked on publish but not indexed (the column's length).
MAX_POINTER = 1000
# Dependents listed in one answer: the declarations are indexed, so this bounds rows, not parsing.
MAX_DEPENDENTS = 1000


def publish_ruleset(stored: Ruleset | None) -> Ruleset:
    """The ruleset a publish is linted with: the stored one (its canonical rules at the levels it
    sets, or off), else the canonical rules alone."""
    return stored if stored is not None else CANONICAL_RULES


async def lint_context(
    session: AsyncSession, layer: str | None, declarations: Declarations | None, *, max_comparisons: int
) -> LintContext:
    """The canonical model names (for the naming rule), with the released versions of the models the
    document declares (for the projection check). Only declared models' documents are read; a JSON
    Schema document (a model itself) has no `declarations`."""
    names = (await session.scalars(select(Api.name).where(Api.layer == Layer.CANONICAL.value))).all()
    models: dict[str, dict[str, Document]] = {name: {} for name in names}
    if declarations is None:
        return LintContext(layer, models, max_comparisons)
    wanted = sorted({d.name for d in declarations.found} & set(names))
    if wanted:
        rows = await session.execute(
            select(Api.name, ApiVersion)
            .join(ApiVersion, ApiVersion.api_id == Api.id)
            .where(Api.name.in_(wanted), ApiVersion.state.in_(RELEASED))
        )
        for name, row in rows.all():
            models[name][row.version] = await stored_document(session, row)
    return LintContext(layer, models, max_comparisons, declarations)


def index_declarations(session: AsyncSession, version: ApiVersion, declarations: Declarations | None) -> None:
    """Record the schemas of a stored version that declare a canonical model (drafts too, as scopes)."""
    if declarations is None:
        return
    session.add_all(
        CanonicalDeclaration(version_id=version.id, pointer=d.pointer, canonical=d.name, range=d.range)
        for d in declarations.found
        if len(d.pointer) <= MAX_POINTER
    )


async def dependents(
    session: AsyncSession, canonical: str, *, released_only: bool = True
) -> list[DependentOut]:
    """Every API version that declares model `canonical`: one entry per version and range."""
    stmt = (
        select(Api.name, Team.name, ApiVersion.version, ApiVersion.state, CanonicalDeclaration)
        .join(ApiVersion, ApiVersion.id == CanonicalDeclaration.version_id)
        .join(Api, Api.id == ApiVersion.api_id)
        .join(Team, Team.id == Api.owner_id)
        .where(CanonicalDeclaration.canonical == canonical)
        .order_by(Api.name, ApiVersion.id, CanonicalDeclaration.pointer)
        .limit(MAX_DEPENDENTS)
    )
    if released_only:
        stmt = stmt.where(ApiVersion.state.in_(RELEASED))
    grouped: dict[tuple[str, str, str, str, str], list[str]] = defaultdict(list)
    for api, owner, version, state, row in (await session.execute(stmt)).all():
        grouped[(api, owner, version, state, row.range)].append(row.pointer)
    return [
        DependentOut(api=api, owner=owner, version=version, state=state, range=wanted, pointers=pointers)
        for (api, owner, version, state, wanted), pointers in grouped.items()
    ]


async def affected_dependents(
    session: AsyncSession, canonical: str, base_version: str | None, candidate: str
) -> list[DependentOut]:
    """The dependents a breaking change from `base_version` to `candidate` concerns: those whose range
    the base version satisfies (they were built on it), each told whether the candidate is in range."""
    if base_version is None:
        return []
    out = []
    for item in await dependents(session, canonical):
        if _satisfies(base_version, item.range):
            out.append(msgspec.structs.replace(item, in_range=_satisfies(candidate, item.range)))
    return out


def announce_breaking(
    session: AsyncSession,
    canonical: str,
    version: str,
    base_version: str | None,
    changes: list[Change],
    affected: list[DependentOut],
) -> None:
    """One outbox event per dependent API, for its owning team, as a deprecation tells consumers."""
    breaking = sorted({c.id for c in changes if c.level is Level.ERROR})
    by_api: dict[tuple[str, str], list[DependentOut]] = defaultdict(list)
    for item in affected:
        by_api[(item.api, item.owner)].append(item)
    for (api, owner), items in sorted(by_api.items()):
        audit.emit(
            session,
            TOPIC,
            {
                "canonical": canonical,
                "version": version,
                "base_version": base_version,
                "api": api,
                "owner": owner,
                "changes": breaking,
                "dependents": [
                    {
                        "version": i.version,
                        "range": i.range,
                        "pointers": i.pointers,
                        "in_range": bool(i.in_range),
                    }
                    for i in items
                ],
            },
        )


def _satisfies(version: str, wanted: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, wanted, False))
    except ValueError:
        return False
