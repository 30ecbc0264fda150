"""The built-in OAuth 2 client-credentials issuer's endpoints (RFC 6749 section 4.4, RFC 7517)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec

from policies.auth import ClientCredentialsIssuer


@post(
    "/oauth/token",
    tags=["oauth"],
    summary="Issue an access token (client credentials grant)",
    status_code=200,
    responses={
        400: ResponseSpec(dict[str, Any], description="OAuth 2 error (RFC 6749 section 5.2)"),
        401: ResponseSpec(dict[str, Any], description="Client authentication failed"),
        429: ResponseSpec(dict[str, Any], description="Too many failed attempts (`slow_down`, Retry-After)"),
        503: ResponseSpec(dict[str, Any], description="Too many token requests at once (Retry-After)"),
    },
    # The token endpoint takes form fields whatever the type; schemathesis and clients post forms.
    request_max_body_size=64 * 1024,
)
async def token(request: Request, state: State) -> Response[bytes]:
    issuer: ClientCredentialsIssuer = state.issuer
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    answer = await issuer.token_endpoint(
        method=request.method,
        uri=str(request.url),
        headers=dict(request.headers),
        form=fields,
        source=request.client.host if request.client else "unknown",
    )
    return Response(
        answer.body, status_code=answer.status, headers=answer.headers, media_type="application/json"
    )


@get("/.well-known/jwks.json", tags=["oauth"], summary="Public keys of the built-in issuer")
async def jwks(state: State) -> dict[str, Any]:
    issuer: ClientCredentialsIssuer = state.issuer
    return issuer.jwks()
