"""HTTP route for registering consumer applications with the built-in issuer."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, post
from litestar.params import Body

from policies.auth import ClientCredentialsIssuer
from registry import clients
from registry.api.dependencies import Caller, Session
from registry.api.problems import errors
from registry.api.schemas import ClientCreated, ClientIn
from registry.api.security import WRITE_SECURITY


@post(
    "/api/v1/clients",
    tags=["clients"],
    responses=errors(400, 401, 403, 404, 409),
    summary="Register a consumer app",
    security=WRITE_SECURITY,
)
async def register_client(
    request: Request, session: Session, principal: Caller, data: Annotated[ClientIn, Body()]
) -> ClientCreated:
    """Admins, or members of `team` for their own apps; the answer holds the client secret, once."""
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
