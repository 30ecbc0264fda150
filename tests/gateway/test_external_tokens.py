"""Tokens of an external OAuth 2 provider at the gateway, across a rotation of its signing keys."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import RSAKey
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.gateway.conftest import gateway_settings
from tests.jwks import JwksServer
from tests.registry.support import bearer

PROVIDER = "https://login.example.com/"


def provider_token(key: RSAKey, scope: str) -> str:
    now = int(time.time())
    claims = {
        "iss": PROVIDER,
        "aud": "charter",
        "sub": "erp-connector",
        "client_id": "erp-connector",
        "scope": scope,
        "iat": now,
        "exp": now + 300,
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


async def test_provider_tokens_are_accepted_across_a_key_rotation(tmp_path):
    old, new = RSAKey.generate_key(2048, auto_kid=True), RSAKey.generate_key(2048, auto_kid=True)
    with JwksServer() as provider:
        provider.keys = [old]
        settings = gateway_settings(
            tmp_path,
            external_issuer=PROVIDER,
            external_jwks_url=provider.url,
            external_jwks_refresh_seconds=0,
        )
        async with AsyncTestClient(create_app(settings)) as client:
            before = await client.get(
                "/gw/projects/v1/projects", headers=bearer(provider_token(old, "projects:read"))
            )
            assert before.status_code == 200, before.text
            provider.keys = [old, new]
            after = await client.get(
                "/gw/projects/v1/projects", headers=bearer(provider_token(new, "projects:read"))
            )
            assert after.status_code == 200, after.text
            assert provider.requests == 2  # one fetch, one refetch for the unknown key id
            narrow = await client.post(
                "/gw/projects/v1/projects",
                json={"name": "x", "client": "y"},
                headers=bearer(provider_token(new, "projects:read")),
            )
            assert narrow.status_code == 403
            stranger = RSAKey.generate_key(2048, auto_kid=True)
            forged = await client.get(
                "/gw/projects/v1/projects", headers=bearer(provider_token(stranger, "projects:read"))
            )
            assert forged.status_code == 401
