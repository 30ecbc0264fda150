"""The throttle policy alone: GCRA in memory on a fake clock, and in the real Redis that replicas share."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from policies.throttle import (
    MemoryThrottle,
    RateLimitDecision,
    RateLimitPolicy,
    RedisThrottle,
    Throttle,
    ThrottleUnavailable,
)
from tests.loopback import free_port

REDIS_URL = os.environ.get("CHARTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOTHING_LISTENS = "redis://127.0.0.1:1/0"
BRONZE = RateLimitPolicy("bronze", requests=100, per_seconds=60)
# Windows of an hour: nothing refills while a test against real time runs.
FIVE_AN_HOUR = RateLimitPolicy("five", requests=5, per_seconds=3600)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """Keys of our own in the shared server, deleted afterwards."""
    prefix = f"charter-test:throttle:{uuid.uuid4().hex}:"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
async def throttle(
    request: pytest.FixtureRequest, clock: FakeClock, redis_prefix: str
) -> AsyncIterator[Throttle]:
    if request.param == "memory":
        yield MemoryThrottle(clock=clock)
        return
    shared = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False)
    yield shared
    await shared.aclose()


async def attempts(
    throttle: Throttle, key: str, policy: RateLimitPolicy, count: int
) -> list[RateLimitDecision]:
    return [await throttle.check(key, policy) for _ in range(count)]


# Headers


def test_headers_of_an_admission_follow_the_draft():
    decision = RateLimitDecision(
        allowed=True, policy=BRONZE, remaining=42, reset_seconds=18, retry_after=None
    )
    assert decision.headers() == {
        "RateLimit-Policy": '"bronze";q=100;w=60',
        "RateLimit": '"bronze";r=42;t=18',
    }


def test_headers_of_a_denial_add_retry_after_and_never_point_before_it():
    decision = RateLimitDecision(allowed=False, policy=BRONZE, remaining=0, reset_seconds=60, retry_after=1)
    assert decision.headers() == {
        "RateLimit-Policy": '"bronze";q=100;w=60',
        "RateLimit": '"bronze";r=0;t=1',
        "Retry-After": "1",
    }


def test_policy_names_are_quoted_as_structured_field_strings():
    policy = RateLimitPolicy('say "hi" \\o/', requests=1, per_seconds=1)
    decision = RateLimitDecision(allowed=True, policy=policy, remaining=0, reset_seconds=1, retry_after=None)
    assert decision.headers()["RateLimit-Policy"] == '"say \\"hi\\" \\\\o/";q=1;w=1'


@pytest.mark.parametrize(
    "decision",
    [
        RateLimitDecision(allowed=True, policy=BRONZE, remaining=42, reset_seconds=18, retry_after=None),
        RateLimitDecision(allowed=False, policy=BRONZE, remaining=0, reset_seconds=60, retry_after=1),
        RateLimitDecision(
            allowed=True,
            policy=RateLimitPolicy('say "hi" \\o/', requests=1, per_seconds=1),
            remaining=0,
            reset_seconds=1,
            retry_after=None,
        ),
    ],
)
def test_encoded_header_fields_say_what_headers_says(decision):
    """The gateway sends `header_fields()`: the same fields, as an ASGI response carries them."""
    expected = [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()]
    assert decision.header_fields() == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "bronze", "requests": 0, "per_seconds": 60},
        {"name": "bronze", "requests": 10, "per_seconds": 0},
        {"name": "bronze", "requests": 10, "per_seconds": 60, "burst": -1},
        {"name": "", "requests": 10, "per_seconds": 60},
        {"name": "bronze\n", "requests": 10, "per_seconds": 60},
    ],
)
def test_policies_that_cannot_be_enforced_or_advertised_are_refused(fields):
    with pytest.raises(ValueError):
        RateLimitPolicy(**fields)


# Behaviour shared by both stores


async def test_whole_quota_may_be_spent_at_once_then_requests_are_denied(throttle):
    admitted = await attempts(throttle, "client-1", FIVE_AN_HOUR, 5)
    assert [d.allowed for d in admitted] == [True] * 5
    assert [d.remaining for d in admitted] == [4, 3, 2, 1, 0]
    assert admitted[-1].reset_seconds == 3600

    denied = await throttle.check("client-1", FIVE_AN_HOUR)
    assert not denied.allowed
    assert denied.remaining == 0
    assert denied.retry_after == 720  # one request's worth of the steady rate: 3600 s / 5
    assert denied.reset_seconds == 3600


async def test_burst_limits_what_may_be_sent_at_once(throttle):
    policy = RateLimitPolicy("silver", requests=100, per_seconds=3600, burst=3)
    decisions = await attempts(throttle, "client-1", policy, 4)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after == 36


async def test_denied_requests_spend_nothing(throttle):
    await attempts(throttle, "client-1", FIVE_AN_HOUR, 5)
    denials = await attempts(throttle, "client-1", FIVE_AN_HOUR, 20)
    assert not any(d.allowed for d in denials)
    # Had they been counted, each would push the consumer's schedule, and its reset, further out.
    assert {(d.retry_after, d.reset_seconds) for d in denials} == {(720, 3600)}


async def test_each_consumer_and_each_policy_has_its_own_budget(throttle):
    await attempts(throttle, "client-1", FIVE_AN_HOUR, 5)
    assert not (await throttle.check("client-1", FIVE_AN_HOUR)).allowed

    other_client = await throttle.check("client-2", FIVE_AN_HOUR)
    other_policy = await throttle.check("client-1", RateLimitPolicy("daily", requests=5, per_seconds=86400))
    assert (other_client.allowed, other_client.remaining) == (True, 4)
    assert (other_policy.allowed, other_policy.remaining) == (True, 4)


async def test_a_costly_request_spends_its_cost(throttle):
    first = await throttle.check("client-1", FIVE_AN_HOUR, cost=3)
    second = await throttle.check("client-1", FIVE_AN_HOUR, cost=3)
    assert (first.allowed, first.remaining, first.reset_seconds) == (True, 2, 2160)
    assert (second.allowed, second.remaining) == (False, 2)
    with pytest.raises(ValueError):
        await throttle.check("client-1", FIVE_AN_HOUR, cost=6)


# In memory, on a fake clock


async def test_quota_returns_at_the_steady_rate(clock):
    throttle = MemoryThrottle(clock=clock)
    per_second = RateLimitPolicy("steady", requests=60, per_seconds=60)
    await attempts(throttle, "client-1", per_second, 60)
    assert not (await throttle.check("client-1", per_second)).allowed

    clock.advance(1)
    assert [d.allowed for d in await attempts(throttle, "client-1", per_second, 2)] == [True, False]

    clock.advance(30)
    decisions = await attempts(throttle, "client-1", per_second, 31)
    assert sum(d.allowed for d in decisions) == 30
    assert decisions[-1].retry_after == 1

    clock.advance(60)
    after_idle = await throttle.check("client-1", per_second)
    assert (after_idle.remaining, after_idle.reset_seconds) == (59, 1)


async def test_memory_denials_spend_nothing_as_time_passes(clock):
    throttle = MemoryThrottle(clock=clock)
    await attempts(throttle, "client-1", FIVE_AN_HOUR, 5)
    for _ in range(10):
        clock.advance(60)
        assert not (await throttle.check("client-1", FIVE_AN_HOUR)).allowed
    clock.advance(120)  # 720 s since the quota was spent: exactly one request has come back
    assert [d.allowed for d in await attempts(throttle, "client-1", FIVE_AN_HOUR, 2)] == [True, False]


async def test_consumers_whose_quota_is_back_are_forgotten(clock):
    throttle = MemoryThrottle(clock=clock)
    per_second = RateLimitPolicy("tiny", requests=1, per_seconds=1)
    for index in range(3000):
        await throttle.check(f"old-{index}", per_second)
    clock.advance(2)
    for index in range(3000):
        await throttle.check(f"new-{index}", per_second)
    assert len(throttle) == 3000


# In Redis


async def test_quota_returns_on_the_servers_clock(redis_prefix):
    throttle = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False)
    two_per_second = RateLimitPolicy("fast", requests=2, per_seconds=1)
    await attempts(throttle, "client-1", two_per_second, 2)
    denied = await attempts(throttle, "client-1", two_per_second, 10)
    assert not any(d.allowed for d in denied)
    assert denied[-1].retry_after == 1

    await asyncio.sleep(0.6)  # one request comes back every 0.5 s, denied ones notwithstanding
    assert [d.allowed for d in await attempts(throttle, "client-1", two_per_second, 2)] == [True, False]
    await throttle.aclose()


async def test_idle_consumers_expire_from_redis(redis_prefix):
    throttle = RedisThrottle(REDIS_URL, prefix=redis_prefix)
    await throttle.check("client-1", FIVE_AN_HOUR)
    client = Redis.from_url(REDIS_URL)
    assert 719_000 < await client.pttl(f"{redis_prefix}five:client-1") <= 720_000
    await client.aclose()
    await throttle.aclose()


async def test_replicas_share_one_budget(redis_prefix):
    policy = RateLimitPolicy("shared", requests=50, per_seconds=3600, burst=50)
    # Exactness is the point here, not the store's timeout: 300 checks opening connections at once on a
    # loaded machine can take longer than the production 0.25 s to be served.
    replicas = [RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, timeout=5) for _ in range(2)]
    decisions = await asyncio.gather(*(replicas[n % 2].check("tenant-7", policy) for n in range(300)))
    admitted = [d for d in decisions if d.allowed]
    assert len(admitted) == 50
    assert sorted(d.remaining for d in admitted) == list(range(50))
    for replica in replicas:
        await replica.aclose()


async def test_a_decision_is_one_evalsha(redis_prefix):
    client = Redis.from_url(REDIS_URL, single_connection_client=True)
    throttle = RedisThrottle(client, prefix=redis_prefix)
    await throttle.check("warm-up", BRONZE)  # a server new to the script answers NOSCRIPT once
    address = (await client.client_info())["addr"]
    marker = uuid.uuid4().hex
    watcher = Redis.from_url(REDIS_URL)
    async with watcher.monitor() as monitor:
        decision = await throttle.check("client-1", BRONZE)
        await client.echo(marker)
        ours = []
        while True:
            command = await asyncio.wait_for(monitor.next_command(), timeout=5)
            if f"{command['client_address']}:{command['client_port']}" != address:
                continue  # other clients of the shared server, and the script's own calls ("lua")
            if command["command"] == f"ECHO {marker}":
                break
            ours.append(command["command"].split()[0].upper())
    assert ours == ["EVALSHA"]
    assert (decision.allowed, decision.remaining, decision.reset_seconds) == (True, 99, 1)
    await watcher.aclose()
    await client.aclose()


async def monitored_commands(client: Redis, during: Callable[[], Awaitable[Any]]) -> tuple[list[str], Any]:
    """What `during()` returns, and the commands `client` (one connection) sent meanwhile (MONITOR)."""
    address = (await client.client_info())["addr"]
    marker = uuid.uuid4().hex
    watcher = Redis.from_url(REDIS_URL)
    ours = []
    async with watcher.monitor() as monitor:
        result = await during()
        await client.echo(marker)
        while True:
            command = await asyncio.wait_for(monitor.next_command(), timeout=5)
            if f"{command['client_address']}:{command['client_port']}" != address:
                continue
            if command["command"] == f"ECHO {marker}":
                break
            ours.append(command["command"])
    await watcher.aclose()
    return ours, result


async def test_decisions_asked_together_are_one_evalsha_decided_in_order(redis_prefix):
    client = Redis.from_url(REDIS_URL, single_connection_client=True)
    throttle = RedisThrottle(client, prefix=redis_prefix)
    await throttle.check("warm-up", BRONZE)
    three = RateLimitPolicy("three", requests=3, per_seconds=3600)

    def together() -> Awaitable[list[RateLimitDecision]]:
        checks = [throttle.check("client-1", three) for _ in range(5)]
        return asyncio.gather(*checks, throttle.check("client-2", BRONZE))

    commands, decisions = await monitored_commands(client, together)
    assert [command.split()[0].upper() for command in commands] == ["EVALSHA"]
    assert [(d.allowed, d.remaining) for d in decisions[:5]] == [
        (True, 2), (True, 1), (True, 0), (False, 0), (False, 0)
    ]  # fmt: skip
    assert decisions[4].retry_after is not None and decisions[2].retry_after is None
    assert (decisions[5].allowed, decisions[5].remaining, decisions[5].policy) == (True, 99, BRONZE)
    await client.aclose()


async def test_a_failed_call_fails_every_decision_asked_with_it(caplog):
    throttle = RedisThrottle(NOTHING_LISTENS, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="policies.throttle.redis_throttle"):
        decisions = await asyncio.gather(*(throttle.check(f"client-{n}", BRONZE) for n in range(4)))
    assert all(d.allowed and d.degraded for d in decisions)
    assert throttle.degraded_count == 4
    await throttle.aclose()
    closed = RedisThrottle(NOTHING_LISTENS, fail_open=False)
    checks = (closed.check("client-1", BRONZE) for _ in range(3))
    outcomes = await asyncio.gather(*checks, return_exceptions=True)
    assert all(isinstance(outcome, ThrottleUnavailable) for outcome in outcomes)
    await closed.aclose()


async def test_unreachable_store_fails_open_as_degraded_and_warns_once(caplog):
    throttle = RedisThrottle(NOTHING_LISTENS, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="policies.throttle.redis_throttle"):
        decisions = await attempts(throttle, "client-1", BRONZE, 3)
    assert all(d.allowed and d.degraded for d in decisions)
    assert decisions[0].headers()["RateLimit"] == '"bronze";r=99;t=1'
    assert throttle.degraded_count == 3
    assert len(caplog.records) == 1
    await throttle.aclose()


async def test_unreachable_store_fails_closed():
    throttle = RedisThrottle(NOTHING_LISTENS, fail_open=False)
    with pytest.raises(ThrottleUnavailable):
        await throttle.check("client-1", BRONZE)
    assert throttle.degraded_count == 0
    await throttle.aclose()


async def test_a_store_that_hangs_is_given_up_on_quickly():
    async def accept_and_say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    throttle = RedisThrottle(f"redis://127.0.0.1:{port}/0", fail_open=False)
    started = time.monotonic()
    with pytest.raises(ThrottleUnavailable):
        await throttle.check("client-1", BRONZE)
    assert time.monotonic() - started < 2  # 0.25 s socket timeout, one retry
    await throttle.aclose()
    server.close()
    await server.wait_closed()


# A private Redis of our own for faults that the shared one must never be put through


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """redis-server on a free port; BUSY is answered once a script has run 50 ms."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(tmp_path_factory.mktemp("redis")),
            "--busy-reply-threshold", "50",
            "--enable-debug-command", "local",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail("private redis-server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def busy_script(url: str) -> Iterator[None]:
    """A script that loops until killed, run from a connection of its own, as a buggy tenant might."""
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    looping = socket.create_connection(("127.0.0.1", port))
    looping.sendall(b'EVAL "while true do end" 0\r\n')
    try:
        # Every command past busy-reply-threshold is answered BUSY.
        await_ping(port, b"-BUSY")
        yield
    finally:
        with socket.create_connection(("127.0.0.1", port)) as killer:
            killer.sendall(b"SCRIPT KILL\r\n")
            killer.recv(256)
        looping.close()
        await_ping(port, b"+PONG")  # the kill is acknowledged before the script has stopped


def await_ping(port: int, answer: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as probe:
        for _ in range(500):
            probe.sendall(b"PING\r\n")
            if probe.recv(256).startswith(answer):
                return
            time.sleep(0.01)
    pytest.fail(f"the server never answered {answer!r}")


@pytest.mark.parametrize("fail_open", [True, False])
async def test_an_error_reply_from_the_store_is_an_outage_not_a_crash(private_redis, fail_open):
    throttle = RedisThrottle(private_redis, fail_open=fail_open)
    key = uuid.uuid4().hex
    assert (await throttle.check(key, BRONZE)).allowed  # the script is loaded, the server well
    with busy_script(private_redis):
        if fail_open:
            decision = await throttle.check(key, BRONZE)
            assert decision.allowed and decision.degraded
            assert throttle.degraded_count == 1
        else:
            with pytest.raises(ThrottleUnavailable, match="BUSY"):
                await throttle.check(key, BRONZE)
    decision = await throttle.check(key, BRONZE)
    assert (decision.allowed, decision.degraded, decision.remaining) == (True, False, 98)
    await throttle.aclose()


async def test_a_store_that_stops_answering_is_given_up_before_it_answers_again(private_redis):
    throttle = RedisThrottle(private_redis, fail_open=False)
    await throttle.check("client-sleep", BRONZE)
    sleeper = Redis.from_url(private_redis)
    sleeping = asyncio.create_task(sleeper.execute_command("DEBUG", "SLEEP", "2"))
    await asyncio.sleep(0.1)  # the server is now asleep and answers nobody
    with pytest.raises(ThrottleUnavailable):
        await throttle.check("client-sleep", BRONZE)
    assert not sleeping.done()
    await sleeping
    await sleeper.aclose()
    await throttle.aclose()


# Leases: busy consumers are admitted from a slice of their budget taken in one call

# Capacity 6,400: a lease of 64 units; one unit comes back every 25 minutes, so none while a test runs.
BUSY = RateLimitPolicy("busy", requests=6400, per_seconds=10_000_000)


async def test_a_busy_consumer_is_admitted_from_leases_counting_down_exactly(redis_prefix):
    throttle = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False)
    assert throttle.lease_size(BUSY) == 64 and throttle.lease_size(BRONZE) == 1
    decisions = await attempts(throttle, "client-1", BUSY, 300)
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == list(range(6399, 6099, -1))
    # One call per lease of 64 (the next one asked for when half is spent), not one per request.
    assert throttle.script_calls <= 300 // 64 + 2
    await throttle.aclose()


async def test_replicas_with_leases_never_admit_more_than_the_budget(redis_prefix):
    policy = RateLimitPolicy("shared-busy", requests=1000, per_seconds=10_000_000)
    replicas = [RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, timeout=5) for _ in range(2)]
    decisions = await asyncio.gather(*(replicas[n % 2].check("tenant-7", policy) for n in range(3000)))
    assert 900 <= sum(d.allowed for d in decisions) <= 1000  # units leased and not spent yet are held
    for replica in replicas:
        await replica.aclose()


