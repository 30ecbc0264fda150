"""`charter diff` of the Stripe pair from a shell, fully validated: wall and CPU time of the whole
process, start-up included, and of `charter --help` (start-up alone).

Run: .venv/bin/python bench/cli_diff.py [--rounds 10] [--before DIR]
--before DIR measures the code of another checkout too (`git archive main | tar -x -C DIR`), run for
run alternating with this one so that both meet the same machine load. CPU time (user + system,
from the kernel's accounting of the child) varies less than wall time on a loaded machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._corpus import corpus_dir

CORPUS = corpus_dir()
ROOT = Path(__file__).resolve().parents[1]


def run(code: Path, argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `python -m registry.cli ARGV` with `code` first on the path (`-m`
    puts the working directory first: it is `code` too)."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", *argv], env=env, cwd=code, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{code}: charter {' '.join(argv)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--before", type=Path)
    args = parser.parse_args()
    stripe = CORPUS / "stripe"
    commands = {
        "diff": [
            "diff",
            "--validity",
            "full",
            str(stripe / "spec3-v110.json"),
            str(stripe / "spec3-v120.json"),
        ],
        "--help": ["--help"],
    }
    codes = {"this": ROOT} | ({"before": args.before} if args.before else {})
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            for label, code in codes.items():
                results.setdefault((label, name), []).append(run(code, argv))
    print(f"{args.rounds} runs each, medians (min):")
    for (label, name), runs in sorted(results.items()):
        walls, cpus = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"  {label:6} charter {name:6}  wall {statistics.median(walls):.3f} s ({min(walls):.3f})"
            f"  cpu {statistics.median(cpus):.3f} s ({min(cpus):.3f})"
        )


if __name__ == "__main__":
    main()
