"""The API page's chart of calls per day per version: read from the daily counts and laid out here as
stacked bars (one column per day, one colour per version), so the template only draws rectangles.
An inline SVG needs no script and no vendored chart library; a table beside it says the same."""

from __future__ import annotations

import datetime as dt

import msgspec
import semver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.models import ApiDailyUsage

DAYS = 30
# The busiest versions get a colour each; the rest are summed as "other versions".
MAX_SERIES = 5
# Okabe-Ito colours: told apart with the common colour-vision deficiencies, 3:1 on white or better.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#8a6d00")
OTHER_COLOUR = "#6b7280"
OTHER = "other versions"
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28


class Series(msgspec.Struct, frozen=True):
    version: str
    colour: str
    calls: int


class Segment(msgspec.Struct, frozen=True):
    version: str
    calls: int
    y: float
    height: float
    colour: str


class DayColumn(msgspec.Struct, frozen=True):
    day: dt.date
    total: int
    x: float
    segments: list[Segment]
    by_version: dict[str, int]


class UsageChart(msgspec.Struct, frozen=True):
    series: list[Series]
    columns: list[DayColumn]
    peak: int
    total: int
    first_day: dt.date
    last_day: dt.date
    bar_width: float
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def busy_days(self) -> list[DayColumn]:
        """The days with calls, newest first: the table beside the chart."""
        return [c for c in reversed(self.columns) if c.total]


async def daily_usage(session: AsyncSession, api: str, today: dt.date) -> UsageChart | None:
    """The last `DAYS` days up to `today` (UTC); None when the gateway served no call in them. One
    grouped read of at most DAYS rows per version, on the (api, day) index."""
    first = today - dt.timedelta(days=DAYS - 1)
    rows = await session.execute(
        select(ApiDailyUsage.version, ApiDailyUsage.day, func.sum(ApiDailyUsage.calls))
        .where(ApiDailyUsage.api == api, ApiDailyUsage.day >= first, ApiDailyUsage.day <= today)
        .group_by(ApiDailyUsage.version, ApiDailyUsage.day)
    )
    counts = [(version, day, int(calls)) for version, day, calls in rows]
    if not counts:
        return None
    per_version: dict[str, int] = {}
    for version, _, calls in counts:
        per_version[version] = per_version.get(version, 0) + calls
    busiest = sorted(per_version, key=lambda v: (-per_version[v], v))[:MAX_SERIES]
    shown = sorted(busiest, key=_semver_key, reverse=True)
    colours = dict(zip(shown, PALETTE, strict=False))
    series = [Series(v, colours[v], per_version[v]) for v in shown]
    other = sum(calls for v, calls in per_version.items() if v not in colours)
    if other:
        series.append(Series(OTHER, OTHER_COLOUR, other))
        colours[OTHER] = OTHER_COLOUR

    by_day: dict[dt.date, dict[str, int]] = {}
    for version, day, calls in counts:
        key = version if version in colours and version != OTHER else OTHER
        cell = by_day.setdefault(day, {})
        cell[key] = cell.get(key, 0) + calls
    peak = max(sum(cell.values()) for cell in by_day.values())
    slot = (WIDTH - LEFT - RIGHT) / DAYS
    plot_height = HEIGHT - BOTTOM - TOP
    columns = []
    for index in range(DAYS):
        day = first + dt.timedelta(days=index)
        cell = by_day.get(day, {})
        segments, base = [], float(HEIGHT - BOTTOM)
        for item in series:  # stacked bottom-up in legend order
            calls = cell.get(item.version, 0)
            if not calls:
                continue
            height = max(1.0, plot_height * calls / peak)
            base -= height
            segments.append(Segment(item.version, calls, round(base, 1), round(height, 1), item.colour))
        columns.append(
            DayColumn(
                day=day,
                total=sum(cell.values()),
                x=round(LEFT + index * slot + slot * 0.15, 1),
                segments=segments,
                by_version=cell,
            )
        )
    return UsageChart(
        series=series,
        columns=columns,
        peak=peak,
        total=sum(per_version.values()),
        first_day=first,
        last_day=today,
        bar_width=round(slot * 0.7, 1),
    )


def _semver_key(version: str) -> semver.Version:
    try:
        return semver.Version.parse(version)
    except ValueError:
        return semver.Version(0)
