"""Opaque bearer tokens, checked by RFC 7662 token introspection at the provider.

authlib's rfc7662 module serves the authorization server's side and its resource-protector
validator is synchronous and framework-bound; the resource server's call is one form POST, made
here with httpx. An active token is remembered until it expires (at most `max_cache_seconds`), so
the provider is asked once per token, not once per request.
"""

from __future__ import annotations

import time
from collections import OrderedDict

import httpx

from policies.auth.principal import InvalidToken, Principal, scopes_of


class IntrospectionVerifier:
    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient | None = None,
        max_cache_seconds: int = 300,
        cache_size: int = 10_000,
    ) -> None:
        self.url = url
        self._auth = (client_id, client_secret)
        self._http = http or httpx.AsyncClient(timeout=httpx.Timeout(5, connect=2))
        self._max_cache_seconds = max_cache_seconds
        self._cache: OrderedDict[str, Principal] = OrderedDict()
        self._cache_size = cache_size

    async def verify(self, token: str) -> Principal:
        now = int(time.time())
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at > now:
                self._cache.move_to_end(token)
                return cached
            del self._cache[token]
        try:
            response = await self._http.post(
                self.url, data={"token": token, "token_type_hint": "access_token"}, auth=self._auth
            )
        except httpx.HTTPError as exc:
            raise InvalidToken(f"the token could not be introspected: {exc}") from None
        if response.status_code != 200:
            raise InvalidToken(f"token introspection answered {response.status_code}")
        try:
            claims = response.json()
        except ValueError:
            raise InvalidToken("token introspection answered something other than JSON") from None
        if not isinstance(claims, dict) or claims.get("active") is not True:
            raise InvalidToken("the token is not active")
        expires = claims.get("exp")
        horizon = now + self._max_cache_seconds
        principal = Principal(
            subject=str(claims.get("sub") or claims.get("client_id") or "unknown"),
            client_id=str(claims["client_id"]) if claims.get("client_id") else None,
            scopes=scopes_of(claims),
            expires_at=min(int(expires), horizon) if isinstance(expires, int) else horizon,
            claims=claims,
        )
        self._cache[token] = principal
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return principal

    async def aclose(self) -> None:
        await self._http.aclose()
