"""HTTP routes for service levels: an API's compliance with its SLA, and the Prometheus alerting
rules generated from every SLA and flow. Both are reads (`registry:read`, or anonymous where the
registry allows anonymous reads)."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter
from sqlalchemy import or_, select

from registry import catalog
from registry.access import require_read
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.db.models import Api, Team
from registry.slo import alert_rules
from registry.slo.compliance import SloOut, slo_of

ApiName = Annotated[str, PathParameter(description="API name", pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]


@get(
    "/api/v1/apis/{name:str}/slo",
    responses=errors(400, 401, 403, 404),
    summary="The API's compliance with its SLA, measured by the gateway",
    tags=["apis"],
)
async def api_slo(session: Session, principal: Caller, settings: Config, name: ApiName) -> SloOut:
    """Availability (non-5xx share, 429 left out) and p99 latency per window (5m, 1h, 6h, 3d, 30d),
    overall and per version, against the SLA's targets; the 30-day error budget left and burn rates.
    An API without an SLA is measured all the same: its targets, budget and burn rates are null."""
    require_read(principal, anonymous_reads=settings.anonymous_reads)
    api = await catalog.get_api(session, name)
    return await slo_of(session, api)


@get(
    "/api/v1/alerts/prometheus-rules",
    responses={
        # Documented as the structure the YAML holds, so clients (and schemathesis) read it as such.
        200: ResponseSpec(
            alert_rules.RuleFile, media_type="application/yaml", description="A Prometheus rules file"
        ),
        **errors(401, 403),
    },
    summary="Prometheus alerting rules generated from every API's SLA and every flow",
    tags=["alerts"],
    media_type="application/yaml",
)
async def prometheus_rules(
    request: Request, session: Session, principal: Caller, settings: Config
) -> Response[bytes]:
    """A rules file for Prometheus (`rule_files:`): error-budget burn-rate alerts (page and ticket),
    p99 latency alerts and their recording rules per API with an SLA, and alerts for parked and late
    runs per hosted flow; each labelled with the owning team."""
    require_read(principal, anonymous_reads=settings.anonymous_reads)
    # Event APIs (AsyncAPI) are not served by the gateway: no series to alert on.
    rows = await session.execute(
        select(Api.name, Team.name, Api.sla)
        .join(Team)
        .where(or_(Api.kind.is_(None), Api.kind != "asyncapi"))
        .order_by(Api.name)
    )
    apis = [
        alert_rules.ApiObjectives(
            api=api,
            team=team,
            availability=sla.get("availability"),
            latency_p99_ms=sla.get("latency_p99_ms"),
        )
        for api, team, sla in rows
        if sla  # a JSON null and SQL NULL both read as None
    ]
    await session.rollback()
    runner = request.app.state.flow_runner
    flows = [
        alert_rules.FlowObjectives(flow=flow.name, team=flow.owner, sla_seconds=flow.sla_seconds)
        for flow in sorted(runner.flows.values(), key=lambda f: f.name)
    ]
    body = alert_rules.to_yaml(alert_rules.rule_file(apis, flows))
    return Response(body, media_type="application/yaml")
