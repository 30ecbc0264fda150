"""The `$ref` bomb: seconds per stage as the reference depth grows, for one document and for zip bundles.

Run: .venv/bin/python -m bench.ref_bomb [--depths 10 14 18] [--timeout 120]
`S0 .. S{depth}`, each with two properties that both name the next schema, used by one operation's
request and response (tests/contracts/ref_bombs.py builds them). Each stage runs in a fresh child
process, killed after --timeout seconds (printed as `>N`): analyse (parse, resolve a bundle, validate,
index, as a publish does), diff against the same contract with another leaf type (as publishing the
successor, /compatibility and /impact do), lint with the recommended ruleset, and the gateway's first
request (compile the operation's validators, validate a response).
It only calls functions that exist before and after references were bounded: to time an older
checkout, copy this file and tests/contracts/ref_bombs.py into it and run it there.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ("document", "bundle", "bundle-file-per-schema")
STAGES = ("analyse", "diff", "lint", "gateway")


def _analysed(shape: str, depth: int, leaf: str):
    from contracts.submission import analyze_bundle, analyze_document
    from tests.contracts import ref_bombs as bombs

    if shape == "document":
        document = json.dumps(bombs.bomb_document(depth, leaf=leaf)).encode()
        return analyze_document(document, media_type="application/json")
    files = bombs.bomb_files if shape == "bundle" else bombs.bomb_files_one_per_schema
    return analyze_bundle(zip_data=bombs.zipped(files(depth, leaf=leaf)))


def stage_once(shape: str, depth: int, stage: str) -> float:
    """Child mode: build the inputs (which also loads the validators), then time one stage alone."""
    from contracts.diff import diff_documents
    from contracts.lint import lint
    from gateway.routing import compile_routes
    from gateway.source import ContractApi, ContractVersion
    from policies.versioning import VersionInfo, VersionState

    base = _analysed(shape, depth if stage != "analyse" else 1, "string")
    revision = _analysed(shape, depth, "integer").document if stage == "diff" else None
    info = VersionInfo(version="1.0.0", state=VersionState.PUBLISHED)
    started = time.perf_counter()
    if stage == "analyse":
        _analysed(shape, depth, "string")
    elif stage == "diff":
        diff_documents(base.document, revision)
    elif stage == "lint":
        lint(base.document)
    else:
        api = ContractApi(name="bomb", versions=(ContractVersion(info, base.document),))
        operations, _ = compile_routes([api])["bomb"].routes["1.0.0"].trie.match("/trees")
        operations["POST"].validator.validate_response(200, "application/json", {"a": {"b": {}}})
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 14, 18])
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--child", nargs=3, metavar=("SHAPE", "DEPTH", "STAGE"))
    args = parser.parse_args()
    if args.child:
        shape, depth, stage = args.child
        print(json.dumps(stage_once(shape, int(depth), stage)))
        return
    path = [os.environ.get("PYTHONPATH", ""), str(ROOT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}
    print(f"| shape | depth | {' | '.join(f'{s} s' for s in STAGES)} |")
    print(f"| --- | --- | {' | '.join('---' for _ in STAGES)} |")
    for shape in SHAPES:
        for depth in args.depths:
            cells = []
            for stage in STAGES:
                try:
                    done = subprocess.run(
                        # As a module: run as a file, bench/gateway.py would shadow the gateway package.
                        [sys.executable, "-m", "bench.ref_bomb", "--child", shape, str(depth), stage],
                        env=env,
                        capture_output=True,
                        text=True,
                        timeout=args.timeout,
                    )
                except subprocess.TimeoutExpired:
                    cells.append(f">{args.timeout:.0f}")
                    continue
                if done.returncode != 0:
                    error = done.stderr.strip().splitlines() or ["failed"]
                    cells.append(error[-1][:60])
                else:
                    cells.append(f"{float(done.stdout.strip()):.3f}")
            print(f"| {shape} | {depth} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
