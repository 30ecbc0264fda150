"""Diff speed and memory: Charter against Optic, side by side, on Stripe and on a synthetic pair.

Run: .venv/bin/python bench/diff.py [--rounds 3] [--optic /tmp/optic-bench]
Each measurement is a fresh process under `/usr/bin/time -v` (wall time and peak RSS of the whole
process, interpreter start included); Charter's process also reports the seconds of parse + diff alone.
Optic (npm @useoptic/optic 1.0, installed from bench/optic/package.json into the directory given by
--optic: `cp bench/optic/package.json DIR && (cd DIR && npm install)`) runs once per pair: it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"
CORPUS = Path(os.environ.get("CHARTER_CORPUS", _SHARED))
ROOT = Path(__file__).resolve().parents[1]


def diff_once(base: Path, revision: Path) -> None:
    """Child mode: parse both files, diff them, print seconds and counts as JSON."""
    from contracts.diff import diff_documents
    from contracts.loading import load_document

    started = time.perf_counter()
    report = diff_documents(load_document(base.read_bytes()), load_document(revision.read_bytes()))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "changes": len(report.changes), "breaking": report.breaking}))


def timed(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> dict:
    """Run under /usr/bin/time -v: wall seconds, peak RSS in MiB, exit code, output."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        result = subprocess.run(
            ["/usr/bin/time", "-v", "-o", report.name, *command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        text = Path(report.name).read_text()
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    return {
        "wall": _seconds(wall.group(1)) if wall else float("nan"),
        "rss_mib": int(rss.group(1)) / 1024 if rss else float("nan"),
        "code": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
    }


def _seconds(clock: str) -> float:
    total = 0.0
    for part in clock.split(":"):
        total = total * 60 + float(part)
    return total


def charter(base: Path, revision: Path, rounds: int) -> dict:
    runs = []
    for _ in range(rounds):
        run = timed([sys.executable, __file__, "--one", str(base), str(revision)], cwd=ROOT)
        if run["code"] != 0:
            raise SystemExit(f"charter diff failed: {run['stderr']}")
        run |= json.loads(run["stdout"])
        runs.append(run)
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "wall": statistics.median(r["wall"] for r in runs),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "changes": runs[0]["changes"],
    }


def optic(directory: Path, base: Path, revision: Path) -> dict:
    env = {**os.environ, "OPTIC_TELEMETRY_LEVEL": "off"}
    run = timed(["npx", "optic", "diff", str(base), str(revision), "--check"], cwd=directory, env=env)
    # Exit 1 means failed checks or a crash alike: the output tells which.
    output = (run["stdout"] + run["stderr"]).strip().splitlines()
    run["outcome"] = "crashed: " + output[-1] if any("exceeded" in line for line in output) else "finished"
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--optic", type=Path, default=None, help="directory with Optic installed")
    parser.add_argument("--one", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        diff_once(*args.one)
        return

    sys.path.insert(0, str(ROOT))
    from bench.synthetic import write_pair

    workdir = Path(tempfile.mkdtemp(prefix="charter-diff-bench-"))
    synthetic = write_pair(workdir, paths=2000)
    pairs = {
        "stripe v110 -> v120 (3.9 + 4.1 MB)": (
            CORPUS / "stripe" / "spec3-v110.json",
            CORPUS / "stripe" / "spec3-v120.json",
        ),
        "synthetic 2,000 paths (7.4 + 7.4 MB)": synthetic,
    }
    print(f"{'pair':38} {'tool':7} {'parse+diff s':>12} {'wall s':>8} {'peak MiB':>9}  outcome")
    for label, (base, revision) in pairs.items():
        ours = charter(base, revision, args.rounds)
        print(
            f"{label:38} {'charter':7} {ours['seconds']:12.2f} {ours['wall']:8.2f} {ours['rss_mib']:9.0f}"
            f"  {ours['changes']} changes"
        )
        if args.optic:
            theirs = optic(args.optic, base, revision)
            ratio_time = theirs["wall"] / ours["wall"]
            ratio_rss = theirs["rss_mib"] / ours["rss_mib"]
            print(
                f"{'':38} {'optic':7} {'':>12} {theirs['wall']:8.2f} {theirs['rss_mib']:9.0f}"
                f"  {theirs['outcome']} (exit {theirs['code']}); optic/charter: "
                f"{ratio_time:.0f}x time, {ratio_rss:.1f}x memory"
            )


if __name__ == "__main__":
    main()
