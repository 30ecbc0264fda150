"""The generic cell rate algorithm (ITU-T I.371) over one stored number per consumer.

A consumer's state is its theoretical arrival time (TAT): when it would have used up its quota at the
steady rate. A request costing c is admitted if TAT + c * interval - tolerance <= now, which then moves
TAT there; a denial leaves TAT untouched, so refused requests spend nothing. With tolerance = capacity *
interval an idle consumer may send `capacity` requests at once.

Time is integer microseconds so that this module and the Lua copy in `redis_throttle` compute the same
numbers exactly; both must change together.
"""

from __future__ import annotations

from typing import NamedTuple

from policies.throttle.decision import RateLimitDecision, RateLimitPolicy

MICROSECONDS = 1_000_000


class Schedule(NamedTuple):
    """A policy in the algorithm's units; rounding the interval up errs on the strict side by < 1 us."""

    interval: int
    tolerance: int

    @classmethod
    def of(cls, policy: RateLimitPolicy) -> Schedule:
        interval = _ceil_div(policy.per_seconds * MICROSECONDS, policy.requests)
        return cls(interval, interval * policy.capacity)


def check_cost(policy: RateLimitPolicy, cost: int) -> None:
    if not 0 <= cost <= policy.capacity:
        raise ValueError(f"cost {cost} is outside 0..{policy.capacity} for policy {policy.name!r}")


def conform(
    tat: int | None, now: int, policy: RateLimitPolicy, cost: int
) -> tuple[RateLimitDecision, int | None]:
    """The decision for a request at `now`, and the TAT to store (None: leave the stored one)."""
    interval, tolerance = Schedule.of(policy)
    tat = now if tat is None or tat < now else tat
    new_tat = tat + cost * interval
    allow_at = new_tat - tolerance
    if allow_at <= now:
        decision = RateLimitDecision(
            allowed=True,
            policy=policy,
            remaining=(now - allow_at) // interval,
            reset_seconds=_ceil_div(new_tat - now, MICROSECONDS),
            retry_after=None,
        )
        return decision, new_tat if cost else None
    decision = RateLimitDecision(
        allowed=False,
        policy=policy,
        # Clamped because a policy whose burst was lowered can meet a TAT beyond its new tolerance.
        remaining=max(0, (now - tat + tolerance) // interval),
        reset_seconds=_ceil_div(tat - now, MICROSECONDS),
        retry_after=_ceil_div(allow_at - now, MICROSECONDS),
    )
    return decision, None


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
