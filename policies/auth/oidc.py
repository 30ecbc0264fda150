"""Signing a person in through an OpenID Connect provider: the authorization-code flow with PKCE
(S256), state and nonce, and the ID token checked against the provider's JWKS (signature, `iss`,
`aud`, `exp`, `iat`, `nonce`, `at_hash`).

authlib supplies the protocol pieces (the authorization URL, the S256 challenge, the ID token's claim
rules); its httpx client integration wants the `httpx2` package and warns on plain httpx, so the
two calls to the provider (discovery, the token endpoint) are made here with httpx, each bounded by
a timeout. Discovery is cached; the JWKS is cached by RemoteJwks (refetched at most every
`jwks_refresh_seconds`, when a token names an unknown key). Every URL called comes from the
operator's issuer setting and the discovery document it serves, never from a request.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

import httpx
import msgspec
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from policies.auth.keys import RemoteJwks
from policies.auth.principal import InvalidToken

DISCOVERY_PATH = "/.well-known/openid-configuration"
# An ID token or token response larger than this is no provider's: refuse it unread.
MAX_RESPONSE_BYTES = 64 * 1024
_CLAIM_NAMES = {
    "nonce": "its nonce is not the one this sign-in sent (a replayed or foreign token)",
    "aud": "it was issued to another client (audience)",
    "iss": "it was issued by another provider (issuer)",
    "azp": "it was issued to another client (authorized party)",
    "at_hash": "it does not belong to the access token it came with (at_hash)",
    "sub": "it names no subject",
    "iat": "it has no issue time",
    "exp": "it has no expiry",
}


class SignInFailed(Exception):
    """The provider's answer does not sign anyone in; the message says why, in words for a person."""


class ProviderUnavailable(SignInFailed):
    """The provider did not answer in time, or answered something other than the protocol."""


