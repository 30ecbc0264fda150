"""Diff speed and memory: Charter against Optic, side by side, on Stripe and on a synthetic pair.

Run: .venv/bin/python bench/diff.py [--rounds 3] [--optic /tmp/optic-bench] [--before DIR]
Each measurement is a fresh process under `/usr/bin/time -v` (wall time and peak RSS of the whole
process, interpreter start included); Charter's process also reports the seconds of parse + diff alone.
Optic (npm @useoptic/optic 1.0, installed from bench/optic/package.json into the directory given by
--optic: `cp bench/optic/package.json DIR && (cd DIR && npm install)`) runs once per pair: it takes minutes.
--before DIR runs the same measurements on the code of another checkout (`git archive REV | tar -x -C
DIR`), alternating with this one round by round so both meet the same machine load; each process also
reports the seconds to group the changes (where the code groups them) and to render them as text.
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

from bench._corpus import corpus_dir

CORPUS = corpus_dir()
ROOT = Path(__file__).resolve().parents[1]


def diff_once(base: Path, revision: Path) -> None:
    """Child mode: parse both files, diff them, group and render the changes; seconds and counts as JSON.

    The code measured is whichever `contracts` is first on the path (PYTHONPATH names a checkout).
    """
    import contracts.diff
    from contracts.diff import diff_documents
    from contracts.diff.render import as_text
    from contracts.loading import load_document

    started, cpu_started = time.perf_counter(), time.process_time()
    report = diff_documents(load_document(base.read_bytes()), load_document(revision.read_bytes()))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    group_changes = getattr(contracts.diff, "group_changes", None)
    group_seconds, groups = None, None
    if group_changes is not None:
        started = time.perf_counter()
        groups = len(group_changes(report.changes))
        group_seconds = time.perf_counter() - started
    started = time.perf_counter()
    text = as_text(report)
    render_seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "group_seconds": group_seconds,
                "render_seconds": render_seconds,
                "text_lines": text.count("\n"),
                "changes": len(report.changes),
                "groups": groups,
                "breaking": report.breaking,
            }
        )
    )


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


def charter_run(base: Path, revision: Path, code: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    run = timed([sys.executable, __file__, "--one", str(base), str(revision)], cwd=code, env=env)
    if run["code"] != 0:
        raise SystemExit(f"charter diff failed: {run['stderr']}")
    return run | json.loads(run["stdout"])


def summary(runs: list[dict]) -> dict:
    def median(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    return {
        "seconds": median("seconds"),
        "cpu_seconds": median("cpu_seconds"),
        "group_seconds": median("group_seconds"),
        "render_seconds": median("render_seconds"),
        "wall": median("wall"),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "changes": runs[0]["changes"],
        "groups": runs[0]["groups"],
        "text_lines": runs[0]["text_lines"],
    }


def charter(base: Path, revision: Path, rounds: int, before: Path | None = None) -> tuple[dict, dict | None]:
    """This checkout's figures, and `before`'s measured in alternation with them."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(charter_run(base, revision, ROOT))
        if before is not None:
            theirs.append(charter_run(base, revision, before))
    return summary(ours), (summary(theirs) if theirs else None)


def charter_row(label: str, tool: str, figures: dict) -> str:
    grouping = f"{figures['group_seconds']:.3f}" if figures["group_seconds"] is not None else "-"
    shown = f"{figures['groups']} groups of " if figures["groups"] is not None else ""
    return (
        f"{label:38} {tool:16} {figures['seconds']:12.2f} {figures['cpu_seconds']:6.2f} {grouping:>8}"
        f" {figures['render_seconds']:8.3f}"
        f" {figures['wall']:8.2f} {figures['rss_mib']:9.0f}"
        f"  {shown}{figures['changes']} changes, {figures['text_lines']} text lines"
    )


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
    parser.add_argument("--before", type=Path, default=None, help="a checkout of earlier code to compare")
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
    print(
        f"{'pair':38} {'tool':16} {'parse+diff s':>12} {'cpu s':>6} {'group s':>8} {'text s':>8}"
        f" {'wall s':>8} {'peak MiB':>9}  outcome"
    )
    for label, (base, revision) in pairs.items():
        ours, before = charter(base, revision, args.rounds, args.before)
        print(charter_row(label, "charter", ours))
        if before is not None:
            print(charter_row("", "charter (before)", before))
            keys = ("seconds", "cpu_seconds", "render_seconds", "wall", "rss_mib")
            ratio = {key: ours[key] / before[key] for key in keys}
            print(
                f"{'':38} {'after/before':16} {ratio['seconds']:12.2f} {ratio['cpu_seconds']:6.2f} {'':>8}"
                f" {ratio['render_seconds']:8.2f}"
                f" {ratio['wall']:8.2f} {ratio['rss_mib']:9.2f}"
            )
        if args.optic:
            theirs = optic(args.optic, base, revision)
            ratio_time = theirs["wall"] / ours["wall"]
            ratio_rss = theirs["rss_mib"] / ours["rss_mib"]
            print(
                f"{'':38} {'optic':16} {'':>12} {'':>6} {'':>8} {'':>8} {theirs['wall']:8.2f}"
                f" {theirs['rss_mib']:9.0f}"
                f"  {theirs['outcome']} (exit {theirs['code']}); optic/charter: "
                f"{ratio_time:.0f}x time, {ratio_rss:.1f}x memory"
            )


if __name__ == "__main__":
    main()
