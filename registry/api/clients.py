"""HTTP routes for consumer applications registered with the built-in issuer."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.params import Body

from policies.auth import ClientCredentialsIssuer
from registry import clients, grants
from registry.api.dependencies import Caller, Session
from registry.api.discovery import Limit, Offset
from registry.api.grants import ClientId, StateFilter
from registry.api.problems import errors
from registry.api.schemas import AccessRequestPage, ClientCreated, ClientIn, ClientOut
from registry.api.security import WRITE_SECURITY
from registry.api.views import access_request_out, client_out


class ClientController(Controller):
    path = "/api/v1/clients"
    tags = ["clients"]

    @post(
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Register a consumer app",
        security=WRITE_SECURITY,
    )
    async def register_client(
        self, request: Request, session: Session, principal: Caller, data: Annotated[ClientIn, Body()]
    ) -> ClientCreated:
        """Admins, or members of `team` for their own apps; the answer holds the client secret, once.

        A team member may give the client only scopes its own team's APIs declare (403 names the
        owner of any other; 422 a scope no published API declares). Other teams' scopes come
        through an access request that their owner approves.
        """
        issuer: ClientCredentialsIssuer = request.app.state.issuer
        registration = await clients.register_client(
            session,
            principal,
            client_id=data.client_id,
            name=data.name,
            team=data.team,
            scopes=data.scopes,
            taken=issuer.knows,
        )
        await session.commit()
        issuer.register(clients.client_config(registration.client))
        return ClientCreated(
            client_id=data.client_id,
            name=data.name,
            team=data.team,
            scopes=registration.client.scopes,
            client_secret=registration.secret,
        )

    @get("/{client_id:str}", responses=errors(400, 401, 403, 404), summary="A registered consumer app")
    async def get_client(self, session: Session, principal: Caller, client_id: ClientId) -> ClientOut:
        """For members of the client's team and admins: its scopes as they stand."""
        return client_out(await grants.visible_client(session, principal, client_id))

    @get(
        "/{client_id:str}/access-requests",
        responses=errors(400, 401, 403, 404),
        summary="Access requests made for a consumer app",
    )
    async def access_requests(
        self,
        session: Session,
        principal: Caller,
        client_id: ClientId,
        in_state: StateFilter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AccessRequestPage:
        """For members of the client's team and admins, newest first."""
        rows, total = await grants.requests_of_client(
            session, principal, client_id, state=in_state, limit=limit, offset=offset
        )
        return AccessRequestPage(
            items=[access_request_out(r) for r in rows], total=total, limit=limit, offset=offset
        )
