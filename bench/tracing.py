"""What tracing costs the gateway: req/s with tracing off, at 10 % and at 100 % sampling, side by side.

Run: .venv/bin/python -m bench.tracing [--duration 15] [--connections 64] [--warmup 2] [--rounds 1]
Needs `wrk` (`apt-get install -y wrk`). Each configuration is a fresh `charter serve` (uvicorn, one
worker, in-process throttle, demo contracts) loaded by wrk on `GET /gw/projects/v1/projects/p-1`
through JWT auth, the throttle, request validation and the Python handler adapter, as bench/gateway.py
(c) does. With tracing on, spans go over OTLP/HTTP to a receiver in this process that decodes them
(to count them) and keeps nothing. `--rounds N` repeats the three configurations N times, in turn,
and reports each configuration's median.

Then, in process: what one request's policy checks cost as three span events (what the gateway
records) against three child spans, on the same SDK and batch processor.

The machine is shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import shutil
import statistics
import sys
import time

from bench.gateway import GATEWAY_PATH, WrkResult, gateway_server, measure, prepare_gateway
from tests.otlp import Receiver, otlp_receiver

CONFIGURATIONS = (("off", None), ("10 %", 0.1), ("100 %", 1.0))


def run_configuration(ratio: float | None, sink: Receiver, args: argparse.Namespace) -> tuple[WrkResult, int]:
    env = (
        {} if ratio is None else {"CHARTER_OTEL_ENDPOINT": sink.url, "CHARTER_OTEL_SAMPLE_RATIO": str(ratio)}
    )
    with sink.lock:
        before = sink.exported
    with gateway_server(None, "uvicorn", extra_env=env) as server:
        headers = prepare_gateway(server)
        result = measure(f"tracing {ratio}", server, GATEWAY_PATH, headers, args)
    # The server exported what it still held when it stopped.
    with sink.lock:
        return result, sink.exported - before


def policy_checks(rounds: int, sink: Receiver) -> tuple[float, float]:
    """Microseconds per request span with three events, and with three child spans."""
    from gateway.tracing import TracingConfig, start_tracing

    tracing = start_tracing(TracingConfig(endpoint=sink.url))

    def with_events() -> None:
        span = tracing.start("GET projects getProject", kind="server")
        for name in ("charter.auth", "charter.throttle", "charter.validation"):
            span.event(name)
        span.end()

    def with_children() -> None:
        span = tracing.start("GET projects getProject", kind="server")
        for name in ("charter.auth", "charter.throttle", "charter.validation"):
            tracing.start(name, parent=span).end()
        span.end()

    timings: dict[str, list[float]] = {"events": [], "children": []}
    try:
        for _ in range(3):  # alternated, so that both see the same machine
            for name, body in (("events", with_events), ("children", with_children)):
                started = time.perf_counter()
                for _ in range(rounds):
                    body()
                timings[name].append((time.perf_counter() - started) / rounds * 1e6)
    finally:
        tracing.shutdown()
    return min(timings["events"]), min(timings["children"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per configuration")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (0: none)")
    parser.add_argument("--rounds", type=int, default=1, help="times the three configurations are run")
    parser.add_argument("--span-rounds", type=int, default=5000, help="spans per in-process timing")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    results: dict[str, list[tuple[WrkResult, int]]] = {name: [] for name, _ in CONFIGURATIONS}
    with otlp_receiver(keep=False) as sink:
        for _ in range(args.rounds):
            for name, ratio in CONFIGURATIONS:
                results[name].append(run_configuration(ratio, sink, args))
        events_us, children_us = policy_checks(args.span_rounds, sink)

    print(
        f"{datetime.date.today().isoformat()}: `charter serve` (uvicorn, one worker), in-process throttle; "
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency after {args.warmup} s "
        f"of warm-up; {args.rounds} round(s), medians"
    )
    print(
        "| tracing | req/s | p50 ms | p99 ms | CPU us/request | spans exported per request | req/s vs off |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    off = statistics.median(r.requests_per_second for r, _ in results["off"])
    for name, _ in CONFIGURATIONS:
        runs = results[name]
        rps = statistics.median(r.requests_per_second for r, _ in runs)
        # warm-up and readiness probes are requests too: the ratio is approximate above 0.
        exported = sum(count for _, count in runs) / max(sum(r.requests for r, _ in runs), 1)
        print(
            f"| {name} | {rps:,.0f} | {statistics.median(r.p50_ms for r, _ in runs):.2f} | "
            f"{statistics.median(r.p99_ms for r, _ in runs):.2f} | "
            f"{statistics.median(r.cpu_us_per_request for r, _ in runs):.0f} | {exported:.2f} | "
            f"{rps / off:.2f} |"
        )
    print(
        f"policy checks, in process: 3 span events {events_us:.1f} us per request span, "
        f"3 child spans {children_us:.1f} us (children / events: {children_us / events_us:.2f})"
    )


if __name__ == "__main__":
    main()
