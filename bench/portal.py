"""Portal pages with 10,000 APIs stored: the catalog and search pages rendered on the server, timed
over HTTP against a real server on loopback.

Run: .venv/bin/python bench/portal.py [--apis 10000] [--requests 500] [--database-url URL]
The catalog is written straight into a fresh database by bench/search.py's seeding helper; each page
is then fetched one request at a time (client-side latency, the whole HTML page read).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench._server import ADMIN, free_port, token
from bench.search import DOMAINS, LAYERS, WORDS, seed


@contextlib.contextmanager
def logged_server(database_url: str, log: Path) -> Iterator[str]:
    """`charter serve` with its output kept in `log`, so that a failed page can be explained."""
    port = free_port()
    environ = {
        **os.environ,
        "CHARTER_DATABASE_URL": database_url,
        "CHARTER_DEMO": "0",
        "CHARTER_ACCESS_LOG": "0",
        "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
        "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry.cli", "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"charter serve did not start: see {log}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def pages(n: int) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(13)
    return {
        "catalog (first page)": [{} for _ in range(n)],
        "catalog (page 2-400)": [{"page": str(rng.randint(2, 400))} for _ in range(n)],
        "search one word": [{"q": rng.choice(WORDS)} for _ in range(n)],
        "search two words": [{"q": " ".join(rng.sample(WORDS, 2))} for _ in range(n)],
        "search + facets": [
            {"q": rng.choice(WORDS)[:4], "domain": rng.choice(DOMAINS), "layer": rng.choice(LAYERS)}
            for _ in range(n)
        ],
        "facets only": [{"tag": rng.choice(WORDS), "kind": "openapi"} for _ in range(n)],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apis", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500, help="per page shape")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'portal.db'}"
    started = time.perf_counter()
    asyncio.run(seed(url, args.apis))
    print(f"seeded {args.apis} APIs in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})")
    log = Path(tempfile.mkdtemp(prefix="charter-bench-portal-")) / "server.log"
    failures = 0
    with logged_server(url, log) as base:
        headers = {"Authorization": f"Bearer {token(base)}", "Accept": "text/html"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for params in pages(20)["search one word"] + pages(20)["catalog (page 2-400)"]:  # warm-up
                http.get("/", params=params).raise_for_status()
            everything: list[float] = []
            for shape, requests in pages(args.requests).items():
                latencies = []
                size = 0
                for params in requests:
                    begin = time.perf_counter()
                    response = http.get("/", params=params)
                    latencies.append((time.perf_counter() - begin) * 1000)
                    if response.status_code != 200:
                        failures += 1
                        print(f"  ! {response.status_code} for {params}")
                    size = len(response.content)
                latencies.sort()
                everything += latencies
                print(
                    f"  {shape:22} p50 {statistics.median(latencies):5.1f} ms  p99 {_p99(latencies):5.1f} ms"
                    f"  max {latencies[-1]:6.1f} ms  ({size // 1024} KiB)"
                )
            everything.sort()
            print(
                f"all {len(everything)} pages: p50 {statistics.median(everything):.1f} ms, "
                f"p99 {_p99(everything):.1f} ms (target p99 < 50 ms)"
            )
    if failures:
        print(f"{failures} pages failed; the server's log: {log}")


def _p99(sorted_values: list[float]) -> float:
    return sorted_values[max(0, int(len(sorted_values) * 0.99) - 1)]


if __name__ == "__main__":
    main()
