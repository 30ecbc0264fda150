"""Governance rulesets stored in the registry: a global one and one per team, applied on publish."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import Issue
from contracts.lint import Finding, Ruleset, Severity, lint, load_ruleset
from contracts.lint.canonical import LintContext
from contracts.lint.spectral.paths import Budget
from contracts.loading import Document
from contracts.plural import counted
from contracts.positions import with_positions
from policies.auth import Principal
from registry import audit, catalog
from registry.access import ADMIN, require_owner, require_scope
from registry.db.engine import begin_write
from registry.db.models import Api, LintRuleset
from registry.errors import NotFound, RulesetViolation

GLOBAL = "global"
# A stored ruleset is a team's (any JSONPath, any regular expression): one publish lints for at most
# this long and this many steps (nodes visited, regular expressions run), then refuses the document
# with a `lint-budget` error. Stripe's 3.9 MB document under a full style guide takes about 500,000
# steps and 15-20 s on a loaded 2-core machine.
PUBLISH_LINT_SECONDS = 60.0
PUBLISH_LINT_STEPS = 5_000_000


def team_scope(team: str) -> str:
    return f"team:{team}"


async def put_ruleset(
    session: AsyncSession, principal: Principal | None, scope: str, content: str
) -> LintRuleset:
    """Store a ruleset after checking it parses; the global one is an admin's, a team's its members'."""
    load_ruleset(content)  # InvalidRuleset (a ContractError): 422 with the reason, nothing stored
    await begin_write(session)
    if scope == GLOBAL:
        actor = require_scope(principal, ADMIN)
    else:
        actor = require_owner(principal, await catalog.get_team(session, scope.removeprefix("team:")))
    row = await session.scalar(select(LintRuleset).where(LintRuleset.scope == scope))
    before = {"content": row.content} if row is not None else None
    if row is None:
        row = LintRuleset(scope=scope, content=content, updated_by=actor.subject)
        session.add(row)
    else:
        row.content, row.updated_by = content, actor.subject
    await session.flush()
    audit.record(
        session,
        actor=actor.subject,
        action="ruleset.updated",
        subject=f"rulesets/{scope}",
        before=before,
        after={"content": content},
    )
    return row


async def get_ruleset(session: AsyncSession, scope: str) -> LintRuleset:
    row = await session.scalar(select(LintRuleset).where(LintRuleset.scope == scope))
    if row is None:
        raise NotFound(f"no ruleset is stored for {scope}")
    return row


async def applicable(session: AsyncSession, api: Api) -> Ruleset | None:
    """The owning team's ruleset, else the global one, else none (publishing is not linted)."""
    return await for_team(session, api.owner.name)


async def for_team(session: AsyncSession, team: str) -> Ruleset | None:
    for scope in (team_scope(team), GLOBAL):
        row = await session.scalar(select(LintRuleset).where(LintRuleset.scope == scope))
        if row is not None:
            return load_ruleset(row.content)
    return None


def enforce(
    document: Document,
    ruleset: Ruleset,
    context: LintContext | None = None,
    *,
    source: bytes | None = None,
    media_type: str | None = None,
) -> list[Finding]:
    """Lint on publish: `error` findings refuse the document (422, each with its pointer, and its line
    and column in `source`, the text the document was parsed from, when there is one)."""
    findings = lint(document, ruleset, Budget(PUBLISH_LINT_SECONDS, PUBLISH_LINT_STEPS), context)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        raise RulesetViolation(
            f"the document breaks the governance ruleset: {counted(len(errors), 'error finding')}",
            _located(
                [Issue(pointer=f.pointer, message=f"{f.rule}: {f.message}") for f in errors],
                source,
                media_type,
            ),
        )
    return findings


def _located(issues: list[Issue], source: bytes | None, media_type: str | None) -> list[Issue]:
    return with_positions(issues, source, media_type=media_type) if source else issues
