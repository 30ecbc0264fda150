"""HTTP routes for teams and APIs: parse, call registry.catalog, return structs."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, patch, post, put
from litestar.params import Body, PathParameter

from registry import catalog
from registry.access import require_read
from registry.api.dependencies import Caller, Config, Egress, Session
from registry.api.problems import errors
from registry.api.schemas import AdapterIn, ApiIn, ApiOut, ApiPatch, Sla, TeamIn, TeamList, TeamOut
from registry.api.security import ADMIN_SECURITY, WRITE_SECURITY
from registry.api.views import api_out, team_out
from registry.errors import InvalidRequest

ApiName = Annotated[str, PathParameter(description="API name", pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]


class TeamController(Controller):
    path = "/api/v1/teams"
    tags = ["teams"]

    @get(responses=errors(401, 403), summary="List teams")
    async def list_teams(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
    ) -> TeamList:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        return TeamList(items=[team_out(t) for t in await catalog.list_teams(session)])

    @post(responses=errors(400, 401, 403, 409), summary="Create a team (admins)", security=ADMIN_SECURITY)
    async def create_team(
        self,
        session: Session,
        principal: Caller,
        data: Annotated[TeamIn, Body()],
    ) -> TeamOut:
        team = await catalog.create_team(
            session, principal, name=data.name, description=data.description, members=data.members
        )
        await session.commit()
        return team_out(team)


class ApiController(Controller):
    path = "/api/v1/apis"
    tags = ["apis"]

    @post(
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Register an API, owned by a team",
        security=WRITE_SECURITY,
    )
    async def create_api(
        self,
        session: Session,
        principal: Caller,
        data: Annotated[ApiIn, Body()],
    ) -> ApiOut:
        api = await catalog.create_api(session, principal, data)
        await session.commit()
        return api_out(api)

    @get("/{name:str}", responses=errors(400, 401, 403, 404), summary="An API's catalog entry")
    async def get_api(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
    ) -> ApiOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        return api_out(await catalog.get_api(session, name))

    @put(
        "/{name:str}/sla",
        responses=errors(400, 401, 403, 404),
        summary="Set the API's SLA",
        security=WRITE_SECURITY,
    )
    async def put_sla(
        self,
        session: Session,
        principal: Caller,
        name: ApiName,
        data: Annotated[Sla, Body()],
    ) -> ApiOut:
        """The API's SLA: tier, targets, and the per-consumer rate limit the gateway enforces."""
        api = await catalog.update_api(session, principal, name, ApiPatch(sla=data))
        await session.commit()
        return api_out(api)

    @put(
        "/{name:str}/adapter",
        responses=errors(400, 401, 403, 404, 422),
        summary="Bind the API to a gateway adapter",
        security=WRITE_SECURITY,
    )
    async def put_adapter(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        egress: Egress,
        name: ApiName,
        data: Annotated[AdapterIn, Body()],
    ) -> ApiOut:
        """Bind the API's operations to a gateway adapter: mock, an HTTP upstream, Python handlers or a
        flow; `operations` binds single operationIds otherwise.

        An upstream must be a public address unless the operator's egress allow-list names it (422);
        a flow must be registered in this server (422) and owned by the API's team, unless an admin binds
        it (403)."""
        hosted = request.app.state.flow_runner.flows
        unknown = sorted(data.flows() - set(hosted))
        if unknown:
            raise InvalidRequest(f"no flow named {', '.join(unknown)} is registered")
        owners = {flow.name: flow.owner for flow in hosted.values()}
        binding = msgspec.to_builtins(data)
        api = await catalog.set_adapter(session, principal, name, binding, egress=egress, flow_owners=owners)
        await session.commit()
        return api_out(api)

    @patch(
        "/{name:str}",
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Change an API's catalog entry",
        security=WRITE_SECURITY,
    )
    async def update_api(
        self,
        session: Session,
        principal: Caller,
        name: ApiName,
        data: Annotated[ApiPatch, Body()],
    ) -> ApiOut:
        api = await catalog.update_api(session, principal, name, data)
        await session.commit()
        return api_out(api)
