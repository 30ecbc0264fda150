"""Where a gateway request's server CPU time goes, beside a bare litestar app's: both profiled under load.

Run: PYTHONPATH=$PWD .venv/bin/python -m bench.gateway_profile [--duration 10] [--rate 250]
     [--configs a,c] [--tree DIR ...] [--keep DIR]
Needs `wrk` and `py-spy` (`.venv/bin/pip install py-spy`; it reads the server's memory, so run as root
or with ptrace allowed). Starts the servers as bench/gateway.py does: (a) the bare litestar app under
uvicorn, (b) `charter serve` with the Redis throttle, (c) with the in-process throttle. Each is loaded
by wrk (64 keep-alive connections) while py-spy samples every thread without stopping the process
(`--nonblocking`), and the CPU time of each of the server's threads is read from /proc/PID/task.

A thread's CPU time per request is its /proc time over the requests wrk made. The main thread's (the
event loop's) is then shared among components in proportion to py-spy's samples of it that were on
the CPU: each sample goes to the innermost frame that names a component (the file, or a function of
it), so a library called from a component counts as that component (msgspec encoding an access line is
the access log's). What Python frames cannot show (the event loop's C code: epoll, socket reads and
writes; httptools' parser between its callbacks) is the "event loop (uvloop C)" row. gc runs inside
whatever allocated, so it is spread over the rows; CPython 3.11 has no cheap way to see it from outside.

`--tree DIR` (repeatable) profiles the gateway configurations of another source tree too (an old
commit: `git archive HEAD | tar -x -C DIR`), its servers importing Charter from DIR, interleaved with
this tree's so that both see the same load. Sampling is statistical: at 250 Hz for 10 s a row of
1 us/request is about 10 samples, so differences below 1-2 us are noise.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.gateway import (
    BARE_PATH,
    GATEWAY_PATH,
    REDIS_URL,
    Server,
    bare_server,
    gateway_server,
    prepare_gateway,
    run_wrk,
)

SOCKET_WRITES = "server: socket writes (send system calls)"
# (component, file fragment, function prefix or ""): the first rule matching a frame names it; frames
# are tried from the innermost outwards.
RULES: tuple[tuple[str, str, str], ...] = (
    ("throttle", "policies/throttle/", ""),
    ("auth: bearer token", "policies/auth/", ""),
    ("auth: bearer token", "joserfc/", ""),
    ("auth: bearer token", "cryptography/", ""),
    ("request validation", "gateway/validation.py", ""),
    ("request validation", "jsonschema", ""),
    ("adapter and handler", "gateway/adapters/", ""),
    ("adapter and handler", "registry/demo/", ""),
    ("access log", "gateway/observability.py", "AccessLog"),
    ("access log", "gateway/observability.py", "AccessRecord"),
    ("metrics: Prometheus, usage, SLO", "prometheus_client/", ""),
    ("metrics: Prometheus, usage, SLO", "gateway/service_levels.py", ""),
    ("metrics: Prometheus, usage, SLO", "gateway/plan.py", "OperationPlan.count"),
    ("metrics: Prometheus, usage, SLO", "gateway/observability.py", "UsageCounter"),
    ("trace id", "gateway/observability.py", "traceparent"),
    ("trace id", "random.py", ""),
    ("routing: version, path", "gateway/routing.py", ""),
    ("routing: version, path", "policies/versioning.py", ""),
    ("response: headers, body, send", "gateway/app.py", "_send"),
    ("response: headers, body, send", "gateway/app.py", "_problem"),
    ("policy chain glue (gateway/app.py)", "gateway/app.py", ""),
    ("policy chain glue (gateway/app.py)", "gateway/plan.py", ""),
    ("ASGI entry: GatewayFirst, BodyDeadline", "registry/api/gateway.py", ""),
    ("ASGI entry: GatewayFirst, BodyDeadline", "registry/http_limits.py", "BodyDeadline"),
    ("ASGI entry: GatewayFirst, BodyDeadline", "registry/http_limits.py", "_declares_no_body"),
    (SOCKET_WRITES, "registry/http_limits.py", "ResponseWriter"),
    ("server: uvicorn HTTP protocol", "registry/http_limits.py", ""),
    ("server: uvicorn HTTP protocol", "uvicorn/protocols/", ""),
    ("server: uvicorn proxy-headers middleware", "uvicorn/middleware/", ""),
    ("litestar", "litestar/", ""),
    ("background work on the event loop", "sqlalchemy/", ""),
    ("background work on the event loop", "aiosqlite/", ""),
    ("background work on the event loop", "dbos/", ""),
    ("background work on the event loop", "registry/", ""),
    ("background work on the event loop", "gateway/flows/", ""),
    ("event loop: asyncio Python", "asyncio/", ""),
)
LOOP_C = "event loop (uvloop C: epoll, sockets, parser)"


def _write_lines() -> re.Pattern[str]:
    """uvicorn's lines that write to the socket (uvloop sends at once: the time is the kernel's)."""
    import uvicorn.protocols.http.httptools_impl as protocol

    lines = Path(protocol.__file__).read_text().splitlines()
    numbers = "|".join(str(n) for n, line in enumerate(lines, 1) if "transport.write(" in line)
    return re.compile(rf"\(uvicorn/protocols/http/httptools_impl\.py:(?:{numbers})\)$")


_WRITES = _write_lines()
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*):\d+\)$")
_THREAD = re.compile(r"^thread \((?P<tid>\d+)\): (?P<name>.*)$")
_CONFIGS = {
    "a": "(a) bare litestar",
    "b": "(b) gateway, Redis throttle",
    "c": "(c) gateway, in-process",
}


@dataclass
class Profile:
    name: str
    requests: int
    requests_per_second: float
    p50_ms: float
    thread_cpu: dict[str, float]  # thread name: CPU seconds under load
    main_samples: collections.Counter[str] = field(default_factory=collections.Counter)
    unmatched: collections.Counter[str] = field(default_factory=collections.Counter)

    @property
    def total_us(self) -> float:
        return sum(self.thread_cpu.values()) / self.requests * 1e6

    def rows(self) -> dict[str, float]:
        """CPU microseconds per request by component (main thread) and by thread (the others)."""
        per_request = 1e6 / self.requests
        main = self.thread_cpu.get("MainThread", 0.0) * per_request
        sampled = sum(self.main_samples.values()) or 1
        rows = {component: main * count / sampled for component, count in self.main_samples.items()}
        for thread, seconds in self.thread_cpu.items():
            if thread != "MainThread":
                rows[f"thread: {thread}"] = rows.get(f"thread: {thread}", 0.0) + seconds * per_request
        return rows


def component(stack: list[str]) -> tuple[str, str | None]:
    """The component a main-thread sample counts for, and its innermost frame when no rule matched."""
    frames = [match for frame in stack if (match := _FRAME.match(frame))]
    if frames and frames[-1]["function"] in ("Runner.run", "run_until_complete", "asyncio_run"):
        return LOOP_C, None
    if stack and _WRITES.search(stack[-1]):
        return SOCKET_WRITES, None
    for frame in reversed(frames):
        file, function = frame["file"], frame["function"]
        for name, fragment, prefix in RULES:
            if fragment in file and function.startswith(prefix):
                return name, None
    return "other", stack[-1] if stack else "?"


def thread_name(name: str) -> str:
    """Threads of one kind under one name: `Thread-12 (f)` as `f`."""
    return re.sub(r"^Thread-\d+ \((.*)\)$", r"\1", name)


def read_samples(path: Path) -> tuple[dict[int, str], collections.Counter[str], collections.Counter[str]]:
    names: dict[int, str] = {}
    main: collections.Counter[str] = collections.Counter()
    unmatched: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text:
            continue
        head, *stack = stack_text.split(";")
        thread = _THREAD.match(head.removeprefix("process ").split(";")[-1])
        if thread is None:
            continue
        names[int(thread["tid"])] = thread_name(thread["name"])
        if thread["name"] == "MainThread":
            name, frame = component(stack)
            main[name] += int(count_text)
            if frame is not None:
                unmatched[frame] += int(count_text)
    return names, main, unmatched


def task_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of `pid`."""
    ticks = os.sysconf("SC_CLK_TCK")
    times: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            times[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return times


def profile(
    name: str, server: Server, path: str, headers: dict[str, str], args: argparse.Namespace, out: Path
) -> Profile:
    load = {"connections": args.connections, "threads": 1, "headers": headers}
    run_wrk(server.url + path, duration=args.warmup, **load)
    pid = server.process.pid
    before = task_cpu(pid)
    spy = subprocess.Popen(
        [
            *(args.py_spy, "record", "--nonblocking", "--threads", "-r", str(args.rate), "-f", "raw"),
            *("-d", str(args.duration), "-o", str(out), "-p", str(pid)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    result = run_wrk(server.url + path, duration=args.duration, **load)
    after = task_cpu(pid)
    _, spy_errors = spy.communicate(timeout=60)
    if not out.exists():
        raise RuntimeError(f"py-spy wrote no profile: {spy_errors.decode(errors='replace')[-2000:]}")
    if result.non_2xx:
        raise RuntimeError(f"{name}: {result.non_2xx} non-2xx answers\n{server.stderr_tail()}")
    names, main, unmatched = read_samples(out)
    names[pid] = "MainThread"
    thread_cpu: dict[str, float] = collections.defaultdict(float)
    for tid, seconds in after.items():
        spent = seconds - before.get(tid, 0.0)
        if spent > 0:
            thread_cpu[names.get(tid, "(never sampled)")] += spent
    return Profile(
        name, result.requests, result.requests_per_second, result.p50_ms, dict(thread_cpu), main, unmatched
    )


def gateway_profile(
    label: str, redis_url: str | None, tree: Path | None, args: argparse.Namespace, out: Path
) -> Profile:
    env = {"PYTHONPATH": str(tree)} if tree else None
    with gateway_server(redis_url, "uvicorn", extra_env=env) as server:
        headers = prepare_gateway(server)
        return profile(label, server, GATEWAY_PATH, headers, args, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of profiled load per configuration")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--configs", default="a,c", help="which of a, b, c (comma-separated)")
    parser.add_argument(
        "--tree", type=Path, action="append", default=[], help="another source tree's gateway too"
    )
    parser.add_argument("--redis-url", default=REDIS_URL)
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw profiles in this folder")
    parser.add_argument("--show-unmatched", type=int, default=0, help="print the N commonest unnamed frames")
    args = parser.parse_args()
    args.py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if args.py_spy is None or shutil.which("wrk") is None:
        sys.exit("needs py-spy (pip install py-spy) and wrk (apt-get install -y wrk)")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="charter-bench-profile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    profiles: list[Profile] = []
    try:
        for key in args.configs.split(","):
            name = _CONFIGS[key.strip()]
            if key.strip() == "a":
                with bare_server("uvicorn") as server:
                    profiles.append(profile(name, server, BARE_PATH, {}, args, workdir / "a.raw"))
                continue
            redis_url = args.redis_url if key.strip() == "b" else None
            for index, tree in enumerate([None, *args.tree]):
                label = name if tree is None else f"{name} [{tree}]"
                out = workdir / f"{key.strip()}{index}.raw"
                profiles.append(gateway_profile(label, redis_url, tree, args, out))
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(profiles, args)


def print_table(profiles: list[Profile], args: argparse.Namespace) -> None:
    load = os.getloadavg()
    print(
        f"CPU us per request by component; uvicorn, one worker, wrk -t1 -c{args.connections} "
        f"-d{args.duration}s, py-spy at {args.rate} Hz; load average after: "
        + " ".join(f"{value:.2f}" for value in load)
    )
    for index, profile in enumerate(profiles, 1):
        print(
            f"[{index}] {profile.name}: {profile.requests_per_second:,.0f} req/s, p50 {profile.p50_ms:.2f} ms"
        )
    rows = [profile.rows() for profile in profiles]
    order = sorted(
        {name for row in rows for name in row},
        key=lambda name: (name.startswith("thread:"), -max(row.get(name, 0.0) for row in rows)),
    )
    print("| component | " + " | ".join(f"[{index}]" for index in range(1, len(profiles) + 1)) + " |")
    print("| --- |" + " --- |" * len(profiles))
    for name in order:
        print(f"| {name} | " + " | ".join(f"{row.get(name, 0.0):.1f}" for row in rows) + " |")
    print("| total (all threads) | " + " | ".join(f"{profile.total_us:.1f}" for profile in profiles) + " |")
    for profile in profiles:
        for frame, count in profile.unmatched.most_common(args.show_unmatched):
            print(f"unnamed in {profile.name}: {count} samples: {frame}")


if __name__ == "__main__":
    main()
