"""HTTP routes for finding contracts and reading the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from registry import audit, search
from registry.access import ADMIN, require_read, require_scope
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import AuditPage, LayerName, SearchPage, StateName
from registry.api.views import audit_out, search_hit

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="items to skip")]
Text = Annotated[str | None, QueryParameter(max_length=200)]
When = Annotated[dt.datetime | None, QueryParameter(description="ISO 8601 date-time")]


class DiscoveryController(Controller):
    path = "/api/v1"

    @get("/search", tags=["search"], responses=errors(400, 401, 403), summary="Search APIs")
    async def search(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        q: Text = None,
        owner: Text = None,
        layer: Annotated[LayerName | None, QueryParameter()] = None,
        domain: Text = None,
        tag: Text = None,
        kind: Annotated[str | None, QueryParameter(pattern=r"^(openapi|asyncapi)$")] = None,
        # `state` is litestar's reserved name for application state.
        version_state: Annotated[StateName | None, QueryParameter(name="state")] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> SearchPage:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        query = search.SearchQuery(
            q=q,
            owner=owner,
            layer=layer,
            domain=domain,
            tag=tag,
            kind=kind,
            state=version_state,
            limit=limit,
            offset=offset,
        )
        rows, total = await search.search_apis(session, query)
        return SearchPage(items=[search_hit(a) for a in rows], total=total, limit=limit, offset=offset)

    @get("/audit", tags=["audit"], responses=errors(400, 401, 403), summary="Read the audit log")
    async def audit_log(
        self,
        session: Session,
        principal: Caller,
        subject: Text = None,
        actor: Text = None,
        action: Text = None,
        since: When = None,
        until: When = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AuditPage:
        # Before/after snapshots may show more than a reader should see: the log is for admins.
        require_scope(principal, ADMIN)
        query = audit.AuditQuery(
            subject=subject, actor=actor, action=action, since=since, until=until, limit=limit, offset=offset
        )
        rows, total = await audit.query(session, query)
        return AuditPage(items=[audit_out(e) for e in rows], total=total, limit=limit, offset=offset)
