"""HTTP routes for access requests: a consumer team asks for an API's scopes, the owner team decides."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, PathParameter, QueryParameter

from policies.auth import ClientCredentialsIssuer
from registry import clients, grants
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Session
from registry.api.discovery import Limit, Offset
from registry.api.problems import errors
from registry.api.schemas import (
    AccessRequestIn,
    AccessRequestOut,
    AccessRequestPage,
    AccessStateName,
    DecisionIn,
    GrantList,
    GrantOut,
)
from registry.api.security import WRITE_SECURITY
from registry.api.views import access_request_out, grant_out
from registry.db.models import AccessRequest, Client

ClientId = Annotated[str, PathParameter(description="client id", pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
RequestId = Annotated[int, PathParameter(description="access request id", ge=1, le=2**31 - 1)]
StateFilter = Annotated[
    AccessStateName | None, QueryParameter(name="state", description="only requests in this state")
]


class AccessRequestController(Controller):
    path = "/api/v1/apis/{name:str}/access-requests"
    tags = ["access"]

    @post(
        responses={
            200: ResponseSpec(AccessRequestOut, description="The same request is already open or granted"),
            **errors(400, 401, 403, 404, 422),
        },
        summary="Ask for scopes of the API for a client",
        security=WRITE_SECURITY,
    )
    async def request_access(
        self, session: Session, principal: Caller, name: ApiName, data: Annotated[AccessRequestIn, Body()]
    ) -> Response[AccessRequestOut]:
        """A member of the client's team asks; the API's owner team (or an admin) decides. Only scopes
        that the API's published versions declare may be asked for, never the registry's own."""
        requested = await grants.request_access(
            session, principal, name, client_id=data.client_id, scopes=data.scopes, reason=data.reason
        )
        await session.commit()
        return Response(access_request_out(requested.request), status_code=201 if requested.created else 200)

    @get(responses=errors(400, 401, 403, 404), summary="Access requests for the API's scopes")
    async def list_requests(
        self,
        session: Session,
        principal: Caller,
        name: ApiName,
        in_state: StateFilter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> AccessRequestPage:
        """The owner team and admins see all of them; any other team only those for its own clients."""
        rows, total = await grants.requests_of_api(
            session, principal, name, state=in_state, limit=limit, offset=offset
        )
        return AccessRequestPage(
            items=[access_request_out(r) for r in rows], total=total, limit=limit, offset=offset
        )

    @get("/{request_id:int}", responses=errors(400, 401, 403, 404), summary="One access request")
    async def get_request(
        self, session: Session, principal: Caller, name: ApiName, request_id: RequestId
    ) -> AccessRequestOut:
        return access_request_out(await grants.get_request(session, principal, name, request_id))

    @post(
        "/{request_id:int}/approve",
        status_code=200,
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Grant the requested scopes to the client",
        security=WRITE_SECURITY,
    )
    async def approve(
        self, request: Request, session: Session, principal: Caller, name: ApiName, request_id: RequestId
    ) -> AccessRequestOut:
        """Members of the API's owner team, or admins; the client's new tokens may carry the scopes."""
        row = await grants.approve(session, principal, name, request_id)
        return await _decided(request, session, row)

    @post(
        "/{request_id:int}/reject",
        status_code=200,
        responses=errors(400, 401, 403, 404, 409),
        summary="Refuse a pending access request",
        security=WRITE_SECURITY,
    )
    async def reject(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        name: ApiName,
        request_id: RequestId,
        data: Annotated[DecisionIn | None, Body()] = None,
    ) -> AccessRequestOut:
        row = await grants.reject(session, principal, name, request_id, data.reason if data else None)
        return await _decided(request, session, row)

    @post(
        "/{request_id:int}/revoke",
        status_code=200,
        responses=errors(400, 401, 403, 404, 409),
        summary="Take granted scopes back from the client",
        security=WRITE_SECURITY,
    )
    async def revoke(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        name: ApiName,
        request_id: RequestId,
        data: Annotated[DecisionIn | None, Body()] = None,
    ) -> AccessRequestOut:
        """Members of the API's owner team, or admins. Tokens the client already holds lose the
        scopes at once: the built-in issuer's verifier narrows a token to what its client holds now."""
        row = await grants.revoke(session, principal, name, request_id, data.reason if data else None)
        return await _decided(request, session, row)


class GrantController(Controller):
    path = "/api/v1/apis/{name:str}/grants"
    tags = ["access"]

    @get(responses=errors(400, 401, 403, 404), summary="Clients holding the API's scopes")
    async def list_grants(self, session: Session, principal: Caller, name: ApiName) -> GrantList:
        """For the owner team and admins: every client that holds a scope the API declares, whether an
        approved request gave it or it was given at registration."""
        return GrantList(items=[grant_out(h) for h in await grants.holders(session, principal, name)])

    @post(
        "/{client_id:str}/revoke",
        status_code=200,
        responses=errors(400, 401, 403, 404),
        summary="Take all of the API's scopes back from a client",
        security=WRITE_SECURITY,
    )
    async def take_back(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        name: ApiName,
        client_id: ClientId,
        data: Annotated[DecisionIn | None, Body()] = None,
    ) -> GrantOut:
        """Members of the owner team, or admins; the client's approved requests for the API are revoked
        and its tokens lose the scopes at once."""
        holder = await grants.take_back(session, principal, name, client_id, data.reason if data else None)
        await session.commit()
        _teach_issuer(request, holder.client)
        return grant_out(holder)


async def _decided(request: Request, session: Session, row: AccessRequest) -> AccessRequestOut:
    await session.commit()
    _teach_issuer(request, row.client)
    return access_request_out(row)


def _teach_issuer(request: Request, client: Client) -> None:
    # This replica's issuer learns at once; the others from the `client.updated` event.
    issuer: ClientCredentialsIssuer = request.app.state.issuer
    issuer.register(clients.client_config(client))
