"""Gateway throughput: a bare litestar app against the full policy chain, each on a real server.

Run: .venv/bin/python bench/gateway.py [--duration 20] [--connections 64] [--threads 1] [--warmup 2]
     [--server uvicorn|granian|both] [--without-access-log]
Needs `wrk` (`apt-get install -y wrk`) and, for (b), Redis at 127.0.0.1:6379. Three configurations,
one after the other, each a fresh server process (uvicorn or granian, one worker) on loopback, loaded
by wrk with keep-alive connections:
  (a) bare:    a litestar app returning the same JSON body as the demo handler for project p-1;
  (b) redis:   `charter serve` with the demo contracts, `GET /gw/projects/v1/projects/p-1` through
               JWT auth (scope projects:read), the Redis throttle, request validation and the Python
               handler adapter;
  (c) memory:  the same with the in-process throttle (no CHARTER_REDIS_URL).
  (d) with --without-access-log: (c) without the access log (it is on by default).
The API's SLA is raised first so that the throttle is checked on every request but never refuses.
Besides wrk's figures, the server's CPU time per request (user + system, its processes together): on a
shared machine it moves less than req/s, which depend on what else gets the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis
from litestar import Litestar, get

from bench._server import ADMIN, free_port, token

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ("bench", "bench-secret")
GATEWAY_PATH = "/gw/projects/v1/projects/p-1"
BARE_PATH = "/projects/p-1"
REDIS_URL = "redis://127.0.0.1:6379/0"
BENCH_SLA = {
    "tier": "bench",
    "rate_limit": {"requests": 1_000_000_000, "per_seconds": 1, "burst": 1_000_000_000},
}

# (a): the same body as registry/demo/handlers.py serves for p-1, looked up the same way.
_PROJECTS: dict[str, dict[str, Any]] = {
    "p-1": {"id": "p-1", "name": "ERP rollout", "client": "acme", "status": "active", "budgetHours": 800},
}


@get("/projects/{project_id:str}", sync_to_thread=False)
def _bare_project(project_id: str) -> dict[str, Any]:
    return _PROJECTS[project_id]


bare_app = Litestar(route_handlers=[_bare_project], openapi_config=None)


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: str | None
    raw: str
    cpu_us_per_request: float = 0.0
    # Gateway requests per EVALSHA that Redis served meanwhile (Redis configurations only): how many
    # decisions one script call carried. Other clients of the same Redis make it a lower bound.
    requests_per_redis_call: float | None = None


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    stderr: Path

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr.read_text(errors="replace").splitlines()[-lines:])


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(output: str) -> WrkResult:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no {percent}% line in wrk's output:\n{output}")
        return _ms(match.group(1), match.group(2))

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    total = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    if rps is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors:.*", output)
    return WrkResult(
        requests_per_second=float(rps.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=socket_errors.group(0).strip() if socket_errors else None,
        raw=output,
    )


def run_wrk(url: str, *, duration: int, connections: int, threads: int, headers: dict[str, str]) -> WrkResult:
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    completed = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr or completed.stdout}")
    return parse_wrk(completed.stdout)


@contextlib.contextmanager
def serve(command: list[str], env: dict[str, str], ready_path: str) -> Iterator[Server]:
    """A server process on a free loopback port, its stderr kept in a file; `{port}` in the command and
    `{workdir}` (a temporary directory, removed afterwards) in the environment are filled in."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="charter-bench-gw-"))
    stderr_path = workdir / "stderr.log"
    url = f"http://127.0.0.1:{port}"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [part.replace("{port}", str(port)) for part in command],
            cwd=ROOT,
            env={**os.environ, **{k: v.replace("{workdir}", str(workdir)) for k, v in env.items()}},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    server = Server(url, process, stderr_path)
    try:
        deadline = time.monotonic() + 180  # the demo loads slowly on a busy machine
        while True:
            try:
                if httpx.get(url + ready_path, timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {command}\n{server.stderr_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` and its descendants (granian runs its worker apart)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    family, grown = {pid}, True
    while grown:
        children = {child for child, parent in parents.items() if parent in family} - family
        family |= children
        grown = bool(children)
    return sum(times.get(member, 0.0) for member in family)


GRANIAN = ["--interface", "asgi", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1", "--no-ws"]


def bare_server(kind: str) -> contextlib.AbstractContextManager[Server]:
    if kind == "granian":
        return serve([_script("granian"), *GRANIAN, "bench.gateway:bare_app"], {}, BARE_PATH)
    command = [sys.executable, "-m", "uvicorn", "bench.gateway:bare_app", "--host", "127.0.0.1"]
    command += ["--port", "{port}", "--no-access-log", "--workers", "1"]
    return serve(command, {}, BARE_PATH)


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def gateway_server(
    redis_url: str | None, kind: str, *, access_log: bool = True, extra_env: dict[str, str] | None = None
) -> contextlib.AbstractContextManager[Server]:
    env = {
        "CHARTER_DATABASE_URL": "sqlite+aiosqlite:///{workdir}/b.db",
        "CHARTER_DEMO": "1",
        "CHARTER_ADMIN_CLIENT_ID": ADMIN[0],
        "CHARTER_ADMIN_CLIENT_SECRET": ADMIN[1],
        "CHARTER_CLIENTS": json.dumps(
            [{"client_id": CLIENT[0], "client_secret": CLIENT[1], "scopes": ["projects:read"]}]
        ),
        "CHARTER_REDIS_URL": redis_url or "",
        "CHARTER_ACCESS_LOG": "1" if access_log else "0",
        **(extra_env or {}),
    }
    if kind == "granian":
        command = [_script("granian"), *GRANIAN, "--factory", "registry.cli:configured_app"]
        return serve(command, env, "/health")
    return serve([_script("charter"), "serve", "--port", "{port}"], env, "/health")


def prepare_gateway(server: Server) -> dict[str, str]:
    """Raise the projects SLA out of the way, wait for the gateway to reload it; the client's headers."""
    admin = {"Authorization": f"Bearer {token(server.url)}"}
    response = httpx.put(f"{server.url}/api/v1/apis/projects/sla", json=BENCH_SLA, headers=admin, timeout=30)
    if response.status_code != 200:
        raise RuntimeError(f"PUT sla: {response.status_code} {response.text}")
    issued = httpx.post(
        f"{server.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=CLIENT, timeout=30
    )
    issued.raise_for_status()
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    deadline = time.monotonic() + 15
    while True:
        probe = httpx.get(server.url + GATEWAY_PATH, headers=headers, timeout=10)
        policy = probe.headers.get("ratelimit-policy", "")
        if probe.status_code == 200 and "bench" in policy:
            return headers
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"gateway not ready: {probe.status_code} ratelimit-policy={policy!r} {probe.text[:500]}\n"
                + server.stderr_tail()
            )
        time.sleep(0.25)


def script_calls(redis_url: str) -> int:
    """Script calls (EVALSHA and EVAL) the Redis server has served since it started."""
    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))


def measure(
    name: str,
    server: Server,
    path: str,
    headers: dict[str, str],
    args: argparse.Namespace,
    redis_url: str | None = None,
) -> WrkResult:
    probe = httpx.get(server.url + path, headers=headers, timeout=10)
    if probe.status_code != 200:
        raise RuntimeError(f"{name}: {probe.status_code} {probe.text[:500]}\n{server.stderr_tail()}")
    print(f"{name}: {probe.text}", file=sys.stderr)
    load = {"connections": args.connections, "threads": args.threads, "headers": headers}
    if args.warmup:
        run_wrk(server.url + path, duration=args.warmup, **load)
    calls_before = script_calls(redis_url) if redis_url else 0
    cpu_before = cpu_seconds(server.process.pid)
    result = run_wrk(server.url + path, duration=args.duration, **load)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    per_call = None
    if redis_url:
        per_call = result.requests / max(script_calls(redis_url) - calls_before, 1)
    result = dataclasses.replace(
        result, cpu_us_per_request=cpu / max(result.requests, 1) * 1e6, requests_per_redis_call=per_call
    )
    if result.non_2xx:
        after = httpx.get(server.url + path, headers=headers, timeout=10)
        raise RuntimeError(
            f"{name}: wrk saw {result.non_2xx} non-2xx responses of {result.requests}\n{result.raw}\n"
            f"a request now: {after.status_code} {after.text[:500]}\nserver stderr:\n{server.stderr_tail()}"
        )
    if result.socket_errors:
        print(f"{name}: {result.socket_errors}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds of load per configuration")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of unmeasured load first (0: none)")
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--server", choices=("uvicorn", "granian", "both"), default="uvicorn")
    parser.add_argument("--without-access-log", action="store_true", help="add (d): (c) without access log")
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # building bare_app set the root logger to INFO
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    kinds = ("uvicorn", "granian") if args.server == "both" else (args.server,)
    tables = [(kind, run_configurations(kind, args)) for kind in kinds]
    today = datetime.date.today().isoformat()
    print(
        f"{today}: one worker, on loopback; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s --latency (after {args.warmup} s of warm-up)"
    )
    first_bare = tables[0][1][0][1]
    print(
        "| server | config | req/s | p50 ms | p99 ms | CPU us/request | throughput vs (a) | p50 added ms "
        "| p99 vs (a) | requests per Redis call |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for kind, results in tables:
        base = results[0][1]
        for name, result in results:
            per_call = result.requests_per_redis_call
            print(
                f"| {kind} | {name} | {result.requests_per_second:,.0f} | {result.p50_ms:.2f} | "
                f"{result.p99_ms:.2f} | {result.cpu_us_per_request:.0f} | "
                f"{result.requests_per_second / base.requests_per_second:.2f} | "
                f"{result.p50_ms - base.p50_ms:+.2f} | {result.p99_ms / base.p99_ms:.2f} | "
                f"{'' if per_call is None else f'{per_call:.1f}'} |"
            )
        if kind != tables[0][0]:
            print(
                f"| {kind} | (a) against {tables[0][0]}'s (a) | | | | | "
                f"{base.requests_per_second / first_bare.requests_per_second:.2f} | | | |"
            )
    for kind, results in tables:
        base = results[0][1]
        by_name = dict(results)
        memory, redis = by_name["(c) gateway, in-process"], by_name["(b) gateway, Redis throttle"]
        rps = base.requests_per_second
        memory_met = memory.requests_per_second >= 0.8 * rps and memory.p50_ms - base.p50_ms <= 0.5
        redis_met = redis.requests_per_second >= 0.7 * rps and redis.p99_ms <= 2 * base.p99_ms
        print(
            f"{kind}: in-process target (>= 0.80 of (a)'s req/s, <= +0.5 ms at p50): "
            f"{'met' if memory_met else 'NOT met'}; Redis target (>= 0.70 of (a)'s req/s, p99 <= 2x (a)'s): "
            f"{'met' if redis_met else 'NOT met'}"
        )


def run_configurations(kind: str, args: argparse.Namespace) -> list[tuple[str, WrkResult]]:
    results: list[tuple[str, WrkResult]] = []
    with bare_server(kind) as server:
        results.append(("(a) bare litestar", measure(f"{kind} bare", server, BARE_PATH, {}, args)))
    configurations = [
        ("(b) gateway, Redis throttle", args.redis_url, True),
        ("(c) gateway, in-process", None, True),
    ]
    if args.without_access_log:
        configurations.append(("(d) gateway, in-process, no access log", None, False))
    for name, redis_url, access_log in configurations:
        with gateway_server(redis_url, kind, access_log=access_log) as server:
            headers = prepare_gateway(server)
            result = measure(f"{kind} {name}", server, GATEWAY_PATH, headers, args, redis_url)
            results.append((name, result))
    return results


if __name__ == "__main__":
    main()
