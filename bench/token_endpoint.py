"""The token endpoint under guessing: /health latency while wrong secrets are checked, and how long a
wrong secret takes to be refused for a registered, a configured and an unknown client id.

    PYTHONPATH=$PWD .venv/bin/python bench/token_endpoint.py [--guessers 8] [--seconds 5]

Prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import time

import httpx

from bench._server import ADMIN, running_server

FORM = {"grant_type": "client_credentials"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def register(client: httpx.AsyncClient) -> None:
    token = (await client.post("/oauth/token", data=FORM, headers=basic(*ADMIN))).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    await client.post("/api/v1/teams", json={"name": "bench", "members": []}, headers=admin)
    created = await client.post(
        "/api/v1/clients", json={"client_id": "bench-app", "name": "Bench", "team": "bench"}, headers=admin
    )
    created.raise_for_status()


async def health_latencies(client: httpx.AsyncClient, seconds: float) -> list[float]:
    latencies = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        started = time.perf_counter()
        (await client.get("/health")).raise_for_status()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


async def guess_until(client: httpx.AsyncClient, stop: asyncio.Event) -> int:
    count = 0
    while not stop.is_set():
        await client.post("/oauth/token", data=FORM, headers=basic("bench-app", f"guess-{count}"))
        count += 1
    return count


async def refusal_times(
    client: httpx.AsyncClient, client_ids: list[str], rounds: int
) -> dict[str, list[float]]:
    """Interleaved, so that the machine's drift falls on every client id alike."""
    times: dict[str, list[float]] = {client_id: [] for client_id in client_ids}
    for n in range(rounds):
        for client_id in client_ids:
            started = time.perf_counter()
            response = await client.post("/oauth/token", data=FORM, headers=basic(client_id, f"guess-{n}"))
            times[client_id].append(time.perf_counter() - started)
            assert response.status_code == 401, response.text
    return times


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(values) * 1000:7.1f} ms  p95 {p95 * 1000:7.1f} ms  (n={len(values)})"


async def main(guessers: int, seconds: float) -> None:
    env = {"CHARTER_TOKEN_FAILURES_PER_SOURCE": "100000", "CHARTER_TOKEN_FAILURES_PER_CLIENT": "100000"}
    with running_server(**env) as (url, _):
        limits = httpx.Limits(max_connections=guessers + 4)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            await register(client)
            print(f"/health idle:                       {ms(await health_latencies(client, seconds))}")
            stop = asyncio.Event()
            guessing = [asyncio.create_task(guess_until(client, stop)) for _ in range(guessers)]
            await asyncio.sleep(0.5)
            during = await health_latencies(client, seconds)
            stop.set()
            guesses = sum(await asyncio.gather(*guessing))
            print(f"/health, {guessers} guessers in parallel:   {ms(during)}")
            print(f"wrong secrets answered: {guesses} in {seconds + 0.5:.1f} s")
            refusals = await refusal_times(client, ["bench-app", ADMIN[0], "no-such-client"], 50)
            for client_id, times in refusals.items():
                print(f"wrong secret for {client_id:>15}: {ms(times)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guessers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.guessers, arguments.seconds))
