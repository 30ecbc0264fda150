"""The built-in OAuth 2 client-credentials issuer (RFC 6749 section 4.4) minting RFC 9068 JWTs.

authlib has no integration for litestar or for framework-free use: this adapts its core
AuthorizationServer to plain method/uri/headers/form inputs and a TokenResponse output.

Client secrets are checked with scrypt, about 30 ms of CPU each, so the check runs in worker threads
(hashlib releases the GIL) behind a limiter of its own: the event loop keeps answering, and a flood of
attempts queues for those threads, up to a bound past which it is answered 503, instead of taking the
threads everything else uses. Every attempt costs one scrypt whichever client id it names, known or
not, so neither the answer nor its timing tells which client ids exist; failures are counted
(`policies.auth.attempts`) and refused with 429 past a budget, before any scrypt is spent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
import httpx
import msgspec
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet, RSAKey

from policies.auth.attempts import FailedAttempts
from policies.auth.keys import KeyRing, generate_signing_key
from policies.auth.principal import Principal
from policies.auth.verifier import TokenVerifier
from policies.throttle import MemoryThrottle


class ClientConfig(msgspec.Struct, frozen=True):
    client_id: str
    client_secret: str | None = None  # clients from configuration
    scopes: tuple[str, ...] = ()
    name: str | None = None
    secret_hash: str | None = None  # registered clients: only a hash is ever stored


_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
# Checked against when the client has no hash of its own: same cost, and no secret can match it.
_DECOY_HASH = f"scrypt${base64.b64encode(bytes(16)).decode()}${base64.b64encode(bytes(32)).decode()}"
# Attempts that may wait for a verification thread, per thread, before the endpoint answers 503.
WAITING_PER_THREAD = 16


def hash_secret(secret: str) -> str:
    """scrypt (RFC 7914, in the standard library) with a random salt: `scrypt$<salt>$<hash>`."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def secret_matches(secret: str, stored_hash: str) -> bool:
    scheme, _, rest = stored_hash.partition("$")
    salt_text, _, digest_text = rest.partition("$")
    if scheme != "scrypt" or not digest_text:
        return False
    digest = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt_text), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_text))


class TokenResponse(msgspec.Struct):
    status: int
    headers: dict[str, str]
    body: bytes


def load_clients(raw: str) -> list[ClientConfig]:
    """Clients from JSON text: a list of {"client_id", "client_secret", "scopes": [...]}."""
    try:
        clients = msgspec.json.decode(raw, type=list[ClientConfig])
    except msgspec.DecodeError as exc:
        raise ValueError(f"invalid client configuration: {exc}") from None
    for client in clients:
        if not client.client_secret or client.secret_hash is not None:
            raise ValueError(f"invalid client configuration: {client.client_id} needs a client_secret")
    return clients