async def test_replicas_closing_give_back_what_their_leases_hold(redis_prefix):
    policy = RateLimitPolicy("shared-busy", requests=1000, per_seconds=10_000_000)
    replicas = [RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, timeout=5) for _ in range(2)]
    decisions = await asyncio.gather(*(replicas[n % 2].check("tenant-7", policy) for n in range(601)))
    assert all(d.allowed for d in decisions)
    exact = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, lease_share=0)
    assert (await exact.check("tenant-7", policy, cost=0)).remaining < 1000 - 601  # some still leased
    for replica in replicas:
        await replica.aclose()
    assert (await exact.check("tenant-7", policy, cost=0)).remaining == 1000 - 601
    await exact.aclose()


async def test_units_a_lease_did_not_spend_go_back_after_its_time(redis_prefix):
    leasing = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, lease_seconds=0.2)
    exact = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, lease_share=0)
    assert (await leasing.check("client-1", BUSY)).remaining == 6399
    assert (await exact.check("client-1", BUSY)).remaining == 6400 - 64 - 1  # 63 units still leased
    deadline = time.monotonic() + 5
    while (decision := await exact.check("client-1", BUSY, cost=0)).remaining != 6400 - 2:
        assert time.monotonic() < deadline, f"leased units not given back: remaining {decision.remaining}"
        await asyncio.sleep(0.05)
    await leasing.aclose()
    await exact.aclose()


