"""The registry's own Prometheus metrics (beside the gateway's, at the same /metrics), and the spans
and measurements of a publish.

Labels stay few and bounded: results, outcomes and phases, never an API name, a consumer or a path
(the gateway's metrics carry the API where the SLA views need it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.errors import ContractError
from gateway.tracing import NO_TRACING, Span, Tracing
from registry.compatibility import IncompatibleChange
from registry.db.models import OutboxEvent, utcnow
from registry.errors import (
    Forbidden,
    RegistryError,
    RulesetViolation,
    ScopeTaken,
    Unauthenticated,
    VersionConflict,
)

PUBLISH_RESULTS = ("published", "unchanged", "refused", "invalid", "conflict", "error")
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RegistryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.publishes = Counter(
            "charter_registry_publishes",
            "Publish requests by result: published, unchanged (the same content again), refused (by a"
            " policy: compatibility, ruleset, ownership), invalid, conflict (the version holds other"
            " content), error",
            ("result",),
            registry=registry,
        )
        self.validate = Histogram(
            "charter_registry_validation_duration_seconds",
            "Parsing and validating a submitted contract",
            registry=registry,
            buckets=_SECONDS,
        )
        self.diff = Histogram(
            "charter_registry_diff_duration_seconds",
            "Diffing a candidate against the versions it succeeds",
            registry=registry,
            buckets=_SECONDS,
        )
        self.outbox_lag = Gauge(
            "charter_outbox_oldest_unrelayed_age_seconds",
            "Age of the oldest outbox event not yet relayed (0 when none waits), read at scrape",
            registry=registry,
        )
        self.outbox_waiting = Gauge(
            "charter_outbox_unrelayed_events",
            "Outbox events not yet relayed, read at scrape",
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "charter_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retrying (failed, to be sent again),"
            " failed (given up)",
            ("outcome",),
            registry=registry,
        )

        # Every series from the start, at zero: a rate over a series that appears later misses its first.
        for result in PUBLISH_RESULTS:
            self.publishes.labels(result)
        for outcome in DELIVERY_OUTCOMES:
            self.webhook_deliveries.labels(outcome)

    async def read_outbox(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Set the outbox gauges from the database (before a scrape): one indexed query."""
        async with sessionmaker() as session:
            oldest, waiting = (
                await session.execute(
                    select(func.min(OutboxEvent.at), func.count()).where(OutboxEvent.relayed_at.is_(None))
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:  # SQLite returns an aggregate without its type
            oldest = oldest.replace(tzinfo=dt.UTC)
        self.outbox_waiting.set(waiting)
        self.outbox_lag.set(max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0)


def publish_result(exc: BaseException) -> str:
    """The `result` label of a publish that raised `exc`."""
    if isinstance(exc, VersionConflict):
        return "conflict"
    if isinstance(exc, IncompatibleChange | RulesetViolation | ScopeTaken | Forbidden | Unauthenticated):
        return "refused"
    if isinstance(exc, RegistryError | ContractError):
        return "invalid"
    return "error"


class PublishTelemetry:
    """What one publish reports: a span with a child per phase, the phase durations, the result."""

    def __init__(self, tracing: Tracing = NO_TRACING, metrics: RegistryMetrics | None = None) -> None:
        self.tracing = tracing
        self.metrics = metrics

    @contextlib.contextmanager
    def publish(self, api: str, traceparent: str | None) -> Iterator[Span]:
        """The publish's span (continuing the caller's trace), and its result counted."""
        attributes = {"charter.api": api}
        # An exception escaping the span marks it as an error, with the exception's type and message.
        with self.tracing.span("registry.publish", parent=traceparent, attributes=attributes) as span:
            try:
                yield span
            except BaseException as exc:
                result = publish_result(exc)
                span.set("charter.publish.result", result)
                if self.metrics is not None:
                    self.metrics.publishes.labels(result).inc()
                raise

    def published(self, span: Span, version: str, *, created: bool) -> None:
        result = "published" if created else "unchanged"
        span.set("charter.api.version", version)
        span.set("charter.publish.result", result)
        if self.metrics is not None:
            self.metrics.publishes.labels(result).inc()

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[Span]:
        """A phase of the publish (validate, lint, diff, store): a child span."""
        with self.tracing.span(f"publish.{name}") as span:
            yield span

    @contextlib.contextmanager
    def measured(self, name: str) -> Iterator[None]:
        """The duration of the block in the histogram `name` (validate, diff), when it completes."""
        started = time.perf_counter()
        yield
        histogram: Histogram | None = getattr(self.metrics, name, None)
        if histogram is not None:
            histogram.observe(time.perf_counter() - started)


UNOBSERVED = PublishTelemetry()