class ProviderMetadata(msgspec.Struct, frozen=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    id_token_signing_alg_values_supported: list[str] = msgspec.field(default_factory=lambda: ["RS256"])
    # OpenID Connect Discovery: absent means client_secret_basic.
    token_endpoint_auth_methods_supported: list[str] = msgspec.field(
        default_factory=lambda: ["client_secret_basic"]
    )


class PendingSignIn(msgspec.Struct, frozen=True):
    """What the browser's attempt must bring back: kept by the caller until the provider redirects."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


class SignedIn(msgspec.Struct, frozen=True):
    access_token: str
    expires_in: int | None
    id_claims: dict[str, Any]


class _TokenResponse(msgspec.Struct):
    access_token: str
    id_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None


class OidcProvider:
    def __init__(
        self,
        issuer: str,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: str = "openid",
        timeout: float = 5.0,
        metadata_ttl: float = 3600.0,
        jwks_refresh_seconds: float = 30.0,
        leeway: int = 60,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.scopes = scopes if "openid" in scopes.split() else f"openid {scopes}"
        self._timeout = timeout
        self._metadata_ttl = metadata_ttl
        self._jwks_refresh_seconds = jwks_refresh_seconds
        self._leeway = leeway
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0)), follow_redirects=False
        )
        self._metadata: ProviderMetadata | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()
        self._jwks: RemoteJwks | None = None
        self.jwks = _DiscoveredJwks(self)

    async def metadata(self) -> ProviderMetadata:
        """The discovery document, fetched once per `metadata_ttl` (concurrent callers share one fetch)."""
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._read_at > self._metadata_ttl:
                self._metadata = await self._discover()
                self._read_at = time.monotonic()
                self._jwks = RemoteJwks(
                    self._metadata.jwks_uri,
                    http_client=self._http,
                    min_refresh_interval=self._jwks_refresh_seconds,
                    timeout=self._timeout,
                )
            return self._metadata

    async def _discover(self) -> ProviderMetadata:
        body = await self._call("GET", self.issuer + DISCOVERY_PATH)
        try:
            metadata = msgspec.json.decode(body, type=ProviderMetadata)
        except msgspec.DecodeError as exc:
            raise ProviderUnavailable(f"the provider's discovery document is not usable: {exc}") from None
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer asked for.
        if metadata.issuer.rstrip("/") != self.issuer:
            raise ProviderUnavailable("the provider's discovery document names another issuer")
        insecure = self.issuer.startswith("http://")
        for url in (metadata.authorization_endpoint, metadata.token_endpoint, metadata.jwks_uri):
            if not (url.startswith("https://") or (insecure and url.startswith("http://"))):
                raise ProviderUnavailable("the provider's discovery document names a non-https endpoint")
        return metadata

    def begin(self, next_path: str) -> PendingSignIn:
        return PendingSignIn(
            state=generate_token(32),
            nonce=generate_token(32),
            code_verifier=generate_token(64),
            next_path=next_path,
        )

    async def authorization_url(self, pending: PendingSignIn) -> str:
        metadata = await self.metadata()
        return prepare_grant_uri(
            metadata.authorization_endpoint,
            client_id=self.client_id,
            response_type="code",
            redirect_uri=self.redirect_uri,
            scope=self.scopes,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.code_verifier),
            code_challenge_method="S256",
        )

    async def finish(self, pending: PendingSignIn, *, code: str, state: str) -> SignedIn:
        """The provider's redirect back: the state must be this attempt's; the code is exchanged (with
        the PKCE verifier) and the ID token checked before anyone is signed in."""
        if not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise SignInFailed("The answer from the provider does not belong to this sign-in (state).")
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        methods = metadata.token_endpoint_auth_methods_supported
        credentials: dict[str, Any] = {"auth": (self.client_id, self._client_secret)}
        if "client_secret_basic" not in methods and "client_secret_post" in methods:
            form.update(client_id=self.client_id, client_secret=self._client_secret)
            credentials = {}
        body = await self._call(
            "POST",
            metadata.token_endpoint,
            data=form,
            refusal="The provider refused to exchange the sign-in code",
            **credentials,
        )
        try:
            tokens = msgspec.json.decode(body, type=_TokenResponse)
        except msgspec.DecodeError:
            missing = "The provider's token response lacks the access token or the ID token."
            raise ProviderUnavailable(missing) from None
        claims = await self._id_token_claims(tokens, pending.nonce, metadata)
        return SignedIn(access_token=tokens.access_token, expires_in=tokens.expires_in, id_claims=claims)

    async def _id_token_claims(
        self, tokens: _TokenResponse, nonce: str, metadata: ProviderMetadata
    ) -> dict[str, Any]:
        algorithms = [a for a in metadata.id_token_signing_alg_values_supported if a != "none"]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            token = jwt.decode(tokens.id_token, await self._key_set(), registry=registry)
        except JoseError as exc:
            if exc.error not in {"missing_key", "invalid_key_id"}:
                raise SignInFailed(f"The ID token is not valid: {_signature_problem(exc)}.") from None
            try:  # the provider may have rotated its keys since they were fetched
                token = jwt.decode(tokens.id_token, await self._key_set(refresh=True), registry=registry)
            except JoseError as again:
                raise SignInFailed(f"The ID token is not valid: {_signature_problem(again)}.") from None
        except ValueError:
            raise SignInFailed("The ID token is not valid: it is malformed.") from None
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": metadata.issuer},
                # authlib checks `aud` only through `azp`: the audience must be this client.
                "aud": {"essential": True, "value": self.client_id},
            },
            params={"nonce": nonce, "client_id": self.client_id, "access_token": tokens.access_token},
        )
        try:
            claims.validate(leeway=self._leeway)
        except ExpiredTokenError:
            raise SignInFailed("The ID token is not valid: it has expired.") from None
        except ClaimError as exc:
            reason = _CLAIM_NAMES.get(exc.claim, f"its claim {exc.claim} is wrong")
            raise SignInFailed(f"The ID token is not valid: {reason}.") from None
        except JoseError as exc:
            raise SignInFailed(f"The ID token is not valid: {exc.description or exc.error}.") from None
        return dict(claims)

    async def _key_set(self, *, refresh: bool = False) -> KeySet:
        await self.metadata()
        assert self._jwks is not None
        try:
            return await self._jwks.get_key_set(refresh=refresh)
        except (httpx.HTTPError, ValueError) as exc:
            raise ProviderUnavailable(f"The provider's keys could not be read: {exc}") from None

    async def _call(self, method: str, url: str, *, refusal: str | None = None, **kwargs: Any) -> bytes:
        try:
            async with self._http.stream(method, url, **kwargs) as response:
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ProviderUnavailable(f"The provider's answer from {url} is too large.")
        except httpx.HTTPError as exc:
            silence = f"The sign-in provider does not answer ({type(exc).__name__})."
            raise ProviderUnavailable(silence) from None
        if response.status_code != 200:
            if refusal and 400 <= response.status_code < 500:
                raise SignInFailed(f"{refusal} ({_oauth_error(body)}).")
            raise ProviderUnavailable(f"The sign-in provider answered {response.status_code}.")
        return body

    async def aclose(self) -> None:
        await self._http.aclose()


class _DiscoveredJwks:
    """The provider's JWKS at the `jwks_uri` its discovery names: the API verifies the provider's
    access tokens against it when no other external issuer is configured."""

    def __init__(self, provider: OidcProvider) -> None:
        self._provider = provider

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        try:
            return await self._provider._key_set(refresh=refresh)
        except SignInFailed as exc:
            raise InvalidToken(str(exc)) from None


def _signature_problem(exc: JoseError) -> str:
    if exc.error == "bad_signature":
        return "its signature does not verify with the provider's keys"
    if exc.error in {"missing_key", "invalid_key_id"}:
        return "it is signed by a key the provider does not publish"
    return exc.description or exc.error.replace("_", " ")


def _oauth_error(body: bytes) -> str:
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return "no reason given"
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        return answer["error"][:100]
    return "no reason given"
