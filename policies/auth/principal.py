"""Who is calling, with which scopes; and the decision whether those scopes suffice."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import msgspec


class Principal(msgspec.Struct, frozen=True):
    subject: str
    client_id: str | None
    scopes: frozenset[str]
    expires_at: int | None
    claims: dict[str, Any]


class TokenSource(Protocol):
    """Anything that turns a bearer token into a principal: a JWT verifier, token introspection."""

    async def verify(self, token: str) -> Principal: ...


class InvalidToken(Exception):
    """The bearer token is malformed, forged, expired, or not meant for us (RFC 6750 invalid_token)."""


class InsufficientScope(Exception):
    def __init__(self, required: frozenset[str]) -> None:
        super().__init__(f"missing scope: {' '.join(sorted(required))}")
        self.required = required


def require_scopes(principal: Principal, required: Iterable[str]) -> None:
    """All of `required` must be granted (scopes within one requirement are AND)."""
    missing = frozenset(required) - principal.scopes
    if missing:
        raise InsufficientScope(missing)


def scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 9068 `scope` is a space-separated string; some providers send `scp` as a list."""
    scope = claims.get("scope")
    if isinstance(scope, str):
        return frozenset(scope.split())
    scp = claims.get("scp")
    if isinstance(scp, list):
        return frozenset(str(s) for s in scp)
    if isinstance(scp, str):
        return frozenset(scp.split())
    return frozenset()
