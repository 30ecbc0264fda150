"""HTTP routes for governance rulesets: the global one and each team's, as YAML or JSON text."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, Request, get, put
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from registry import rulesets
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import RulesetOut
from registry.api.security import ADMIN_SECURITY, WRITE_SECURITY
from registry.db.models import LintRuleset

YAML = "application/yaml"


@dataclass
class RulesetOperation(Operation):
    """The body is the ruleset's own YAML (or JSON) text, as it will be stored."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="`extends`, `rules` (severities, `off`) and custom rules: see docs/lint-rules.md",
            # The text is stored as sent; its root is a mapping, as in YAML or JSON.
            content={YAML: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT))},
        )


class RulesetController(Controller):
    path = "/api/v1"
    tags = ["rulesets"]

    @put(
        "/rulesets/global",
        status_code=200,
        responses=errors(400, 401, 403, 422),
        summary="Set the global ruleset (admins)",
        operation_class=RulesetOperation,
        security=ADMIN_SECURITY,
    )
    async def put_global(self, request: Request, session: Session, principal: Caller) -> RulesetOut:
        return await self._put(request, session, principal, rulesets.GLOBAL)

    @get("/rulesets/global", responses=errors(400, 401, 403, 404), summary="The global ruleset")
    async def get_global(self, session: Session, principal: Caller, settings: Config) -> RulesetOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        return _out(await rulesets.get_ruleset(session, rulesets.GLOBAL))

    @put(
        "/teams/{team:str}/ruleset",
        status_code=200,
        responses=errors(400, 401, 403, 404, 422),
        summary="Set a team's ruleset (replaces the global one for the team's APIs)",
        operation_class=RulesetOperation,
        security=WRITE_SECURITY,
    )
    async def put_team(
        self, request: Request, session: Session, principal: Caller, team: ApiName
    ) -> RulesetOut:
        return await self._put(request, session, principal, rulesets.team_scope(team))

    @get("/teams/{team:str}/ruleset", responses=errors(400, 401, 403, 404), summary="A team's ruleset")
    async def get_team(
        self, session: Session, principal: Caller, settings: Config, team: ApiName
    ) -> RulesetOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        return _out(await rulesets.get_ruleset(session, rulesets.team_scope(team)))

    async def _put(self, request: Request, session: Session, principal: Caller, scope: str) -> RulesetOut:
        text = (await request.body()).decode("utf-8", errors="replace")
        row = await rulesets.put_ruleset(session, principal, scope, text)
        await session.commit()
        return _out(row)


def _out(row: LintRuleset) -> RulesetOut:
    return RulesetOut(
        scope=row.scope, content=row.content, updated_at=row.updated_at, updated_by=row.updated_by
    )
