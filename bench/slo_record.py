"""Per-request cost of the service-level counts the gateway keeps (gateway.service_levels), beside the
usage count it already kept per request (gateway.observability.UsageCounter), side by side in one run.

    .venv/bin/python -m bench.slo_record
"""

from __future__ import annotations

import random
import time

from gateway.observability import UsageCounter
from gateway.service_levels import ServiceLevelCounter

N = 500_000


def main() -> None:
    rng = random.Random(7)
    latencies = [rng.lognormvariate(-4.5, 1.0) for _ in range(N)]
    statuses = [503 if i % 97 == 0 else 429 if i % 89 == 0 else 200 for i in range(N)]
    for round_ in range(3):
        usage, levels = UsageCounter(), ServiceLevelCounter()
        started = time.process_time()
        for _ in range(N):
            usage.record("projects", "1.1.0", "GET /projects/{projectId}", "billing-app")
        usage_cpu = time.process_time() - started
        started = time.process_time()
        for i in range(N):
            levels.record("projects", "1.1.0", statuses[i], latencies[i])
        levels_cpu = time.process_time() - started
        print(
            f"round {round_ + 1}: usage count {usage_cpu / N * 1e6:.2f} us/request, "
            f"service-level count {levels_cpu / N * 1e6:.2f} us/request, ratio {levels_cpu / usage_cpu:.2f}"
        )


if __name__ == "__main__":
    main()
