"""The built-in OAuth 2 client-credentials issuer's endpoints (RFC 6749 section 4.4, RFC 7517)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from policies.auth import ClientCredentialsIssuer
from registry.api.security import PUBLIC

FORM = "application/x-www-form-urlencoded"


class TokenGranted(msgspec.Struct):
    """RFC 6749 section 5.1."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str | None = None


class TokenRefused(msgspec.Struct, omit_defaults=True):
    """RFC 6749 section 5.2."""

    error: str
    error_description: str | None = None


@dataclass
class TokenOperation(Operation):
    """The token request is a form (RFC 6749 section 4.4.2), read by the issuer, not a struct.

    The client authenticates with HTTP Basic or with `client_id` and `client_secret` in the form.
    """

    def __post_init__(self) -> None:
        field = Schema(type=OpenAPIType.STRING, max_length=1000)
        self.request_body = RequestBody(
            required=True,
            content={
                FORM: OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        properties={
                            "grant_type": Schema(type=OpenAPIType.STRING, enum=["client_credentials"]),
                            "scope": field,
                            "client_id": field,
                            "client_secret": field,
                        },
                        required=["grant_type"],
                    )
                )
            },
        )


@post(
    "/oauth/token",
    tags=["oauth"],
    summary="Issue an access token (client credentials grant)",
    status_code=200,
    operation_class=TokenOperation,
    security=PUBLIC,
    responses={
        200: ResponseSpec(TokenGranted, description="The access token"),
        400: ResponseSpec(TokenRefused, description="OAuth 2 error (RFC 6749 section 5.2)"),
        401: ResponseSpec(TokenRefused, description="Client authentication failed"),
        429: ResponseSpec(TokenRefused, description="Too many failed attempts (`slow_down`, Retry-After)"),
        503: ResponseSpec(TokenRefused, description="Too many token requests at once (Retry-After)"),
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


@get("/.well-known/jwks.json", tags=["oauth"], summary="Public keys of the built-in issuer", security=PUBLIC)
async def jwks(state: State) -> dict[str, Any]:
    issuer: ClientCredentialsIssuer = state.issuer
    return issuer.jwks()
