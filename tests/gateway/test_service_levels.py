"""The gateway's per-minute service-level counts and the p99 read back from merged buckets."""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.service_levels import (
    BUCKETS,
    LATENCY_BOUNDS_MS,
    MinuteCounts,
    ServiceLevelCounter,
    estimate_quantile_ms,
)


def test_requests_errors_and_throttled_are_counted_per_api_version_and_minute():
    counter = ServiceLevelCounter()
    minute = 29_000_000 * 60.0
    counter.record("hcm", "1.0.0", 200, 0.004, now=minute + 1)
    counter.record("hcm", "1.0.0", 503, 0.2, now=minute + 59.9)
    counter.record("hcm", "1.0.0", 429, 0.0001, now=minute + 30)
    counter.record("hcm", "1.0.0", 200, 0.004, now=minute + 60)  # the next minute
    counter.record("hcm", "2.0.0", 404, 0.001, now=minute)
    drained = counter.drain()
    assert counter.drain() == {}
    this = drained["hcm", "1.0.0", 29_000_000]
    assert (this.requests, this.errors, this.throttled, sum(this.buckets)) == (3, 1, 1, 2)
    assert drained["hcm", "1.0.0", 29_000_001].requests == 1
    # A latency on a bound belongs to that bound's bucket, as Prometheus' `le` has it.
    assert drained["hcm", "2.0.0", 29_000_000].buckets[0] == 1


def test_bounds_are_fixed_and_geometric():
    assert BUCKETS == 62 and LATENCY_BOUNDS_MS[0] == 1 and LATENCY_BOUNDS_MS[-1] == 32768
    ratios = {round(b / a, 12) for a, b in itertools.pairwise(LATENCY_BOUNDS_MS)}
    assert ratios == {round(2**0.25, 12)}


def test_quantile_of_nothing_is_none_and_above_the_last_bound_is_the_bound():
    assert estimate_quantile_ms([0] * BUCKETS, 0.99) is None
    overflow = [0] * BUCKETS
    overflow[-1] = 5
    assert estimate_quantile_ms(overflow, 0.99) == 32768


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(min_value=0.001, max_value=30.0), min_size=1, max_size=400),
    st.integers(min_value=1, max_value=4),
)
def test_p99_of_merged_minutes_is_within_19_percent_of_the_exact_p99(latencies, replicas):
    """However the answers are split over replicas and minutes, merging their buckets gives one
    estimate, off from the exact p99 (the ceil(0.99 n)-th smallest) by less than a bucket's ratio."""
    parts = [ServiceLevelCounter() for _ in range(replicas)]
    for index, seconds in enumerate(latencies):
        parts[index % replicas].record("a", "1", 200, seconds, now=60.0 * (index % 3))
    merged = MinuteCounts()
    for part in parts:
        for counts in part.drain().values():
            merged.add(counts)
    exact = sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1] * 1000
    estimate = estimate_quantile_ms(merged.buckets, 0.99)
    assert estimate is not None
    if exact <= LATENCY_BOUNDS_MS[0]:
        assert estimate <= LATENCY_BOUNDS_MS[0]
    else:
        assert exact / 2**0.25 <= estimate <= exact * 2**0.25
