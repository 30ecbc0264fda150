"""An API's compliance with its SLA, from the gateway's own per-minute measurements.

Availability is the share of answers that were not 5xx, with 429 (over quota: the consumer's doing,
not the API's) left out of both the good answers and the total. Latency is the p99 of the answers
that were not 429, estimated from merged fixed buckets (gateway.service_levels: less than 19 % off).
A window of N minutes holds the current minute and the N - 1 before it, so "5m" is the last 4 to 5
minutes and "30d" the last 30 days. Targets are the SLA's (`availability` in percent,
`latency_p99_ms`); an API without an SLA, or without one of the targets, is still measured and
answers that target, its error budget and burn rates as null.
"""

from __future__ import annotations

import datetime as dt

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.service_levels import MinuteCounts, estimate_quantile_ms
from registry.db.models import Api, utcnow
from registry.slo.minutes import totals_since

# The windows of the Google SRE workbook's multi-window, multi-burn-rate alerts, and the budget's.
WINDOWS: dict[str, dt.timedelta] = {
    "5m": dt.timedelta(minutes=5),
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "3d": dt.timedelta(days=3),
    "30d": dt.timedelta(days=30),
}
BUDGET_WINDOW = "30d"
LATENCY_ESTIMATE = (
    "p99 estimated from 62 fixed latency buckets with bounds 2^(k/4) ms (1 ms to 32.8 s), merged over "
    "the window: within 19 % of the exact p99; above 32.8 s the answer is 32768"
)


class Measured(msgspec.Struct):
    overall: float | None  # null: no request in the window
    versions: dict[str, float | None]


class Objective(msgspec.Struct):
    target: float | None  # null: the SLA sets none
    measured: dict[str, Measured]  # by window


class Requests(msgspec.Struct):
    total: int  # every answer, 429 included
    errors: int  # 5xx
    throttled: int  # 429


class SloOut(msgspec.Struct):
    api: str
    owner: str
    tier: str | None
    windows: list[str]
    availability: Objective  # percent
    latency_p99_ms: Objective
    # Share of the 30-day error budget left: 1 untouched, 0 spent, below 0 overspent; null without a
    # target availability.
    error_budget_remaining: float | None
    # By window: the error rate over what the target allows (1: spending the budget exactly in 30 days).
    burn_rate: dict[str, float | None]
    requests: dict[str, Requests]
    latency_estimate: str


def availability_percent(counts: MinuteCounts) -> float | None:
    counted = counts.requests - counts.throttled
    return None if counted == 0 else 100 * (counted - counts.errors) / counted


def burn_rate(counts: MinuteCounts, target_percent: float | None) -> float | None:
    """The error rate over the rate the target allows; null without traffic or target, or when the
    target is 100 % (no budget to burn at any rate)."""
    counted = counts.requests - counts.throttled
    if target_percent is None or counted == 0 or target_percent >= 100:
        return None
    return (counts.errors / counted) / (1 - target_percent / 100)


def budget_remaining(counts: MinuteCounts, target_percent: float | None) -> float | None:
    if target_percent is None:
        return None
    counted = counts.requests - counts.throttled
    if target_percent >= 100:
        return 0.0 if counts.errors else 1.0
    if counted == 0:
        return 1.0
    return 1 - counts.errors / ((1 - target_percent / 100) * counted)


def _overall(versions: dict[str, MinuteCounts]) -> MinuteCounts:
    total = MinuteCounts()
    for counts in versions.values():
        total.add(counts)
    return total


async def slo_of(session: AsyncSession, api: Api, *, now: dt.datetime | None = None) -> SloOut:
    now = now or utcnow()
    this_minute = now.replace(second=0, microsecond=0)
    sla = api.sla or {}
    availability_target = sla.get("availability")
    latency_target = sla.get("latency_p99_ms")
    availability: dict[str, Measured] = {}
    latency: dict[str, Measured] = {}
    burn: dict[str, float | None] = {}
    requests: dict[str, Requests] = {}
    budget: float | None = None
    for name, length in WINDOWS.items():
        since = this_minute - length + dt.timedelta(minutes=1)
        versions = await totals_since(session, api.name, since)
        overall = _overall(versions)
        availability[name] = Measured(
            overall=availability_percent(overall),
            versions={v: availability_percent(c) for v, c in sorted(versions.items())},
        )
        latency[name] = Measured(
            overall=_p99(overall),
            versions={v: _p99(c) for v, c in sorted(versions.items())},
        )
        burn[name] = burn_rate(overall, availability_target)
        requests[name] = Requests(total=overall.requests, errors=overall.errors, throttled=overall.throttled)
        if name == BUDGET_WINDOW:
            budget = budget_remaining(overall, availability_target)
    return SloOut(
        api=api.name,
        owner=api.owner.name,
        tier=sla.get("tier"),
        windows=list(WINDOWS),
        availability=Objective(target=availability_target, measured=availability),
        latency_p99_ms=Objective(
            target=float(latency_target) if latency_target is not None else None, measured=latency
        ),
        error_budget_remaining=budget,
        burn_rate=burn,
        requests=requests,
        latency_estimate=LATENCY_ESTIMATE,
    )


def _p99(counts: MinuteCounts) -> float | None:
    estimate = estimate_quantile_ms(counts.buckets, 0.99)
    return None if estimate is None else round(estimate, 3)
