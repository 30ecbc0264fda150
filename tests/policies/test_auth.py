"""The auth policy alone: the built-in issuer, JWT verification against JWKS, scopes, challenges."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from policies.auth import (
    ClientConfig,
    ClientCredentialsIssuer,
    InsufficientScope,
    InvalidToken,
    RemoteJwks,
    StaticJwks,
    TokenVerifier,
    challenge,
    load_clients,
    load_or_create_signing_key,
    require_scopes,
)
from policies.auth.keys import generate_signing_key
from tests.jwks import JwksServer

ISSUER = "https://charter.example"
CLIENTS = [ClientConfig("ci", "ci-secret", ("registry:read", "registry:write"))]


@pytest.fixture
def issuer() -> ClientCredentialsIssuer:
    return ClientCredentialsIssuer(issuer=ISSUER, audience="charter", clients=CLIENTS, token_lifetime=600)


async def issue(issuer: ClientCredentialsIssuer, *, basic: bool = True, **form: str):
    fields = {"grant_type": "client_credentials", **form}
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(b"ci:ci-secret").decode()
    return await issuer.token_endpoint(
        method="POST", uri=f"{ISSUER}/oauth/token", headers=headers, form=fields, source="192.0.2.1"
    )


async def test_issues_a_jwt_that_its_verifier_accepts(issuer):
    response = await issue(issuer)
    body = json.loads(response.body)
    assert response.status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert response.headers["Cache-Control"] == "no-store"

    principal = await issuer.verifier().verify(body["access_token"])
    assert principal.subject == "ci"
    assert principal.client_id == "ci"
    assert principal.scopes == {"registry:read", "registry:write"}
    assert principal.expires_at == pytest.approx(time.time() + 600, abs=5)


async def test_client_secret_post_and_scope_narrowing(issuer):
    response = await issue(
        issuer, basic=False, client_id="ci", client_secret="ci-secret", scope="registry:read"
    )
    token = json.loads(response.body)["access_token"]
    assert (await issuer.verifier().verify(token)).scopes == {"registry:read"}


async def test_a_token_holds_no_more_than_its_client_holds_now():
    key = generate_signing_key()
    issuer = ClientCredentialsIssuer(issuer=ISSUER, audience="charter", clients=CLIENTS, signing_key=key)
    token = json.loads((await issue(issuer)).body)["access_token"]
    issuer.register(ClientConfig("ci", "ci-secret", ("registry:read",)))  # a grant was revoked
    assert (await issuer.verifier().verify(token)).scopes == {"registry:read"}
    # A replica sharing the key that has not learnt of the client yet takes the token as issued.
    replica = ClientCredentialsIssuer(issuer=ISSUER, audience="charter", clients=[], signing_key=key)
    assert (await replica.verifier().verify(token)).scopes == {"registry:read", "registry:write"}


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"scope": "registry:admin"}, 400, "invalid_scope"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
    ],
)
async def test_token_errors(issuer, form, status, error):
    response = await issue(issuer, **form)
    assert response.status == status
    assert json.loads(response.body)["error"] == error


async def test_wrong_secret_is_invalid_client(issuer):
    response = await issuer.token_endpoint(
        method="POST",
        uri=f"{ISSUER}/oauth/token",
        headers={"Authorization": "Basic " + base64.b64encode(b"ci:wrong").decode()},
        form={"grant_type": "client_credentials"},
        source="192.0.2.1",
    )
    assert response.status == 401
    assert json.loads(response.body)["error"] == "invalid_client"
    assert "WWW-Authenticate" in response.headers


def test_jwks_has_no_private_parts(issuer):
    (key,) = issuer.jwks()["keys"]
    assert key["kty"] == "RSA" and "kid" in key
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def sign(key: RSAKey, **claims) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": "charter", "sub": "svc", "iat": now, "exp": now + 300, **claims}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, payload, key)


@pytest.fixture
def key() -> RSAKey:
    return RSAKey.generate_key(2048, auto_kid=True)


@pytest.fixture
def verifier(key: RSAKey) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience="charter", jwks=StaticJwks(KeySet([key])), leeway=0)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int(time.time()) - 60},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"nbf": int(time.time()) + 3600},
    ],
    ids=["expired", "audience", "issuer", "not-yet-valid"],
)
async def test_rejects_tokens_with_wrong_claims(key, verifier, claims):
    with pytest.raises(InvalidToken):
        await verifier.verify(sign(key, **claims))


async def test_rejects_tampered_unsigned_and_foreign_tokens(key, verifier):
    token = sign(key, scope="a")
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["scope"] = "registry:admin"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    unsigned_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    for bad in (
        f"{header}.{forged_payload}.{signature}",
        f"{unsigned_header}.{payload}.",
        sign(RSAKey.generate_key(2048, auto_kid=True)),
        "not.a.jwt",
    ):
        with pytest.raises(InvalidToken):
            await verifier.verify(bad)


async def test_verified_tokens_are_cached_until_they_expire(key):
    source = CountingJwks(KeySet([key]))
    verifier = TokenVerifier(issuer=ISSUER, audience="charter", jwks=source)
    token = sign(key, scope="x y")
    first = await verifier.verify(token)
    second = await verifier.verify(token)
    assert first is second
    assert source.calls == 1


class CountingJwks(StaticJwks):
    def __init__(self, key_set: KeySet) -> None:
        super().__init__(key_set)
        self.calls = 0

    async def get_key_set(self, *, refresh: bool = False) -> KeySet:
        self.calls += 1
        return await super().get_key_set(refresh=refresh)


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    with JwksServer() as server:
        yield server


async def test_remote_jwks_refetches_once_when_the_issuer_rotates_keys(jwks_server):
    old, new = RSAKey.generate_key(2048, auto_kid=True), RSAKey.generate_key(2048, auto_kid=True)
    jwks_server.keys = [old]
    verifier = TokenVerifier(
        issuer=ISSUER, audience="charter", jwks=RemoteJwks(jwks_server.url, min_refresh_interval=0)
    )
    assert (await verifier.verify(sign(old))).subject == "svc"
    assert jwks_server.requests == 1

    jwks_server.keys = [new]
    assert (await verifier.verify(sign(new, sub="rotated"))).subject == "rotated"
    assert jwks_server.requests == 2


async def test_remote_jwks_refetches_are_rate_limited(jwks_server):
    jwks_server.keys = [RSAKey.generate_key(2048, auto_kid=True)]
    verifier = TokenVerifier(issuer=ISSUER, audience="charter", jwks=RemoteJwks(jwks_server.url))
    stranger = RSAKey.generate_key(2048, auto_kid=True)
    for _ in range(3):
        with pytest.raises(InvalidToken):
            await verifier.verify(sign(stranger))
    assert jwks_server.requests == 1


def test_require_scopes_is_and():
    from policies.auth import Principal

    principal = Principal("svc", "svc", frozenset({"a", "b"}), None, {})
    require_scopes(principal, ["a", "b"])
    with pytest.raises(InsufficientScope) as raised:
        require_scopes(principal, ["a", "c"])
    assert raised.value.required == {"c"}


def test_challenge_follows_rfc_6750():
    assert challenge() == 'Bearer realm="charter"'
    value = challenge(error="insufficient_scope", description='needs "write"', scope=["a:read", "a:write"])
    assert value == (
        'Bearer realm="charter", error="insufficient_scope", '
        'error_description="needs \\"write\\"", scope="a:read a:write"'
    )


def test_signing_key_file_is_created_private_and_reused(tmp_path):
    path = tmp_path / "keys" / "signing.pem"
    first = load_or_create_signing_key(str(path))
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_or_create_signing_key(str(path)).kid == first.kid


def test_clients_from_json():
    clients = load_clients('[{"client_id": "a", "client_secret": "s", "scopes": ["x"]}]')
    assert clients == [ClientConfig("a", "s", ("x",))]
    with pytest.raises(ValueError):
        load_clients('[{"client_id": "a"}]')
