"""HTTP routes for finding contracts and reading the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.params import QueryParameter

from contracts.errors import Issue
from registry import audit, search
from registry.access import ADMIN, require_read, require_scope
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import NO_NUL, AuditPage, LayerName, SearchPage, StateName
from registry.api.security import ADMIN_SECURITY
from registry.api.views import audit_out, search_hit
from registry.errors import RegistryError

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="page size")]
Offset = Annotated[int, QueryParameter(ge=0, le=1_000_000, description="items to skip")]
Text = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)]
# Taken as text and parsed here: litestar's own datetime parsing also reads numbers (`0.5`) and
# dates without a UTC offset, which RFC 3339's date-time (the contract's `format`) does not allow.
When = Annotated[
    str | None,
    QueryParameter(
        max_length=64, description="RFC 3339 date-time with offset", schema_extra={"format": "date-time"}
    ),
]


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
        kind: Annotated[str | None, QueryParameter(pattern=r"^(openapi|asyncapi|json-schema)$")] = None,
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

    @get(
        "/audit",
        tags=["audit"],
        responses=errors(400, 401, 403),
        summary="Read the audit log (admins)",
        security=ADMIN_SECURITY,
    )
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
            subject=subject,
            actor=actor,
            action=action,
            since=instant(since, "since"),
            until=instant(until, "until"),
            limit=limit,
            offset=offset,
        )
        rows, total = await audit.query(session, query)
        return AuditPage(items=[audit_out(e) for e in rows], total=total, limit=limit, offset=offset)


def instant(value: str | None, name: str) -> dt.datetime | None:
    """An RFC 3339 date-time in UTC; a bound past what Python dates hold is the end of that range."""
    if value is None:
        return None
    try:
        parsed = msgspec.convert(value, dt.datetime)
    except msgspec.ValidationError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RegistryError(
            f"`{name}` must be an RFC 3339 date-time with an offset, such as 2026-01-31T12:00:00Z",
            [Issue(pointer=f"query:{name}", message="expected an RFC 3339 date-time with an offset")],
        )
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        limit = dt.datetime.max if parsed.year == dt.MAXYEAR else dt.datetime.min
        return limit.replace(tzinfo=dt.UTC)
