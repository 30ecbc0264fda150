"""Signing a browser in and out: with a client id and secret (the built-in issuer's client-credentials
grant), or through the operator's OpenID Connect provider when one is configured.

Either way the session holds an access token that the REST API itself would accept, and every page
verifies it through the API's own BearerAuth. So a person signed in through the provider has exactly
the identity the API gives that provider's tokens: the subject is the token's `sub`, the scopes its
`scope` (or `scp`) claim, the teams those that list that subject among their members. The ID token
proves who signed in (signature, issuer, audience, expiry, nonce), and its `sub` must be the access
token's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Annotated, Any

import msgspec
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken as SealBroken
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from policies.auth import (
    ClientCredentialsIssuer,
    InvalidToken,
    OidcProvider,
    PendingSignIn,
    Principal,
    ProviderUnavailable,
    SignInFailed,
)
from registry.settings import Settings
from registry.web.access import SESSION_COOKIE, BrowserSessions, local_path, page_principal, public_catalog

log = logging.getLogger("charter.portal")
OIDC_PATH = "/sign-in/oidc"
CALLBACK_PATH = OIDC_PATH + "/callback"
PENDING_COOKIE = "charter_oidc"
# How long a person may spend at the provider's sign-in page before the attempt is void.
PENDING_SECONDS = 600
Reply = Annotated[str | None, QueryParameter(max_length=2000)]


def sign_in_page(
    request: Request,
    principal: Principal | None,
    *,
    next_path: str,
    error: str | None = None,
    status: int = 200,
    client_id: str | None = None,
) -> Template:
    settings: Settings = request.app.state.settings
    return Template(
        template_name="sign_in.html",
        context={
            "user": principal.subject if principal else None,
            "next_path": next_path,
            "error": error,
            "client_id": client_id,
            "oidc_name": settings.oidc_name if request.app.state.oidc else None,
        },
        status_code=status,
    )


class PendingSignIns:
    """An attempt at the provider travels in a cookie of its own, sealed (Fernet: encrypted, signed,
    timestamped) so that the browser can neither read the PKCE verifier nor forge a state, and the
    server keeps nothing per attempt: starting sign-ins costs no memory however many are started."""

    def __init__(self, key_material: str, *, secure: bool) -> None:
        digest = hashlib.sha256(b"charter-portal-oidc\0" + key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._secure = secure

    def cookie(self, pending: PendingSignIn) -> Cookie:
        return self._cookie(self._fernet.encrypt(msgspec.json.encode(pending)).decode(), PENDING_SECONDS)

    def expired_cookie(self) -> Cookie:
        return self._cookie("", 0)

    def _cookie(self, value: str, max_age: int) -> Cookie:
        # SameSite=Lax: the provider's redirect back is a top-level GET, which Lax cookies accompany.
        return Cookie(
            key=PENDING_COOKIE,
            value=value,
            max_age=max_age,
            path=OIDC_PATH,
            httponly=True,
            samesite="lax",
            secure=self._secure,
        )

    def read(self, value: str | None) -> PendingSignIn | None:
        if not value or len(value) > 4000:
            return None
        try:
            return msgspec.json.decode(self._fernet.decrypt(value, ttl=PENDING_SECONDS), type=PendingSignIn)
        except (SealBroken, msgspec.DecodeError):
            return None


class SignInController(Controller):
    path = "/"
    include_in_schema = False

    @get("/sign-in", name="portal:sign-in")
    async def sign_in_form(
        self,
        request: Request,
        next_path: Annotated[str | None, QueryParameter(name="next", max_length=2000)] = None,
    ) -> Template:
        principal = await page_principal(request)
        return sign_in_page(request, principal, next_path=local_path(next_path))

    @post("/sign-in", name="portal:sign-in-submit", status_code=303)
    async def sign_in(self, request: Request) -> Response[Any]:
        form = await request.form()
        client_id = str(form.get("client_id") or "")[:200]
        secret = str(form.get("client_secret") or "")[:1000]
        next_path = local_path(str(form.get("next") or "/"))
        issuer: ClientCredentialsIssuer = request.app.state.issuer
        answer = await issuer.token_endpoint(
            method="POST",
            uri=str(request.url),
            headers={},
            form={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
            source=request.client.host if request.client else "unknown",
        )
        principal = None
        if answer.status == 200:
            token = msgspec.json.decode(answer.body)["access_token"]
            try:
                principal = await request.app.state.bearer_auth.verify(token)
            except InvalidToken:
                principal = None
        if principal is None:
            error = (
                "Too many failed attempts: wait a minute, then try again."
                if answer.status == 429
                else "That client id and secret were not accepted."
            )
            status = 429 if answer.status == 429 else 401
            return sign_in_page(
                request, None, next_path=next_path, error=error, status=status, client_id=client_id
            )
        return await _start_session(request, token, principal, next_path)

    @post(OIDC_PATH, name="portal:oidc-start", status_code=303)
    async def oidc_start(self, request: Request) -> Response[Any]:
        provider = _provider(request)
        form = await request.form()
        next_path = local_path(str(form.get("next") or "/"))
        pending = provider.begin(next_path)
        try:
            location = await provider.authorization_url(pending)
        except ProviderUnavailable as exc:
            return sign_in_page(request, None, next_path=next_path, error=str(exc), status=502)
        pendings: PendingSignIns = request.app.state.oidc_pending
        return Redirect(location, status_code=303, cookies=[pendings.cookie(pending)])

    @get(CALLBACK_PATH, name="portal:oidc-callback")
    async def oidc_callback(
        self,
        request: Request,
        code: Reply = None,
        returned_state: Annotated[str | None, QueryParameter(name="state", max_length=2000)] = None,
        error: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> Response[Any]:
        """Where the provider sends the browser back. Anything short of a verified sign-in answers the
        sign-in page with the reason, and the attempt is used up either way."""
        provider = _provider(request)
        pendings: PendingSignIns = request.app.state.oidc_pending
        pending = pendings.read(request.cookies.get(PENDING_COOKIE))
        next_path = pending.next_path if pending else "/"

        def refused(message: str, status: int = 401) -> Response[Any]:
            log.warning("sign-in through the provider refused (%d): %s", status, message)
            response = sign_in_page(request, None, next_path=next_path, error=message, status=status)
            response.cookies.append(pendings.expired_cookie())
            return response

        if pending is None:
            return refused("This sign-in has expired or was started in another browser: start it again.", 400)
        if error:
            return refused(f"The provider did not sign you in ({error}).")
        if not code or not returned_state:
            return refused("The provider's answer carries no sign-in code.", 400)
        try:
            signed = await provider.finish(pending, code=code, state=returned_state)
        except ProviderUnavailable as exc:
            return refused(str(exc), 502)
        except SignInFailed as exc:
            return refused(str(exc))
        try:
            principal = await request.app.state.bearer_auth.verify(signed.access_token)
        except InvalidToken as exc:
            return refused(
                f"You signed in at the provider, but this registry does not accept its access token ({exc}).",
                403,
            )
        if principal.subject != str(signed.id_claims.get("sub")):
            return refused("The provider's access token and ID token name different people.", 403)
        response = await _start_session(request, signed.access_token, principal, pending.next_path)
        response.cookies.append(pendings.expired_cookie())
        return response

    @post("/sign-out", name="portal:sign-out", status_code=303)
    async def sign_out(self, request: Request) -> Response[Any]:
        sessions: BrowserSessions = request.app.state.browser_sessions
        await sessions.end(request.cookies.get(SESSION_COOKIE))
        settings = request.app.state.settings
        target = "/" if public_catalog(settings) else "/sign-in"
        return Redirect(target, status_code=303, cookies=[sessions.expired_cookie()])


async def _start_session(request: Request, token: str, principal: Principal, next_path: str) -> Response[Any]:
    """A new session id for the token (any older one of this browser ends), living as long as the token."""
    sessions: BrowserSessions = request.app.state.browser_sessions
    await sessions.end(request.cookies.get(SESSION_COOKIE))
    session_id, lifetime = await sessions.start(token, principal.subject, expires_at=principal.expires_at)
    return Redirect(next_path, status_code=303, cookies=[sessions.cookie(session_id, lifetime)])


def _provider(request: Request) -> OidcProvider:
    provider: OidcProvider | None = request.app.state.oidc
    if provider is None:
        raise NotFoundException()
    return provider


def oidc_provider(settings: Settings) -> OidcProvider | None:
    if not settings.oidc_configured():
        return None
    assert settings.oidc_issuer and settings.oidc_client_id
    return OidcProvider(
        settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret or "",
        redirect_uri=settings.public_url + CALLBACK_PATH,
        scopes=settings.oidc_scopes,
        timeout=settings.oidc_timeout_seconds,
    )
