"""A small OpenID Connect provider on loopback for tests of the portal's sign-in: discovery, a JWKS,
an authorization endpoint with a page where a person picks who to be, and a token endpoint that
checks the client's secret, the redirect URI and the PKCE (S256) verifier, then issues a JWT access
token and an ID token. A test may make one answer wrong on purpose (`tamper`)."""

from __future__ import annotations

import base64
import html
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import msgspec
from authlib.oauth2.rfc7636.challenge import compare_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar import Litestar, Request, Response, get, post
from litestar.response import Redirect

from tests.loopback import serving


class Grant(msgspec.Struct):
    subject: str
    nonce: str
    challenge: str
    redirect_uri: str


class TestProvider:
    """`people`: subject -> the scopes its access token carries. The access token's audience is
    `audience` (what Charter's API expects); the ID token's is the client id."""

    __test__ = False

    def __init__(
        self, *, client_id: str, client_secret: str, redirect_uri: str, people: dict[str, str], audience: str
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.people = people
        self.audience = audience
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.codes: dict[str, Grant] = {}
        # One wrong thing in the next answers: "state", "nonce", "aud" or "exp" of the ID token.
        self.tamper: str | None = None
        self.issuer = ""
        self.token_requests = 0
        self.discovery_requests = 0
        # How the client authenticates at the token endpoint: client_secret_basic or client_secret_post.
        self.auth_method = "client_secret_basic"
        self.jwks_requests = 0

    def app(self) -> Litestar:
        provider = self

        @get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            provider.discovery_requests += 1
            return {
                "issuer": provider.issuer,
                "authorization_endpoint": f"{provider.issuer}/authorize",
                "token_endpoint": f"{provider.issuer}/token",
                "jwks_uri": f"{provider.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [provider.auth_method],
            }

        @get("/jwks")
        async def jwks() -> dict[str, Any]:
            provider.jwks_requests += 1
            return {"keys": [provider.key.as_dict(private=False)]}

        @get("/authorize")
        async def authorize(request: Request) -> Response[str]:
            query = request.query_params
            if (
                query.get("client_id") != provider.client_id
                or query.get("redirect_uri") != provider.redirect_uri
                or query.get("response_type") != "code"
                or query.get("code_challenge_method") != "S256"
                or not query.get("code_challenge")
                or "openid" not in str(query.get("scope", "")).split()
            ):
                return Response("invalid authorization request", status_code=400, media_type="text/plain")
            hidden = "".join(
                f'<input type="hidden" name="{name}" value="{html.escape(str(query.get(name, "")))}">'
                for name in ("state", "nonce", "code_challenge", "redirect_uri")
            )
            people = "".join(f"<option>{html.escape(subject)}</option>" for subject in provider.people)
            page = (
                '<!doctype html><html lang="en"><head><title>Test ID</title></head><body><main>'
                "<h1>Test ID</h1><form method=post action=/authorize>"
                f'{hidden}<label for="who">Account</label> <select id="who" name="who">{people}</select> '
                "<button type=submit>Continue</button></form></main></body></html>"
            )
            return Response(page, media_type="text/html")

        @post("/authorize", status_code=303)
        async def approve(request: Request) -> Redirect:
            form = await request.form()
            code = secrets.token_urlsafe(24)
            provider.codes[code] = Grant(
                subject=str(form["who"]),
                nonce=str(form["nonce"]),
                challenge=str(form["code_challenge"]),
                redirect_uri=str(form["redirect_uri"]),
            )
            state = "not-the-state" if provider.tamper == "state" else str(form["state"])
            return Redirect(f"{provider.redirect_uri}?{urlencode({'code': code, 'state': state})}")

        @post("/token", status_code=200)
        async def token(request: Request) -> Response[dict[str, Any]]:
            provider.token_requests += 1
            form = await request.form()
            if provider.auth_method == "client_secret_post":
                authenticated = (form.get("client_id"), form.get("client_secret")) == (
                    provider.client_id,
                    provider.client_secret,
                ) and "authorization" not in request.headers
            else:
                expected = "Basic " + _basic(provider.client_id, provider.client_secret)
                authenticated = request.headers.get("authorization") == expected
            if not authenticated:
                return Response({"error": "invalid_client"}, status_code=401)
            grant = provider.codes.pop(str(form.get("code")), None)
            if (
                grant is None
                or form.get("grant_type") != "authorization_code"
                or form.get("redirect_uri") != grant.redirect_uri
                or not compare_s256_code_challenge(str(form.get("code_verifier", "")), grant.challenge)
            ):
                return Response({"error": "invalid_grant"}, status_code=400)
            return Response(provider.tokens(grant))

        return Litestar([discovery, jwks, authorize, approve, token])

    def tokens(self, grant: Grant) -> dict[str, Any]:
        now = int(time.time())
        header = {"alg": "RS256", "kid": self.key.kid}
        access = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": grant.subject,
            "scope": self.people[grant.subject],
            "iat": now,
            "exp": now + 300,
        }
        access_token = jwt.encode(header, access, self.key)
        identity = {
            "iss": self.issuer,
            "aud": "another-client" if self.tamper == "aud" else self.client_id,
            "sub": grant.subject,
            "nonce": "a-nonce-of-another-sign-in" if self.tamper == "nonce" else grant.nonce,
            "iat": now - 3600 if self.tamper == "exp" else now,
            "exp": now - 1800 if self.tamper == "exp" else now + 300,
            "at_hash": create_half_hash(access_token, "RS256").decode(),
        }
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": jwt.encode(header, identity, self.key),
        }


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@contextmanager
def running(provider: TestProvider) -> Iterator[TestProvider]:
    with serving(provider.app()) as url:
        provider.issuer = url
        yield provider
