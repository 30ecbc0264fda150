"""What the gateway measured against each API's service level, per version and minute: requests,
server errors (5xx), throttled answers (429) and a latency histogram with fixed buckets.

The registry drains the counter now and then, as it drains the usage counter, and adds each minute
to a row shared by every replica (summing counts and buckets is exact, so replicas add up and any
range of minutes merges into one histogram). The bounds never change: a stored bucket index means
the same latency range on every replica and after every restart.
"""

from __future__ import annotations

import bisect
import math
import time

# Upper bounds in milliseconds: 2^(k/4) for k = 0..60, from 1 ms to 32.8 s; one more bucket above.
# Neighbouring bounds differ by 2^(1/4) (19 %): a quantile read from merged buckets lies in the same
# bucket as the exact one, so it is off by less than 19 % of it (estimate_quantile_ms interpolates).
LATENCY_BOUNDS_MS: tuple[float, ...] = tuple(2 ** (k / 4) for k in range(61))
BUCKETS = len(LATENCY_BOUNDS_MS) + 1  # the last bucket holds latencies above 32.8 s
_BOUNDS_SECONDS = tuple(bound / 1000 for bound in LATENCY_BOUNDS_MS)


class MinuteCounts:
    """One API version's requests in one minute."""

    __slots__ = ("buckets", "errors", "requests", "throttled")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0  # 5xx
        self.throttled = 0  # 429: neither good nor bad, and not in the latency histogram
        self.buckets = [0] * BUCKETS

    def add(self, other: MinuteCounts) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.throttled += other.throttled
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]


class ServiceLevelCounter:
    """Counts per (api, version, minute since the epoch, UTC); `drain` hands them over and starts anew."""

    def __init__(self) -> None:
        self._minutes: dict[tuple[str, str, int], MinuteCounts] = {}

    def record(
        self, api: str, version: str, status: int, seconds: float, *, now: float | None = None
    ) -> None:
        minute = int((time.time() if now is None else now) // 60)
        key = (api, version, minute)
        counts = self._minutes.get(key)
        if counts is None:
            counts = self._minutes[key] = MinuteCounts()
        counts.requests += 1
        if status == 429:
            counts.throttled += 1
            return
        if status >= 500:
            counts.errors += 1
        # bisect_left: a latency equal to a bound belongs to that bound's bucket (Prometheus' `le`).
        counts.buckets[bisect.bisect_left(_BOUNDS_SECONDS, seconds)] += 1

    def drain(self) -> dict[tuple[str, str, int], MinuteCounts]:
        minutes, self._minutes = self._minutes, {}
        return minutes


def estimate_quantile_ms(buckets: list[int], q: float) -> float | None:
    """The q-quantile (0 < q < 1) of the latencies counted in `buckets`, in milliseconds.

    The rank ceil(q * n) is found in its bucket and placed inside it geometrically (the bounds are
    geometric), so the estimate lies in the same bucket as the exact value: less than 19 % off. In the
    first bucket (up to 1 ms) the place is linear from 0; above the last bound the bound is answered
    (a lower bound of the truth). None without latencies.
    """
    total = sum(buckets)
    if total == 0:
        return None
    rank = max(1, math.ceil(q * total))
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            fraction = (rank - seen) / count
            if index == 0:
                return LATENCY_BOUNDS_MS[0] * fraction
            if index == len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            lower, upper = LATENCY_BOUNDS_MS[index - 1], LATENCY_BOUNDS_MS[index]
            return lower * (upper / lower) ** fraction
        seen += count
    return LATENCY_BOUNDS_MS[-1]  # unreachable: the ranks end in the last non-empty bucket
