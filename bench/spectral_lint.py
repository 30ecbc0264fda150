"""Linting Stripe with public Spectral style guides: seconds, CPU seconds, steps and findings.

Run: .venv/bin/python bench/spectral_lint.py [--rounds 3]
Each round lints the Stripe document (parsed once, outside the timing) with each vendored style guide
and with `spectral:oas` (recommended), in one process, side by side so all meet the same machine load.
Steps are the budget's count (nodes visited, regular expressions run), the unit a publish is capped in.
The CLI does the same: `charter lint /work/shared/corpus/stripe/spec3-v110.json --ruleset
tests/contracts/spectral_rulesets/baloise/zalando.yml --format json`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench._corpus import corpus_dir

CORPUS = corpus_dir()
ROOT = Path(__file__).resolve().parents[1]
GUIDES = ROOT / "tests" / "contracts" / "spectral_rulesets"
RULESETS = {
    "zalando (baloise)": (GUIDES / "baloise" / "zalando.yml").read_bytes(),
    "adidas": (GUIDES / "adidas" / "adidas-spectral.yaml").read_bytes(),
    "spectral:oas": b"extends: spectral:oas\n",
}


def main() -> None:
    from contracts.lint import lint, load_ruleset
    from contracts.lint.spectral.paths import Budget
    from contracts.loading import load_document

    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--document", type=Path, default=CORPUS / "stripe" / "spec3-v110.json")
    args = parser.parse_args()
    document = load_document(args.document.read_bytes())
    rulesets = {name: load_ruleset(text) for name, text in RULESETS.items()}
    wall: dict[str, list[float]] = {name: [] for name in rulesets}
    cpu: dict[str, list[float]] = {name: [] for name in rulesets}
    counts: dict[str, tuple[int, int, int]] = {}
    for _ in range(args.rounds):
        for name, ruleset in rulesets.items():
            budget = Budget()
            started, started_cpu = time.perf_counter(), time.process_time()
            findings = lint(document, ruleset, budget)
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
            unchecked = sum("is not checked" in f.message for f in findings)
            counts[name] = (budget.steps, len(findings), unchecked)
    print(f"{args.document.name}, {args.rounds} rounds, median seconds (wall / CPU)")
    for name in rulesets:
        steps, count, unchecked = counts[name]
        print(
            f"  {name:20} {statistics.median(wall[name]):6.2f} s / {statistics.median(cpu[name]):6.2f} s"
            f"  steps {steps:,}  findings {count:,} ({unchecked} not checked)"
        )


if __name__ == "__main__":
    main()
