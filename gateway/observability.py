"""Trace context (W3C traceparent), one JSON access-log line per request, Prometheus metrics."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from typing import BinaryIO

import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram

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
    else:
        trace_id, flags = f"{random.getrandbits(128):032x}", "01"
    return f"00-{trace_id}-{random.getrandbits(64):016x}-{flags}"


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
        self._lines: list[bytes] = []
        self._flush_seconds = flush_seconds
        self._batch = batch

    def write(self, record: AccessRecord) -> None:
        if self.stream is None:
            return
        self._lines.append(_encoder.encode(record) + b"\n")
        if len(self._lines) >= self._batch:
            self.flush()

    def flush(self) -> None:
        if not self._lines or self.stream is None:
            return
        lines, self._lines = self._lines, []
        try:
            self.stream.write(b"".join(lines))
            self.stream.flush()
        except (OSError, ValueError):
            log.warning("could not write %d access-log lines", len(lines))

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            self.flush()


class GatewayMetrics:
    """The gateway's Prometheus metrics, in a registry of their own (the app exposes it at /metrics)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ("api", "version", "operation")
        self.requests = Counter(
            "charter_gateway_requests",
            "Requests through the gateway",
            (*labels, "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "charter_gateway_request_duration_seconds",
            "Time from request to response start",
            labels,
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
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