class _Client(ClientMixin):
    def __init__(self, config: ClientConfig) -> None:
        self.config = config

    def get_client_id(self) -> str:
        return self.config.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = self.config.scopes
        if not scope:
            return " ".join(allowed)
        requested = scope.split()
        if not set(requested) <= set(allowed):
            raise InvalidScopeError()
        return " ".join(dict.fromkeys(requested))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        # One scrypt whatever the client: registered clients are checked by it, configured clients
        # (plain secrets) and unknown ids pay for it anyway, so that timing does not tell them apart.
        matches = secret_matches(client_secret, self.config.secret_hash or _DECOY_HASH)
        if self.config.secret_hash is not None:
            return matches
        if self.config.client_secret is None:
            return False
        return hmac.compare_digest(client_secret.encode(), self.config.client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class _TokenGenerator(JWTBearerTokenGenerator):
    def __init__(self, issuer: str, audience: str, key: Callable[[], RSAKey], lifetime: int) -> None:
        super().__init__(issuer, alg="RS256", expires_generator=lambda client, grant_type: lifetime)
        self._audience = audience
        self._key = key

    def get_jwks(self) -> KeySet:
        return KeySet([self._key()])  # one key: authlib signs with the key set's only key

    def get_audiences(self, client: Any, user: Any, scope: str) -> str:
        return self._audience

    def get_extra_claims(self, client: Any, grant_type: str, user: Any, scope: str) -> dict:
        return {}


class _FormRequest(OAuth2Request):
    """A token request whose fields came as a form (client_secret_post reads `form`)."""

    def __init__(self, method: str, uri: str, headers: httpx.Headers, form: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(form)
        self._form = form

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class _Server(AuthorizationServer):
    def __init__(self, clients: dict[str, ClientConfig]) -> None:
        super().__init__()
        self._clients = clients

    def query_client(self, client_id: str) -> _Client:
        # An unknown id gets a client that no secret authenticates, rather than None: authlib would
        # answer "does not exist" (and 400 instead of 401 for client_secret_post) without a scrypt.
        config = self._clients.get(client_id) or ClientConfig(client_id=client_id)
        return _Client(config)

    def save_token(self, token: dict, request: OAuth2Request) -> None:
        """JWT access tokens are self-contained: nothing to store."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signal system outside flask/django."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> TokenResponse:
        return TokenResponse(
            status=status,
            headers={str(k): str(v) for k, v in headers},
            body=json.dumps(body).encode(),
        )


# Client lookup for ids this process does not know (registered on another replica a moment ago).
FindClient = Callable[[str], Awaitable[ClientConfig | None]]
# Reloads the key ring from where the keys are kept, when a token names a key this process lacks.
RefreshKeys = Callable[[], Awaitable[None]]


class ClientCredentialsIssuer:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        clients: Sequence[ClientConfig],
        signing_key: RSAKey | None = None,
        token_lifetime: int = 3600,
        attempts: FailedAttempts | None = None,
        verify_threads: int = 4,
        find_client: FindClient | None = None,
    ) -> None:
        if verify_threads < 1:
            raise ValueError("verify_threads must be at least 1")
        self.issuer = issuer
        self.audience = audience
        self._attempts = attempts or FailedAttempts(MemoryThrottle())
        self._verifying = anyio.CapacityLimiter(verify_threads)
        self._max_verifications = verify_threads * (1 + WAITING_PER_THREAD)
        self._verifications = 0  # running or waiting for a thread
        # Made on first use: a server that loads its keys from the database replaces it before
        # serving, and generating an RSA key costs 0.1-0.4 s of CPU for nothing.
        self._ring: KeyRing | None = KeyRing(signing_key) if signing_key is not None else None
        self._refresh_keys: RefreshKeys | None = None
        self._find_client = find_client
        self._server = _Server({c.client_id: c for c in clients})
        self._server.register_grant(_ClientCredentials)
        self._generator = _TokenGenerator(issuer, audience, lambda: self.keys.signing, token_lifetime)
        self._server.register_token_generator("client_credentials", self._generator)

    async def token_endpoint(
        self,
        *,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        form: Mapping[str, str],
        source: str,
    ) -> TokenResponse:
        """Answer a token request from network address `source` (which failed attempts count against)."""
        # authlib refuses plain-http URIs; TLS is terminated in front of the service (or it is a
        # laptop on loopback), so the check is satisfied here rather than switched off globally.
        secure_uri = "https://" + uri.split("://", 1)[-1]
        request = _FormRequest(method, secure_uri, httpx.Headers(dict(headers)), dict(form))
        client_id = extract_basic_authorization(request.headers)[0] or request.form.get("client_id")
        wait = await self._attempts.retry_after(client_id, source)
        if wait is not None:
            return _oauth_error(
                429, "slow_down", f"too many failed attempts, retry in {wait} s", retry_after=wait
            )
        if self._verifications >= self._max_verifications:
            return _oauth_error(503, "temporarily_unavailable", "too many token requests", retry_after=1)
        if client_id and self._find_client is not None and not self.knows(client_id):
            # Cheaper than the scrypt every attempt pays, and failed attempts are budgeted above.
            found = await self._find_client(client_id)
            if found is not None:
                self.register(found)
        self._verifications += 1
        try:
            response: TokenResponse = await anyio.to_thread.run_sync(
                self._server.create_token_response, request, limiter=self._verifying
            )
        finally:
            self._verifications -= 1
        response.headers.setdefault("Cache-Control", "no-store")
        if response.status == 401:
            await self._attempts.failed(client_id, source)
        elif response.status == 200 and client_id:
            await self._attempts.succeeded(client_id, source)
        return response

    def mint(self, client_id: str) -> str | None:
        """A token for a known client with all its scopes, for callers inside this process (a flow
        calling system APIs through the gateway as its own client); None for an unknown client."""
        config = self._server._clients.get(client_id)
        if config is None:
            return None
        token = self._generator.generate(
            grant_type="client_credentials", client=_Client(config), scope=" ".join(config.scopes)
        )
        return str(token["access_token"])

    def knows(self, client_id: str) -> bool:
        return client_id in self._server._clients

    def register(self, client: ClientConfig) -> None:
        """Add or replace a client at run time (registered consumer applications)."""
        self._server._clients[client.client_id] = client

    @property
    def keys(self) -> KeyRing:
        if self._ring is None:
            self._ring = KeyRing(generate_signing_key())
        return self._ring

    def use_keys(self, ring: KeyRing, *, refresh: RefreshKeys | None = None) -> None:
        """Sign with `ring.signing` from now on and accept tokens of any key in `ring`; `refresh`, if
        given, reloads the ring when a token names a key not in it (rotated on another replica)."""
        self._ring = ring
        if refresh is not None:
            self._refresh_keys = refresh

    def jwks(self) -> dict[str, Any]:
        return self.keys.jwks()

    def verifier(self, *, leeway: int = 30) -> IssuedTokenVerifier:
        return IssuedTokenVerifier(
            TokenVerifier(issuer=self.issuer, audience=self.audience, jwks=_RingJwks(self), leeway=leeway),
            self._server._clients,
        )


class _RingJwks:
    """The issuer's current public keys, as a JWKS source that follows rotations."""

    MIN_REFRESH_SECONDS = 5.0  # tokens with made-up kids must not turn into a query each

    def __init__(self, issuer: ClientCredentialsIssuer) -> None:
        self._issuer = issuer
        self._refreshed_at = float("-inf")

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        reload = self._issuer._refresh_keys
        due = time.monotonic() - self._refreshed_at >= self.MIN_REFRESH_SECONDS
        if refresh and reload is not None and due:
            self._refreshed_at = time.monotonic()
            await reload()
        return self._issuer.keys.public


def _oauth_error(status: int, error: str, description: str, *, retry_after: int) -> TokenResponse:
    body = {"error": error, "error_description": description}
    return TokenResponse(
        status=status,
        headers={**dict(default_json_headers), "Retry-After": str(retry_after)},
        body=json.dumps(body).encode(),
    )


class IssuedTokenVerifier:
    """Tokens of this issuer, held to what their client holds now, not when the token was issued.

    A token names its client and carries the scopes it held at issue time; a grant revoked since then
    drops out of the token's scopes at once, on every replica that has learnt of the change. A client
    this replica has not learnt of yet (registered on another replica a moment ago) keeps its token's
    scopes: the issuer that signed it knew the client.
    """

    def __init__(self, verifier: TokenVerifier, clients: Mapping[str, ClientConfig]) -> None:
        self._verifier = verifier
        self._clients = clients

    async def verify(self, token: str) -> Principal:
        principal = await self._verifier.verify(token)
        client = self._clients.get(principal.client_id or principal.subject)
        if client is None or principal.scopes <= frozenset(client.scopes):
            return principal
        return msgspec.structs.replace(principal, scopes=principal.scopes & frozenset(client.scopes))