async def test_leases_fail_open_when_redis_is_unreachable(caplog):
    throttle = RedisThrottle(NOTHING_LISTENS, fail_open=True)
    with caplog.at_level(logging.WARNING, logger="policies.throttle.redis_throttle"):
        decisions = await asyncio.gather(*(throttle.check("client-1", BUSY) for _ in range(10)))
    assert all(d.allowed and d.degraded for d in decisions)
    await throttle.aclose()


async def test_a_lease_taken_while_an_expired_one_is_swept_is_not_lost(redis_prefix):
    # The sweep gives back expired leases in a task of its own; a request arriving before that task
    # runs replaces the expired lease with a new one, which the give-back must not take for the old.
    leasing = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, lease_seconds=60)
    exact = RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False, lease_share=0)
    assert (await leasing.check("client-1", BUSY)).remaining == 6399  # a lease of 64, one spent
    for lease in leasing._leases.values():
        lease.expires = 0.0  # past its time, as under a load that outlasted it
    leasing._sweep()  # the give-back is spawned, not yet run
    assert (await leasing.check("client-1", BUSY)).allowed  # a new lease, the old one's 63 given back
    await leasing.aclose()  # gives back what the new lease holds
    assert (await exact.check("client-1", BUSY, cost=0)).remaining == 6400 - 2
    await exact.aclose()
