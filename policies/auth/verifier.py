"""Verifying bearer JWTs: signature against a JWKS, then issuer, audience, expiry and not-before."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Collection

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwt import JWTClaimsRegistry

from policies.auth.keys import JwksSource
from policies.auth.principal import InvalidToken, Principal, scopes_of


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: JwksSource,
        leeway: int = 30,
        algorithms: Collection[str] = ("RS256", "ES256", "PS256"),
        cache_size: int = 10_000,
    ) -> None:
        self.issuer = issuer
        self.audience = audience
        self._jwks = jwks
        self._leeway = leeway
        self._algorithms = list(algorithms)
        # Checking an RSA signature costs ~50 us; a verified token is remembered until it expires.
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        cached = self._cache.get(token)
        now = int(time.time())
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at + self._leeway > now:
                self._cache.move_to_end(token)
                return cached
            del self._cache[token]

        if token.count(".") != 2:
            raise InvalidToken("not a JWT")  # an opaque token: for an introspecting verifier, if any
        claims = await self._decode(token)
        registry = JWTClaimsRegistry(
            leeway=self._leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise InvalidToken(_describe(exc)) from None
        principal = Principal(
            subject=str(claims["sub"]),
            client_id=str(claims["client_id"]) if "client_id" in claims else None,
            scopes=scopes_of(claims),
            expires_at=int(claims["exp"]),
            claims=claims,
        )
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def _decode(self, token: str) -> dict:
        key_set = await self._jwks.get_key_set()
        try:
            return jwt.decode(token, key_set, algorithms=self._algorithms).claims
        except JoseError as exc:
            if not _unknown_key(exc):
                raise InvalidToken(_describe(exc)) from None
        # The issuer may have rotated its keys since we fetched them.
        key_set = await self._jwks.get_key_set(refresh=True)
        try:
            return jwt.decode(token, key_set, algorithms=self._algorithms).claims
        except JoseError as exc:
            raise InvalidToken(_describe(exc)) from None
        except ValueError:
            raise InvalidToken("malformed token") from None


def _unknown_key(exc: JoseError) -> bool:
    return exc.error in {"missing_key", "invalid_key_id"} or (
        "key" in exc.error and "kid" in str(exc).lower()
    )


def _describe(exc: JoseError) -> str:
    return exc.description or exc.error.replace("_", " ")
