"""The built-in issuer under guessing: one answer for every failure, failures counted and refused."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from policies.auth import AttemptLimits, ClientConfig, ClientCredentialsIssuer, FailedAttempts, hash_secret
from policies.auth.issuer import TokenResponse
from policies.throttle import MemoryThrottle, RedisThrottle

ISSUER = "https://charter.example"
REDIS_URL = os.environ.get("CHARTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REGISTERED_SECRET = "registered-secret-0123456789abcdef"
CLIENTS = [
    ClientConfig("configured", "configured-secret", ("registry:read",)),
    ClientConfig("registered", scopes=("registry:read",), secret_hash=hash_secret(REGISTERED_SECRET)),
]
SECRETS = {"configured": "configured-secret", "registered": REGISTERED_SECRET}
LIMITS = AttemptLimits(per_source=3, per_client=5, window_seconds=60, trusted_seconds=3600)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> ClientCredentialsIssuer:
    return make_issuer(FailedAttempts(MemoryThrottle(clock=clock), LIMITS))


def make_issuer(attempts: FailedAttempts, verify_threads: int = 4) -> ClientCredentialsIssuer:
    return ClientCredentialsIssuer(
        issuer=ISSUER, audience="charter", clients=CLIENTS, attempts=attempts, verify_threads=verify_threads
    )


async def attempt(
    issuer: ClientCredentialsIssuer,
    client_id: str,
    secret: str,
    *,
    source: str = "192.0.2.1",
    basic: bool = True,
) -> TokenResponse:
    form = {"grant_type": "client_credentials"}
    headers = {}
    if basic:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    else:
        form |= {"client_id": client_id, "client_secret": secret}
    return await issuer.token_endpoint(
        method="POST", uri=f"{ISSUER}/oauth/token", headers=headers, form=form, source=source
    )


def error_of(response: TokenResponse) -> str:
    return json.loads(response.body)["error"]


@pytest.mark.parametrize("basic", [True, False], ids=["client_secret_basic", "client_secret_post"])
async def test_unknown_client_ids_get_the_answer_a_wrong_secret_gets(issuer, basic):
    answers = [
        await attempt(issuer, client_id, "a-guess", basic=basic, source=f"192.0.2.{n}")
        for n, client_id in enumerate(["configured", "registered", "no-such-client"])
    ]
    assert {(a.status, a.body, tuple(sorted(a.headers.items()))) for a in answers} == {
        (answers[0].status, answers[0].body, tuple(sorted(answers[0].headers.items())))
    }
    assert answers[0].status == 401 and error_of(answers[0]) == "invalid_client"


async def test_an_address_that_keeps_failing_is_refused_then_let_back_gradually(issuer, clock):
    for client_id in ["configured", "registered", "no-such-client"]:
        assert (await attempt(issuer, client_id, "a-guess")).status == 401
    refused = await attempt(issuer, "configured", "configured-secret")  # even the right secret
    assert (refused.status, error_of(refused)) == (429, "slow_down")
    assert refused.headers["Retry-After"] == "20"  # one failure comes back every 60 s / 3
    unknown = await attempt(issuer, "no-such-client", "a-guess")
    assert (unknown.status, unknown.body) == (refused.status, refused.body)

    elsewhere = await attempt(issuer, "configured", "configured-secret", source="198.51.100.7")
    assert elsewhere.status == 200  # the budget is the address's, not the client's

    clock.now += 20
    assert (await attempt(issuer, "registered", REGISTERED_SECRET)).status == 200
    assert (await attempt(issuer, "registered", "a-guess")).status == 401
    assert (await attempt(issuer, "registered", REGISTERED_SECRET)).status == 429


async def test_successes_spend_nothing(issuer):
    for _ in range(3 * LIMITS.per_source):
        assert (await attempt(issuer, "registered", REGISTERED_SECRET)).status == 200


async def test_an_ipv6_host_counts_as_its_whole_64(issuer):
    for host in range(1, 4):
        await attempt(issuer, "configured", "a-guess", source=f"2001:db8:0:1::{host}")
    refused = await attempt(issuer, "configured", "configured-secret", source="2001:db8:0:1:ffff::9")
    assert refused.status == 429
    other = await attempt(issuer, "configured", "configured-secret", source="2001:db8:0:2::1")
    assert other.status == 200


async def test_guessing_at_one_client_from_many_addresses_spares_its_callers(issuer, clock):
    assert (await attempt(issuer, "registered", REGISTERED_SECRET, source="203.0.113.10")).status == 200
    for n in range(LIMITS.per_client):
        assert (await attempt(issuer, "registered", "a-guess", source=f"198.51.100.{n}")).status == 401

    fresh = await attempt(issuer, "registered", "a-guess", source="198.51.100.200")
    assert (fresh.status, error_of(fresh), fresh.headers["Retry-After"]) == (429, "slow_down", "12")
    new_caller = await attempt(issuer, "registered", REGISTERED_SECRET, source="203.0.113.99")
    assert new_caller.status == 429
    # The address that authenticated this client before is trusted, and is verified as usual.
    known_caller = await attempt(issuer, "registered", REGISTERED_SECRET, source="203.0.113.10")
    assert known_caller.status == 200
    assert (await attempt(issuer, "configured", "configured-secret", source="203.0.113.99")).status == 200

    clock.now += 12
    assert (await attempt(issuer, "registered", REGISTERED_SECRET, source="203.0.113.99")).status == 200

    clock.now += 2 * LIMITS.trusted_seconds  # trust lapses, and the guessing goes on
    for n in range(LIMITS.per_client):
        await attempt(issuer, "registered", "a-guess", source=f"198.51.100.{n + 100}")
    assert (await attempt(issuer, "registered", REGISTERED_SECRET, source="203.0.113.10")).status == 429


async def test_a_flood_waits_for_a_bounded_number_of_threads_then_is_told_to_come_back(clock):
    limits = AttemptLimits(per_source=1000, per_client=1000)
    issuer = make_issuer(FailedAttempts(MemoryThrottle(clock=clock), limits), verify_threads=1)
    answers = await asyncio.gather(*(attempt(issuer, "registered", "a-guess") for _ in range(40)))
    statuses = [a.status for a in answers]
    # One verifying, sixteen waiting for the one thread; the rest are not queued at all.
    assert statuses.count(401) == 17
    assert statuses.count(503) == 23
    busy = next(a for a in answers if a.status == 503)
    assert (error_of(busy), busy.headers["Retry-After"]) == ("temporarily_unavailable", "1")
    assert (await attempt(issuer, "registered", REGISTERED_SECRET)).status == 200


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"charter-test:attempts:{uuid.uuid4().hex}:"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_replicas_sharing_redis_share_the_failure_budget(redis_prefix):
    stores = [RedisThrottle(REDIS_URL, prefix=redis_prefix, fail_open=False) for _ in range(2)]
    replicas = [make_issuer(FailedAttempts(store, LIMITS)) for store in stores]
    for n in range(LIMITS.per_source):
        assert (await attempt(replicas[n % 2], "configured", "a-guess")).status == 401
    for replica in replicas:
        refused = await attempt(replica, "configured", "configured-secret")
        assert refused.status == 429
        assert 19 <= int(refused.headers["Retry-After"]) <= 20
    for store in stores:
        await store.aclose()


@pytest.mark.parametrize("fail_open", [True, False], ids=["fail-open", "fail-closed"])
async def test_while_the_shared_store_is_down_failures_are_counted_in_the_process(fail_open):
    store = RedisThrottle("redis://127.0.0.1:1/0", fail_open=fail_open)
    issuer = make_issuer(FailedAttempts(store, LIMITS))
    assert (await attempt(issuer, "configured", "configured-secret")).status == 200
    for _ in range(LIMITS.per_source):
        assert (await attempt(issuer, "configured", "a-guess")).status == 401
    assert (await attempt(issuer, "configured", "configured-secret")).status == 429
    await store.aclose()
