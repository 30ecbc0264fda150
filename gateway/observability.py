"""Trace context (W3C traceparent), one JSON access-log line per request, Prometheus metrics."""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import re
from collections.abc import Iterator
from typing import BinaryIO

import msgspec
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

log = logging.getLogger("charter.gateway")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_encoder = msgspec.json.Encoder()


def traceparent(incoming: str | None) -> str:
    """This hop's traceparent: the caller's trace id kept (a new one if absent or malformed), a new span.

    Ids need to be unique, not secret (W3C Trace Context): `secrets` reads the kernel's random source,
    a system call per id (~5 us a request). `random`'s shared generator is seeded from that source
    once, and again in every forked worker; an all-zero (invalid) id has a chance of 2^-64.
    """
    match = _TRACEPARENT.match(incoming) if incoming else None
    if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
        trace_id, flags = match.group(1), match.group(3)
        return f"00-{trace_id}-{random.getrandbits(64).to_bytes(8).hex()}-{flags}"
    # A new trace's id and its span's drawn at once; bytes' hex() is twice as fast as a format spec.
    ids = random.getrandbits(192).to_bytes(24).hex()
    return f"00-{ids[:32]}-{ids[32:]}-01"


class AccessRecord(msgspec.Struct):
    api: str | None
    version: str | None
    operation: str | None
    consumer: str | None
    method: str
    path: str
    status: int
    latency_ms: float
    throttled: bool
    trace: str


class AccessLog:
    """One JSON line per request, written in batches.

    Going through `logging` cost about 60 us a request under load (a LogRecord, a queue, a formatter
    thread fighting for the GIL): a third of the gateway's budget. Lines are buffered here and
    written together every `flush_seconds` or every `batch` lines, by whoever runs `run()`.
    """

    def __init__(self, stream: BinaryIO | None, *, flush_seconds: float = 0.2, batch: int = 512) -> None:
        self.stream = stream
        # Encoded in place at the end of one buffer: half the cost of a bytes object per line, joined.
        self._buffer = bytearray()
        self._lines = 0
        self._flush_seconds = flush_seconds
        self._batch = batch

    def write(self, record: AccessRecord) -> None:
        if self.stream is None:
            return
        buffer = self._buffer
        _encoder.encode_into(record, buffer, -1)
        buffer += b"\n"
        self._lines += 1
        if self._lines >= self._batch:
            self.flush()

    def flush(self) -> None:
        if not self._lines or self.stream is None:
            return
        buffer, lines = self._buffer, self._lines
        self._buffer, self._lines = bytearray(), 0
        try:
            self.stream.write(buffer)
            self.stream.flush()
        except (OSError, ValueError):
            log.warning("could not write %d access-log lines", lines)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            self.flush()


LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SERVED, REFUSED = "served", "refused"


class RequestSeries:
    """One operation's answers: a count per status, and a latency histogram per outcome (`served`: the
    adapter's answer or a gateway error; `refused`: a 4xx the gateway's policies gave, a 429 among them,
    which says nothing of how fast the API is and so stays out of its latency objective).

    Plain integers, no lock: only the event loop writes, and the exposition reads a copy. A
    prometheus_client Counter and Histogram took a lock for each increment and looked the bucket up
    linearly, about 5 us of every request (bench/gateway_asgi.py).
    """

    __slots__ = ("buckets", "statuses", "sums")

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.buckets = {SERVED: [0] * (len(LATENCY_BUCKETS) + 1), REFUSED: [0] * (len(LATENCY_BUCKETS) + 1)}
        self.sums = {SERVED: 0.0, REFUSED: 0.0}

    def record(self, status: int, seconds: float, outcome: str) -> None:
        statuses = self.statuses
        statuses[status] = statuses.get(status, 0) + 1
        # bisect_left: a latency equal to a bound is counted in that bound's bucket (Prometheus' `le`).
        self.buckets[outcome][bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.sums[outcome] += seconds


class RequestMetrics:
    """`charter_gateway_requests_total{api, version, operation, status}` and
    `charter_gateway_request_duration_seconds{api, version, operation, outcome}`, from the series the
    gateway counts in (a collector: registered once, read at each scrape)."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str, str], RequestSeries] = {}

    def series(self, api: str, version: str, operation: str) -> RequestSeries:
        """The series of an operation; the same one after a reload, so counts never go back."""
        key = (api, version, operation)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = RequestSeries()
        return found

    def collect(self) -> Iterator[Metric]:
        labels = ["api", "version", "operation"]
        requests = CounterMetricFamily(
            "charter_gateway_requests", "Requests through the gateway", labels=[*labels, "status"]
        )
        latency = HistogramMetricFamily(
            "charter_gateway_request_duration_seconds",
            "Time from request to response start; outcome=refused: a 4xx of the gateway's policies",
            labels=[*labels, "outcome"],
        )
        bounds = [*(repr(float(bound)) for bound in LATENCY_BUCKETS), "+Inf"]
        for key, series in list(self._series.items()):
            for status, count in list(series.statuses.items()):
                requests.add_metric([*key, str(status)], count)
            for outcome in (SERVED, REFUSED):
                counts = list(series.buckets[outcome])
                if not any(counts):
                    continue
                cumulative, running = [], 0
                for bound, count in zip(bounds, counts, strict=True):
                    running += count
                    cumulative.append((bound, running))
                latency.add_metric([*key, outcome], cumulative, series.sums[outcome])
        yield requests
        yield latency

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no early description: the registry then does not collect at registration


class GatewayMetrics:
    """The gateway's Prometheus metrics, in a registry of their own (the app exposes it at /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = RequestMetrics()
        self.registry.register(self.requests)
        self.throttled = Counter(
            "charter_gateway_throttled",
            "Requests over their SLA quota",
            ("api", "shadow"),
            registry=self.registry,
        )
        self.rejected = Counter(
            "charter_gateway_rejected",
            "Requests refused before the adapter",
            ("api", "reason"),
            registry=self.registry,
        )
        self.response_violations = Counter(
            "charter_gateway_response_violations",
            "Responses outside their contract (response validation in shadow mode)",
            ("api", "operation"),
            registry=self.registry,
        )
        self.degraded = Counter(
            "charter_gateway_throttle_degraded",
            "Decisions let through because the throttle store was unreachable (fail open)",
            ("api",),
            registry=self.registry,
        )


class UsageCounter:
    """Which consumer called which operation of which version, and how often: the registry drains
    it now and then, so usage is known even for consumers that never registered."""

    def __init__(self) -> None:
        self._calls: dict[tuple[str, str, str, str], int] = {}

    def record(self, api: str, version: str, operation: str, consumer: str) -> None:
        key = (api, version, operation, consumer)
        self._calls[key] = self._calls.get(key, 0) + 1

    def drain(self) -> dict[tuple[str, str, str, str], int]:
        calls, self._calls = self._calls, {}
        return calls
