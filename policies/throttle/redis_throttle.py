"""A throttle whose budgets live in Redis, so that every gateway replica spends from the same one.

Why not the `limits` library (5.8.0 read for this): it has no GCRA and no burst setting; its `hit`
answers only yes or no, so remaining and reset cost a second round trip (`get_window_stats`) that can
race with other replicas; its fixed window counts refused hits; and its Redis strategies stamp requests
with each replica's own clock. The script below decides in one round trip on the server's clock.
"""

from __future__ import annotations

import logging
import time

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from policies.throttle.decision import RateLimitDecision, RateLimitPolicy, ThrottleUnavailable
from policies.throttle.gcra import Schedule, check_cost, conform

logger = logging.getLogger(__name__)

# The same arithmetic as `gcra.conform`, in integer microseconds, which doubles hold exactly up to
# 2^53 (year 2255). TIME is the server's clock, so replicas with skewed clocks still agree; Redis >= 5
# replicates a script's writes, not the script, so reading TIME before writing is allowed. The TAT is
# formatted with %.0f because Lua's tostring keeps only 14 digits. PX drops a consumer once its TAT
# has passed, when an absent key means the same thing.
GCRA_SCRIPT = """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
    tat = now
end
local new_tat = tat + cost * interval
local allow_at = new_tat - tolerance
if allow_at <= now then
    if cost > 0 then
        redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
    end
    return {1, math.floor((now - allow_at) / interval), math.ceil((new_tat - now) / 1000000), 0}
end
return {
    0,
    math.max(0, math.floor((now - tat + tolerance) / interval)),
    math.ceil((tat - now) / 1000000),
    math.ceil((allow_at - now) / 1000000),
}
"""

# One warning per this many seconds while the store is down; every request would otherwise log one.
WARNING_INTERVAL = 60.0


class RedisThrottle:
    """GCRA in Redis, one EVALSHA per decision (redis-py loads the script again after a NOSCRIPT).

    A URL gets a client of our own with short timeouts, a single immediate retry (which rides over a
    connection that a Redis restart left stale) and at most 128 connections; a client passed in keeps its
    own settings and stays the caller's to close. When Redis is unreachable, hangs past the timeout or
    answers with an error, `fail_open` admits the request as `degraded` and counts it in `degraded_count`;
    otherwise `check` raises ThrottleUnavailable.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        prefix: str = "charter:throttle:",
        fail_open: bool = True,
        timeout: float = 0.25,
    ) -> None:
        if isinstance(redis, str):
            # redis-py's default pool raises "Too many connections" past 100 checks in flight; this one
            # makes the 51st wait for a free connection, as long as `timeout`.
            pool = BlockingConnectionPool.from_url(
                redis,
                max_connections=128,
                timeout=timeout,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 1),
            )
            self._redis = Redis.from_pool(pool)
            self._owns_client = True
        else:
            self._redis = redis
            self._owns_client = False
        self._script = self._redis.register_script(GCRA_SCRIPT)
        self.prefix = prefix
        self.fail_open = fail_open
        self.degraded_count = 0
        self._warned_at = float("-inf")
        self._unwarned = 0

    async def check(self, key: str, policy: RateLimitPolicy, cost: int = 1) -> RateLimitDecision:
        check_cost(policy, cost)
        interval, tolerance = Schedule.of(policy)
        try:
            reply = await self._script(
                keys=[f"{self.prefix}{policy.name}:{key}"], args=[interval, tolerance, cost]
            )
        except RedisError as error:
            # Not only an unreachable or silent server: an error reply (BUSY while another script runs
            # past busy-reply-threshold, OOM, READONLY after a failover, MISCONF) means the same thing
            # to a caller, a store that cannot decide now.
            return self._unavailable(error, policy, cost)
        allowed, remaining, reset_seconds, retry_after = (int(value) for value in reply)
        return RateLimitDecision(
            allowed=bool(allowed),
            policy=policy,
            remaining=remaining,
            reset_seconds=reset_seconds,
            retry_after=retry_after if not allowed else None,
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    def _unavailable(self, error: Exception, policy: RateLimitPolicy, cost: int) -> RateLimitDecision:
        if not self.fail_open:
            raise ThrottleUnavailable(f"rate-limit store unavailable: {error}") from error
        self.degraded_count += 1
        self._warn(error)
        # Numbers of an idle consumer: the truth is unknown, and these never invite a client to back off.
        decision, _ = conform(None, 0, policy, cost)
        return msgspec.structs.replace(decision, degraded=True)

    def _warn(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at < WARNING_INTERVAL:
            self._unwarned += 1
            return
        logger.warning(
            "rate-limit store unavailable, admitting requests unthrottled (%d more since last warning): %s",
            self._unwarned,
            error,
        )
        self._warned_at = now
        self._unwarned = 0
