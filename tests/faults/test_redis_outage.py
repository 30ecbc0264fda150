"""The gateway's Redis throttle store stops, or freezes, and comes back under a running `charter serve`.

Fail-open admits requests unthrottled while Redis is away, fail-closed answers 503 problem+json; no
request waits on Redis much longer than the store's timeout, and once Redis is back (empty, as a
restarted cache is) throttling works again without restarting Charter.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pytest

from policies.throttle import RedisThrottle
from tests.faults.deployment import admin_headers, is_problem, replica_env, started_together, token, until
from tests.faults.servers import PrivateRedis
from tests.registry.support import charter_process

# How long the store waits for Redis (connect, reply, a free pooled connection); one retry doubles it.
STORE_TIMEOUT = inspect.signature(RedisThrottle).parameters["timeout"].default
# A correctness bound, not a benchmark: a request that waits on a silent Redis past its timeout hangs.
REQUEST_BOUND_SECONDS = 2 * STORE_TIMEOUT + 1.0
QUOTA = 5
GATEWAY = "/gw/projects/v1/projects"


@dataclass
class Gateway:
    url: str
    fail_open: bool
    admin: dict[str, str]


@pytest.fixture(scope="module")
def gateways(
    private_redis: PrivateRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[bool, Gateway]]:
    """Two replicas with the demo APIs, throttling through the private Redis, one per fail mode."""
    processes = []
    for fail_open in (True, False):
        workdir = tmp_path_factory.mktemp("redis-fail-open" if fail_open else "redis-fail-closed")
        env = replica_env(
            f"sqlite+aiosqlite:///{workdir}/charter.db",
            workdir,
            demo="1",
            redis_url=private_redis.url,
            throttle_fail_open="1" if fail_open else "0",
        )
        processes.append(charter_process(workdir, **env))
    with started_together(*processes) as started:
        gateways = {}
        for fail_open, (url, _) in zip((True, False), started, strict=True):
            admin = admin_headers(url)
            # Each mode its own tier, so that the two replicas on one Redis spend separate budgets.
            tier = "open" if fail_open else "closed"
            limit = {"tier": tier, "rate_limit": {"requests": QUOTA, "per_seconds": 3600, "burst": QUOTA}}
            response = httpx.put(f"{url}/api/v1/apis/projects/sla", json=limit, headers=admin)
            assert response.status_code == 200, response.text
            consumer = token(url, "billing-app", "billing-secret")
            until(lambda url=url, consumer=consumer: limited(url, consumer), "the gateway applies the limit")
            gateways[fail_open] = Gateway(url, fail_open, admin)
        yield gateways


def limited(url: str, consumer: dict[str, str]) -> bool:
    return "ratelimit-policy" in httpx.get(f"{url}{GATEWAY}", headers=consumer).headers


@pytest.fixture(params=[True, False], ids=["fail-open", "fail-closed"])
def gateway(request: pytest.FixtureRequest, gateways: dict[bool, Gateway]) -> Gateway:
    return gateways[request.param]


def spend_the_quota(client: httpx.Client, consumer: dict[str, str]) -> list[int]:
    return [client.get(GATEWAY, headers=consumer).status_code for _ in range(QUOTA + 2)]


def timed_requests(url: str, consumer: dict[str, str], count: int) -> tuple[list[httpx.Response], float]:
    """`count` gateway requests, eight at a time; the answers and the longest any took."""

    def one(client: httpx.Client) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = client.get(GATEWAY, headers=consumer)
        return response, time.monotonic() - started

    with httpx.Client(base_url=url, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: one(client), range(count)))
    return [r for r, _ in results], max(t for _, t in results)


def check_degraded(gateway: Gateway, responses: list[httpx.Response]) -> None:
    for response in responses:
        if gateway.fail_open:
            assert response.status_code == 200, response.text
            assert "ratelimit" not in response.headers  # a degraded decision's numbers are a guess
        else:
            assert is_problem(response, 503), (response.status_code, response.text)
            assert response.json()["type"] == "/problems/throttle-unavailable"
            assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("fault", ["stopped", "frozen"])
def test_throttle_follows_its_fail_mode_while_redis_is_away_and_recovers(
    gateway: Gateway, private_redis: PrivateRedis, fault: str
) -> None:
    # A consumer per case: a frozen Redis runs the scripts it received once it thaws, spending budget.
    consumer_id = {"stopped": "billing-app", "frozen": "reporting-app"}[fault]
    secret = consumer_id.split("-")[0] + "-secret"
    consumer = token(gateway.url, consumer_id, secret)
    private_redis.stop()
    private_redis.start()  # an empty store: every consumer's quota is whole

    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        assert spend_the_quota(client, consumer) == [200] * QUOTA + [429, 429]

    if fault == "stopped":
        private_redis.stop()
    else:
        private_redis.pause()
    try:
        responses, longest = timed_requests(gateway.url, consumer, 24)
        check_degraded(gateway, responses)
        assert longest < REQUEST_BOUND_SECONDS, f"a request waited {longest:.2f} s on an absent Redis"
    finally:
        if fault == "stopped":
            private_redis.start()
        else:
            private_redis.resume()

    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        if fault == "stopped":
            # A new, empty Redis: the quota is whole again and is enforced again, the first request
            # included (the connections the restart broke are retried once, not reported).
            assert spend_the_quota(client, consumer) == [200] * QUOTA + [429, 429]
        else:
            # The same Redis, which kept the budget spent before it froze.
            assert client.get(GATEWAY, headers=consumer).status_code == 429
