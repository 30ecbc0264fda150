"""HTTP routes for consumers of an API and the impact of a candidate contract on them."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, QueryParameter

from registry import catalog, consumers, publishing, usage
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Egress, Secrets, Session
from registry.api.problems import errors
from registry.api.schemas import NO_NUL, ConsumerIn, ConsumerList, ConsumerOut, ImpactOut, UsageList, UsageOut
from registry.api.security import WRITE_SECURITY
from registry.api.versions import PublishOperation, VersionName, read_submission
from registry.db.models import Consumer
from registry.versions import get_version


def consumer_out(api_name: str, row: Consumer) -> ConsumerOut:
    return ConsumerOut(
        api=api_name,
        consumer=row.consumer,
        team=row.team.name,
        versions=row.versions,
        operations=list(row.operations),
        registered_at=row.registered_at,
        registered_by=row.registered_by,
        webhook_url=row.webhook_url,
    )


class ConsumerController(Controller):
    path = "/api/v1/apis/{name:str}"
    tags = ["consumers"]

    @post(
        "/consumers",
        responses={
            200: ResponseSpec(ConsumerOut, description="The consumer was registered before and is updated"),
            **errors(400, 401, 403, 404, 422),
        },
        summary="Register a consumer of the API",
        security=WRITE_SECURITY,
    )
    async def register(
        self,
        session: Session,
        principal: Caller,
        egress: Egress,
        secrets: Secrets,
        name: ApiName,
        data: Annotated[ConsumerIn, Body()],
    ) -> Response[ConsumerOut]:
        """A team records that one of its apps uses the API: the versions it accepts and what it calls.

        A webhook must be a public address unless the operator's egress allow-list names it (422);
        its secret is stored encrypted and never shown again."""
        row, created = await consumers.register_consumer(
            session,
            principal,
            name,
            consumer=data.consumer,
            team=data.team,
            versions=data.versions,
            operations=data.operations,
            webhook_url=data.webhook_url,
            webhook_secret=data.webhook_secret,
            egress=egress,
            secrets=secrets,
        )
        await session.commit()
        return Response(consumer_out(name, row), status_code=201 if created else 200)

    @get("/consumers", responses=errors(400, 401, 403, 404), summary="The consumers of the API")
    async def list_consumers(
        self, session: Session, principal: Caller, settings: Config, name: ApiName
    ) -> ConsumerList:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        return ConsumerList(
            items=[consumer_out(name, row) for row in await consumers.list_consumers(session, api)]
        )

    @get("/usage", responses=errors(400, 401, 403, 404), summary="Calls seen at the gateway, by consumer")
    async def usage(self, session: Session, principal: Caller, settings: Config, name: ApiName) -> UsageList:
        """Every consumer the gateway has served, registered or not, per version and operation."""
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        rows = await usage.usage_of(session, api.name)
        return UsageList(
            items=[
                UsageOut(
                    consumer=r.consumer,
                    version=r.version,
                    operation=r.operation,
                    calls=r.calls,
                    last_seen=r.last_seen,
                )
                for r in rows
            ]
        )

    @get(
        "/versions/{version:str}/impact",
        responses=errors(400, 401, 403, 404),
        summary="Which consumers a deprecation of this version concerns",
    )
    async def deprecation_impact(
        self, session: Session, principal: Caller, settings: Config, name: ApiName, version: VersionName
    ) -> ImpactOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        row = await get_version(session, api, version)
        affected = await consumers.users_of_version(session, api, row.version)
        return ImpactOut(api=name, version=row.version, changes=[], affected=affected)

    @post(
        "/impact",
        operation_class=PublishOperation,
        status_code=200,
        responses=errors(400, 401, 403, 404, 413, 415, 422),
        summary="Which consumers a candidate document would break",
    )
    async def impact(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: Annotated[str | None, QueryParameter(name="version", max_length=100, pattern=NO_NUL)] = None,
        root: Annotated[str | None, QueryParameter(name="root", max_length=500, pattern=NO_NUL)] = None,
    ) -> ImpactOut:
        submission = await read_submission(request, root)
        checked = await publishing.check_candidate(
            session,
            principal,
            api_name=name,
            submission=submission,
            version=version,
            limits=settings.load_limits(),
            anonymous_reads=settings.anonymous_reads,
        )
        found = await consumers.impact(session, checked.api, checked.document, limits=settings.load_limits())
        return ImpactOut(
            api=name,
            version=checked.version,
            changes=found.changes,
            affected=found.affected,
        )
