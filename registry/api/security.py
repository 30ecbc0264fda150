"""Bearer tokens on registry requests: which verifier accepts them, and the principal they carry."""

from __future__ import annotations

from collections.abc import Sequence

from litestar import Request

from policies.auth import InvalidToken, Principal
from policies.auth.principal import TokenSource
from registry.errors import Unauthenticated


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
