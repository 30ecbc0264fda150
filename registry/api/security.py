"""Bearer tokens on registry requests: which verifier accepts them, and the principal they carry."""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Request
from litestar.openapi.spec import OAuthFlow, OAuthFlows, SecurityRequirement, SecurityScheme

from policies.auth import InvalidToken, Principal
from policies.auth.principal import TokenSource
from registry.access import ADMIN, READ, WRITE
from registry.errors import Unauthenticated

TOKEN_PATH = "/oauth/token"
# How the contract names the two ways to send a token: paste one (from any accepted issuer), or let
# Swagger UI's Authorize get one from the built-in issuer by client credentials.
SECURITY_SCHEMES = {
    "bearer": SecurityScheme(
        type="http",
        scheme="bearer",
        bearer_format="JWT",
        description="An access token of the built-in issuer (POST /oauth/token) or of a configured provider.",
    ),
    "clientCredentials": SecurityScheme(
        type="oauth2",
        description="Client credentials of a registered client (the admin, or POST /api/v1/clients).",
        flows=OAuthFlows(
            client_credentials=OAuthFlow(
                token_url=TOKEN_PATH,
                scopes={
                    READ: "read contracts, teams and consumers",
                    WRITE: "publish and manage the APIs of the caller's teams",
                    ADMIN: "everything, including teams, clients, the audit log and forced publishes",
                },
            )
        ),
    ),
}


def requirement(scope: str) -> list[SecurityRequirement]:
    """Either scheme may carry the token; the oauth2 alternative names the scope it needs."""
    return [{"bearer": []}, {"clientCredentials": [scope]}]


WRITE_SECURITY = requirement(WRITE)
ADMIN_SECURITY = requirement(ADMIN)
# No credentials needed (the empty requirement), as on the token endpoint and health.
PUBLIC: list[SecurityRequirement] = [{}]


def read_security(*, anonymous_reads: bool) -> list[SecurityRequirement]:
    """The document-wide requirement reads inherit: optional when anonymous reads are allowed."""
    return requirement(READ) + (PUBLIC if anonymous_reads else [])


class BearerAuth:
    """Tries the built-in issuer's verifier first, then an external provider's, if one is configured."""

    def __init__(self, verifiers: Sequence[TokenSource]) -> None:
        self._verifiers = tuple(verifiers)

    async def principal(self, authorization: str | None) -> Principal | None:
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "the Authorization header must be `Bearer <token>`", error="invalid_request"
            )
        try:
            return await self.verify(token)
        except InvalidToken as exc:
            raise Unauthenticated(str(exc), error="invalid_token") from None

    async def verify(self, token: str) -> Principal:
        """The principal of a bearer token any configured verifier accepts; InvalidToken otherwise."""
        failure: InvalidToken | None = None
        for verifier in self._verifiers:
            try:
                return await verifier.verify(token)
            except InvalidToken as exc:
                failure = exc
        raise failure or InvalidToken("token not accepted")


async def provide_principal(request: Request) -> Principal | None:
    auth: BearerAuth = request.app.state.bearer_auth
    return await auth.principal(request.headers.get("authorization"))
