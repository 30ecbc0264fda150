"""Failed client authentications at the token endpoint, counted to slow down secret guessing.

Two budgets of failures, kept in a `Throttle` so that replicas sharing Redis share them too:

- per source address (tight): one address guessing at any client ids is refused after a few failures;
- per client id (looser): guesses at one client spread over many addresses are refused past a
  larger number, except from addresses that authenticated that client recently ("trusted"), so that
  an attacker who exhausts a client's budget does not lock its own callers out for as long as the
  attack lasts. A caller on a new address is refused while the client's budget is exhausted.

Only failures are counted: a caller that presents its secret correctly never spends anything. A
caller that is refused is not verified at all (no scrypt spent, no guess answered).

The budgets are GCRA (see `policies.throttle.gcra`), so a refused address or client gets one more
attempt back every `window / failures` seconds rather than the whole budget at a window's end. Checks
made at the same moment may all pass before any failure is recorded: the overshoot is bounded by how
many verifications may run at once.

While the shared store is unavailable (either fail mode), the budgets are kept in this process instead:
refusing every login, or counting no failures at all, would both be worse than counting per replica.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math

import msgspec

from policies.throttle import (
    MemoryThrottle,
    RateLimitDecision,
    RateLimitPolicy,
    Throttle,
    ThrottleUnavailable,
)


class AttemptLimits(msgspec.Struct, frozen=True):
    per_source: int = 10  # failures an address may make at once, then one per window / per_source
    per_client: int = 30  # failures against one client id, from addresses it does not trust
    window_seconds: int = 60
    trusted_seconds: int = 24 * 3600  # an address stays trusted this long after its last success

    def __post_init__(self) -> None:
        if min(self.per_source, self.per_client, self.window_seconds, self.trusted_seconds) < 1:
            raise ValueError("failed-attempt limits must all be at least 1")


class FailedAttempts:
    """Decides whether an attempt may be verified, and remembers how attempts went."""

    def __init__(self, throttle: Throttle, limits: AttemptLimits | None = None) -> None:
        limits = limits or AttemptLimits()
        self._throttle = throttle
        self._local = throttle if isinstance(throttle, MemoryThrottle) else MemoryThrottle()
        self._per_source = RateLimitPolicy(
            "token-failures-source", requests=limits.per_source, per_seconds=limits.window_seconds
        )
        self._per_client = RateLimitPolicy(
            "token-failures-client", requests=limits.per_client, per_seconds=limits.window_seconds
        )
        # Two successes' worth of `trusted_seconds`: each success admitted pushes the schedule one
        # period on, and one that is refused finds more than a period still ahead, so an address is
        # trusted for at least `trusted_seconds` after its latest success (and at most twice that).
        self._trusted = RateLimitPolicy(
            "token-trusted-source", requests=2, per_seconds=2 * limits.trusted_seconds
        )

    async def retry_after(self, client_id: str | None, source: str) -> int | None:
        """Seconds before `source` may try `client_id` again, or None if the attempt may be verified."""
        source_key = _source_key(source)
        waits = [await self._wait(source_key, self._per_source)]
        if client_id:
            client_key = _client_key(client_id)
            client_wait = await self._wait(client_key, self._per_client)
            if client_wait is not None and not await self._is_trusted(client_key, source_key):
                waits.append(client_wait)
        refusals = [wait for wait in waits if wait is not None]
        return max(refusals) if refusals else None

    async def failed(self, client_id: str | None, source: str) -> None:
        await self._check(_source_key(source), self._per_source)
        if client_id:
            await self._check(_client_key(client_id), self._per_client)

    async def succeeded(self, client_id: str, source: str) -> None:
        await self._check(_pair_key(_client_key(client_id), _source_key(source)), self._trusted)

    async def _check(self, key: str, policy: RateLimitPolicy, cost: int = 1) -> RateLimitDecision:
        try:
            decision = await self._throttle.check(key, policy, cost)
        except ThrottleUnavailable:
            return await self._local.check(key, policy, cost)
        return await self._local.check(key, policy, cost) if decision.degraded else decision

    async def _wait(self, key: str, policy: RateLimitPolicy) -> int | None:
        """Seconds until one more failure would be admitted under `policy`; None if it would be now.

        A check of cost 0 spends nothing and reports what is left, so this asks without counting.
        """
        left = await self._check(key, policy, cost=0)
        if left.remaining >= 1:
            return None
        # The next failure fits once the schedule (now + reset) is within the tolerance of all but one.
        interval = policy.per_seconds / policy.requests
        return max(1, math.ceil(left.reset_seconds - (policy.capacity - 1) * interval))

    async def _is_trusted(self, client_key: str, source_key: str) -> bool:
        left = await self._check(_pair_key(client_key, source_key), self._trusted, cost=0)
        return left.remaining < self._trusted.capacity


def _source_key(address: str) -> str:
    """An IPv6 host usually holds a whole /64, so it counts as one source; IPv4 addresses as they are."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _client_key(client_id: str) -> str:
    # Anyone may present any client id: a digest keeps stored keys short whatever was sent.
    return hashlib.blake2b(client_id.encode(), digest_size=16).hexdigest()


def _pair_key(client_key: str, source_key: str) -> str:
    return f"{client_key}@{source_key}"
