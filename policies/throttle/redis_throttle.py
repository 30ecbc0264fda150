"""A throttle whose budgets live in Redis, so that every gateway replica spends from the same one.

Why not the `limits` library (5.8.0 read for this): it has no GCRA and no burst setting; its `hit`
answers only yes or no, so remaining and reset cost a second round trip (`get_window_stats`) that can
race with other replicas; its fixed window counts refused hits; and its Redis strategies stamp requests
with each replica's own clock. The script below decides in one round trip on the server's clock.
"""

from __future__ import annotations

import asyncio
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
# A decision asked for: the key, the policy's interval, tolerance and the cost, and where to answer.
_Ask = tuple[str, int, int, int, "asyncio.Future[list[int]]"]

# The same arithmetic as `gcra.conform`, in integer microseconds, which doubles hold exactly up to
# 2^53 (year 2255), for each key in turn: KEYS[i] with ARGV[3i-2..3i] (interval, tolerance, cost), four
# numbers answered per key. Keys are decided in order, so a key named twice sees its first decision.
# TIME is the server's clock, so replicas with skewed clocks still agree; Redis >= 5 replicates a
# script's writes, not the script, so reading TIME before writing is allowed. The TAT is formatted with
# %.0f because Lua's tostring keeps only 14 digits. PX drops a consumer once its TAT has passed, when
# an absent key means the same thing.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local answers = {}
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[3 * i - 2])
    local tolerance = tonumber(ARGV[3 * i - 1])
    local cost = tonumber(ARGV[3 * i])
    local tat = tonumber(redis.call('GET', key))
    if tat == nil or tat < now then
        tat = now
    end
    local new_tat = tat + cost * interval
    local allow_at = new_tat - tolerance
    local at = 4 * i - 3
    if allow_at <= now then
        if cost > 0 then
            redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
        end
        answers[at] = 1
        answers[at + 1] = math.floor((now - allow_at) / interval)
        answers[at + 2] = math.ceil((new_tat - now) / 1000000)
        answers[at + 3] = 0
    else
        answers[at] = 0
        answers[at + 1] = math.max(0, math.floor((now - tat + tolerance) / interval))
        answers[at + 2] = math.ceil((tat - now) / 1000000)
        answers[at + 3] = math.ceil((allow_at - now) / 1000000)
    end
end
return answers
"""
# Decisions in one script call at most: a call holds Redis (single-threaded) for its whole run, about
# 1 us per key, so a large batch delays every other client of the server by no more than this.
MAX_BATCH = 512

# One warning per this many seconds while the store is down; every request would otherwise log one.
WARNING_INTERVAL = 60.0


class RedisThrottle:
    """GCRA in Redis: the decisions asked for in one turn of the event loop go together in one EVALSHA
    (redis-py loads the script again after a NOSCRIPT), decided in the order they were asked.

    One round trip per decision cost ~150 us of Python in redis-py (a command's encoding, a connection
    taken from the pool, a task for its timeout) and a pooled connection per request in flight; shared
    by every request of a loop turn, both come to a few microseconds each, and Redis sees one call where
    it saw dozens. A decision waits for no timer: the call leaves as soon as the requests ready in this
    turn have asked. Budgets stay exact: the script decides each key atomically on the server's clock.

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
            # redis-py's default pool raises "Too many connections" past 100 calls in flight; this one
            # makes the 129th wait for a free connection, as long as `timeout`.
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
        self._asked: list[_Ask] = []
        self._calls: set[asyncio.Task[None]] = set()

    async def check(self, key: str, policy: RateLimitPolicy, cost: int = 1) -> RateLimitDecision:
        check_cost(policy, cost)
        interval, tolerance = Schedule.of(policy)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[int]] = loop.create_future()
        if not self._asked:
            loop.call_soon(self._call)
        self._asked.append((f"{self.prefix}{policy.name}:{key}", interval, tolerance, cost, answer))
        try:
            allowed, remaining, reset_seconds, retry_after = await answer
        except RedisError as error:
            # Not only an unreachable or silent server: an error reply (BUSY while another script runs
            # past busy-reply-threshold, OOM, READONLY after a failover, MISCONF) means the same thing
            # to a caller, a store that cannot decide now.
            return self._unavailable(error, policy, cost)
        return RateLimitDecision(
            allowed=bool(allowed),
            policy=policy,
            remaining=remaining,
            reset_seconds=reset_seconds,
            retry_after=retry_after if not allowed else None,
        )

    async def aclose(self) -> None:
        if self._calls:
            await asyncio.wait(self._calls)
        if self._owns_client:
            await self._redis.aclose()

    def _call(self) -> None:
        asked, self._asked = self._asked, []
        for start in range(0, len(asked), MAX_BATCH):
            call = asyncio.create_task(self._decide(asked[start : start + MAX_BATCH]))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _decide(self, asked: list[_Ask]) -> None:
        try:
            reply = await self._script(
                keys=[ask[0] for ask in asked], args=[number for ask in asked for number in ask[1:4]]
            )
        except asyncio.CancelledError:
            for *_, answer in asked:
                answer.cancel()
            raise
        except Exception as error:
            for *_, answer in asked:
                if not answer.done():
                    answer.set_exception(error)
            return
        for index, (*_, answer) in enumerate(asked):
            if not answer.done():  # its request was cancelled meanwhile; the budget is spent all the same
                answer.set_result(reply[4 * index : 4 * index + 4])

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
