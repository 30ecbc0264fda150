"""Prometheus metrics of flow runs, registered in the gateway's metrics registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class FlowMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "charter_flow_runs", "Run transitions into a state", ("flow", "state"), registry=registry
        )
        self.step_latency = Histogram(
            "charter_flow_step_duration_seconds",
            "Time of one attempt of a step",
            ("flow", "step"),
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.retries = Counter(
            "charter_flow_step_retries",
            "Failed attempts followed by another",
            ("flow", "step"),
            registry=registry,
        )
        self.parked = Counter(
            "charter_flow_runs_parked",
            "Runs parked as failed, waiting for an operator",
            ("flow",),
            registry=registry,
        )
        self.late = Gauge(
            "charter_flow_runs_late",
            "Unfinished runs older than their flow's SLA (refreshed periodically)",
            ("flow",),
            registry=registry,
        )
