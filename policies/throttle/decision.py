"""What a throttle decides: the SLA policy applied, the decision, and how a client is told about both."""

from __future__ import annotations

import functools
from typing import Protocol

import msgspec


class RateLimitPolicy(msgspec.Struct, frozen=True, cache_hash=True):
    """`requests` per `per_seconds`, of which `burst` may be spent at once (0: the whole quota at once).

    Like any token bucket, a full burst followed by steady use lets up to `requests + capacity - 1`
    requests through in one window; the steady rate is what `requests` / `per_seconds` promises.
    """

    name: str
    requests: int
    per_seconds: int
    burst: int = 0

    def __post_init__(self) -> None:
        if self.requests < 1 or self.per_seconds < 1 or self.burst < 0:
            raise ValueError(
                f"rate limit policy {self.name!r} needs requests >= 1, per_seconds >= 1, burst >= 0"
            )
        # The name travels as a Structured Field string (RFC 8941 3.3.3): printable ASCII only.
        if not self.name or not all(" " <= char <= "~" for char in self.name):
            raise ValueError(f"rate limit policy name {self.name!r} must be non-empty printable ASCII")

    @property
    def capacity(self) -> int:
        """How many requests an idle consumer may send at once."""
        return self.burst or self.requests


class RateLimitDecision(msgspec.Struct, frozen=True):
    allowed: bool
    policy: RateLimitPolicy
    remaining: int
    reset_seconds: int
    retry_after: int | None
    degraded: bool = False

    def headers(self) -> dict[str, str]:
        """`header_fields()` by their registered names (RateLimit-Policy, RateLimit, Retry-After)."""
        return {_FIELD_NAMES[name]: value.decode("latin-1") for name, value in self.header_fields()}

    def header_fields(self) -> list[tuple[bytes, bytes]]:
        """Response fields of draft-ietf-httpapi-ratelimit-headers-10, plus Retry-After when denied, as
        an ASGI response carries them (lower-case latin-1 names and values), the policy's part encoded
        once per policy: the gateway adds them to every answer.

        The draft's `t` is the time until more quota is made available, and Retry-After SHOULD NOT
        point earlier than it; so a denial reports the retry delay as `t`, an admission the time
        until the whole capacity is back (quota returns continuously, so both are honest).
        """
        name, policy_field = _encoded_policy(self.policy)
        until_more = self.retry_after if self.retry_after is not None else self.reset_seconds
        fields = [
            (b"ratelimit-policy", policy_field),
            (b"ratelimit", b"%s;r=%d;t=%d" % (name, self.remaining, until_more)),
        ]
        if self.retry_after is not None:
            fields.append((b"retry-after", b"%d" % self.retry_after))
        return fields


_FIELD_NAMES = {
    b"ratelimit-policy": "RateLimit-Policy",
    b"ratelimit": "RateLimit",
    b"retry-after": "Retry-After",
}


class ThrottleUnavailable(Exception):
    """The shared rate-limit store cannot be reached and the throttle is configured to fail closed."""


class Throttle(Protocol):
    async def check(self, key: str, policy: RateLimitPolicy, cost: int = 1) -> RateLimitDecision:
        """Admit or deny `cost` requests of consumer `key` under `policy`; a denial consumes nothing."""
        ...


def _sf_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@functools.lru_cache(maxsize=1024)
def _encoded_policy(policy: RateLimitPolicy) -> tuple[bytes, bytes]:
    """The policy's quoted name and its RateLimit-Policy field, encoded."""
    name = _sf_string(policy.name)
    return name.encode("latin-1"), f"{name};q={policy.requests};w={policy.per_seconds}".encode("latin-1")
