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
from collections.abc import Coroutine
from typing import Any

import msgspec
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from policies.throttle.decision import RateLimitDecision, RateLimitPolicy, ThrottleUnavailable
from policies.throttle.gcra import Schedule, check_cost, conform

logger = logging.getLogger(__name__)
# A call asked for: the key, the policy's interval and tolerance, the cost, how many units to lease (at
# least the cost), how many leased units to give back first, and where to answer.
_Ask = tuple[str, int, int, int, int, int, "asyncio.Future[list[int]]"]

# The same arithmetic as `gcra.conform`, in integer microseconds, which doubles hold exactly up to
# 2^53 (year 2255), for each key in turn: KEYS[i] with ARGV[5i-4..5i] (interval, tolerance, cost, want,
# give_back), five numbers answered per key. Keys are decided in order, so a key named twice sees its
# first decision. `available` is how many units conform now; a request of `cost` is admitted when
# cost <= available, which is gcra's TAT + cost * interval - tolerance <= now, and then takes
# min(want, available) units (want = cost without a lease). Giving back moves the TAT back by the units
# returned, never before now: they were taken, never spent, and are due to whoever asks next.
# TIME is the server's clock, so replicas with skewed clocks still agree; Redis >= 5 replicates a
# script's writes, not the script, so reading TIME before writing is allowed. The TAT is formatted with
# %.0f because Lua's tostring keeps only 14 digits. PX drops a consumer once its TAT has passed, when
# an absent key means the same thing.
GCRA_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local answers = {}
for i, key in ipairs(KEYS) do
    local interval = tonumber(ARGV[5 * i - 4])
    local tolerance = tonumber(ARGV[5 * i - 3])
    local cost = tonumber(ARGV[5 * i - 2])
    local want = tonumber(ARGV[5 * i - 1])
    local give_back = tonumber(ARGV[5 * i])
    local tat = tonumber(redis.call('GET', key))
    if tat == nil or tat < now then
        tat = now
    end
    local stored = tat
    if give_back > 0 then
        tat = math.max(now, tat - give_back * interval)
    end
    local available = math.floor((now + tolerance - tat) / interval)
    local at = 5 * i - 4
    if cost <= available then
        local granted = math.min(math.max(want, cost), available)
        tat = tat + granted * interval
        answers[at] = 1
        answers[at + 1] = available - granted
        answers[at + 3] = 0
        answers[at + 4] = granted
    else
        answers[at] = 0
        answers[at + 1] = math.max(0, available)
        answers[at + 3] = math.ceil((tat + cost * interval - tolerance - now) / 1000000)
        answers[at + 4] = 0
    end
    answers[at + 2] = math.ceil((tat - now) / 1000000)
    if tat ~= stored then
        if tat > now then
            redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
        else
            redis.call('DEL', key)
        end
    end
end
return answers
"""
# Decisions in one script call at most: a call holds Redis (single-threaded) for its whole run, about
# 1 us per key, so a large batch delays every other client of the server by no more than this.
MAX_BATCH = 512

# One warning per this many seconds while the store is down; every request would otherwise log one.
WARNING_INTERVAL = 60.0

# Leases: a replica takes a slice of a busy consumer's budget in one call and admits from it without a
# round trip. The slice is this share of the capacity, at most MAX_LEASE units; budgets too small for a
# slice of 2 are decided by Redis request by request. Units not spent within LEASE_SECONDS go back.
LEASE_SHARE = 0.01
MAX_LEASE = 64
LEASE_SECONDS = 0.5


class _Lease:
    """Units of one consumer's budget that this replica took from Redis and has not spent yet."""

    __slots__ = ("expires", "pending", "policy", "remaining", "reset_seconds", "tokens")

    def __init__(self, policy: RateLimitPolicy, expires: float) -> None:
        self.policy = policy
        self.tokens = 0
        self.remaining = 0  # what Redis had left beyond the lease when it was granted
        self.reset_seconds = 0
        self.expires = expires
        self.pending: asyncio.Future[None] | None = None  # a call for more units in flight

    def take(self, cost: int) -> RateLimitDecision:
        self.tokens -= cost
        return RateLimitDecision(
            allowed=True,
            policy=self.policy,
            remaining=self.remaining + self.tokens,
            reset_seconds=self.reset_seconds,
            retry_after=None,
        )


def _decision(answer: list[int], policy: RateLimitPolicy) -> RateLimitDecision:
    """The decision a script answer (allowed, remaining, reset, retry after, granted) carries."""
    allowed, remaining, reset_seconds, retry_after, _ = answer
    return RateLimitDecision(
        allowed=bool(allowed),
        policy=policy,
        remaining=remaining,
        reset_seconds=reset_seconds,
        retry_after=retry_after if not allowed else None,
    )


class RedisThrottle:
    """GCRA in Redis: the calls asked for in one turn of the event loop go together in one EVALSHA
    (redis-py loads the script again after a NOSCRIPT), decided in the order they were asked.

    One round trip per decision cost ~150 us of Python in redis-py (a command's encoding, a connection
    taken from the pool, a task for its timeout) and a pooled connection per request in flight; shared
    by every request of a loop turn, both come to a few microseconds each, and Redis sees one call where
    it saw dozens. A decision waits for no timer: the call leaves as soon as the requests ready in this
    turn have asked.

    Even batched, a request that awaits Redis is suspended and resumed, which cost the gateway about a
    quarter more CPU per request than the in-process throttle. So a consumer whose capacity allows it
    is served from a lease: one call takes `lease_share` of its capacity (at most MAX_LEASE units) and
    the next requests are admitted here without awaiting; another lease is asked for in the background
    when half is spent, and unspent units go back to Redis after LEASE_SECONDS. Budgets stay exact from
    above: no unit is admitted twice across replicas, since every unit leased was taken atomically on the
    server's clock. Units leased but unspent are briefly unavailable to other replicas, at most a lease
    per replica and consumer. Budgets too small for a lease of 2 (`lease_share` 0: all of them) are
    decided by Redis request by request.

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
        lease_share: float = LEASE_SHARE,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        if not 0 <= lease_share <= 1:
            raise ValueError(f"lease_share {lease_share} is outside 0..1")
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
        self.lease_share = lease_share
        self.lease_seconds = lease_seconds
        self.degraded_count = 0
        self.script_calls = 0
        self._warned_at = float("-inf")
        self._unwarned = 0
        self._asked: list[_Ask] = []
        self._calls: set[asyncio.Task[None]] = set()
        self._leases: dict[str, _Lease] = {}
        self._sweeper: asyncio.TimerHandle | None = None

    def lease_size(self, policy: RateLimitPolicy) -> int:
        """Units one lease takes for this policy; below 2, requests are decided one by one in Redis."""
        return min(MAX_LEASE, int(policy.capacity * self.lease_share))

    async def check(self, key: str, policy: RateLimitPolicy, cost: int = 1) -> RateLimitDecision:
        check_cost(policy, cost)
        slot = f"{self.prefix}{policy.name}:{key}"
        size = self.lease_size(policy)
        if size < 2:
            return await self._decide_in_redis(slot, policy, cost)
        waited = False
        while True:
            lease = self._leases.get(slot)
            if lease is None or lease.policy != policy or time.monotonic() >= lease.expires:
                break
            if lease.tokens >= cost:
                decision = lease.take(cost)
                if lease.tokens <= size // 2 and lease.pending is None:
                    self._refill(slot, lease, size)
                return decision
            if lease.pending is None:
                break
            # More units are on their way for this consumer: one lease per consumer at a time, or a
            # crowd arriving together would each take one.
            await asyncio.shield(lease.pending)
            waited = True
        if waited:
            # The lease ran out under a crowd (or Redis denied it): the rest of the crowd is decided
            # exactly, together in one call, rather than one new lease after another.
            return await self._decide_in_redis(slot, policy, cost)
        return await self._lease(slot, policy, cost, size)

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._calls:
            await asyncio.wait(self._calls)
        await self._give_back_units(self._take_back(list(self._leases)))
        if self._owns_client:
            await self._redis.aclose()

    async def _lease(self, slot: str, policy: RateLimitPolicy, cost: int, size: int) -> RateLimitDecision:
        """Admit or deny in Redis, giving back what an old lease has left and taking a new one."""
        old = self._leases.get(slot)
        give_back = old.tokens if old is not None else 0
        lease = _Lease(policy, time.monotonic() + self.lease_seconds)
        lease.pending = asyncio.get_running_loop().create_future()
        self._leases[slot] = lease
        self._start_sweeper()
        try:
            answer = await self._ask(slot, policy, cost, want=max(size, cost), give_back=give_back)
        except RedisError as error:
            del self._leases[slot]
            return self._unavailable(error, policy, cost)
        finally:
            lease.pending.set_result(None)
            lease.pending = None
        allowed, remaining, reset_seconds, _, granted = answer
        if not allowed:
            del self._leases[slot]
            return _decision(answer, policy)
        lease.tokens, lease.remaining, lease.reset_seconds = granted, remaining, reset_seconds
        return lease.take(cost)

    def _refill(self, slot: str, lease: _Lease, size: int) -> None:
        """Ask for more units in the background while the lease still admits requests."""
        lease.pending = asyncio.get_running_loop().create_future()
        self._spawn(self._top_up(slot, lease, size))

    async def _top_up(self, slot: str, lease: _Lease, size: int) -> None:
        assert lease.pending is not None
        try:
            _, remaining, reset_seconds, _, granted = await self._ask(
                slot, lease.policy, 0, want=size, give_back=0
            )
        except RedisError as error:
            self._warn(error)  # the lease admits what it holds; the next request past it asks again
            return
        finally:
            lease.pending.set_result(None)
            lease.pending = None
        if self._leases.get(slot) is lease:
            lease.tokens += granted
            lease.remaining, lease.reset_seconds = remaining, reset_seconds
            lease.expires = time.monotonic() + self.lease_seconds
        elif granted:
            await self._give_back_units({slot: (lease.policy, granted)})

    def _start_sweeper(self) -> None:
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(self.lease_seconds, self._sweep)

    def _sweep(self) -> None:
        """Give back what leases past their time have left, in one call."""
        self._sweeper = None
        now = time.monotonic()
        expired = [
            slot for slot, lease in self._leases.items() if lease.pending is None and lease.expires <= now
        ]
        if expired:
            # Taken out now, not when the give-back runs: a request meanwhile may lease anew under
            # the same slot, and that lease is not this give-back's to return.
            self._spawn(self._give_back_units(self._take_back(expired)))
        if len(self._leases) > len(expired):
            self._start_sweeper()

    def _take_back(self, slots: list[str]) -> dict[str, tuple[RateLimitPolicy, int]]:
        """Remove these slots' leases; the units they hold, to give back."""
        units: dict[str, tuple[RateLimitPolicy, int]] = {}
        for slot in slots:
            lease = self._leases.pop(slot, None)
            if lease is not None and lease.tokens > 0:
                units[slot] = (lease.policy, lease.tokens)
        return units

    async def _give_back_units(self, units: dict[str, tuple[RateLimitPolicy, int]]) -> None:
        returns = [
            self._ask(slot, policy, 0, want=0, give_back=count) for slot, (policy, count) in units.items()
        ]
        for outcome in await asyncio.gather(*returns, return_exceptions=True):
            if isinstance(outcome, RedisError):
                # Units not given back return with time, as every spent unit does.
                self._warn(outcome)

    async def _decide_in_redis(self, slot: str, policy: RateLimitPolicy, cost: int) -> RateLimitDecision:
        try:
            answer = await self._ask(slot, policy, cost, want=cost, give_back=0)
        except RedisError as error:
            # Not only an unreachable or silent server: an error reply (BUSY while another script runs
            # past busy-reply-threshold, OOM, READONLY after a failover, MISCONF) means the same thing
            # to a caller, a store that cannot decide now.
            return self._unavailable(error, policy, cost)
        return _decision(answer, policy)

    def _ask(
        self, slot: str, policy: RateLimitPolicy, cost: int, *, want: int, give_back: int
    ) -> asyncio.Future[list[int]]:
        interval, tolerance = Schedule.of(policy)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[list[int]] = loop.create_future()
        if not self._asked:
            loop.call_soon(self._call)
        self._asked.append((slot, interval, tolerance, cost, want, give_back, answer))
        return answer

    def _call(self) -> None:
        asked, self._asked = self._asked, []
        for start in range(0, len(asked), MAX_BATCH):
            self._spawn(self._decide(asked[start : start + MAX_BATCH]))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background; `aclose` waits for it."""
        call = asyncio.create_task(work)
        self._calls.add(call)
        call.add_done_callback(self._calls.discard)

    async def _decide(self, asked: list[_Ask]) -> None:
        self.script_calls += 1
        try:
            reply = await self._script(
                keys=[ask[0] for ask in asked], args=[number for ask in asked for number in ask[1:6]]
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
                answer.set_result(reply[5 * index : 5 * index + 5])

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
