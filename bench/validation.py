"""Full OpenAPI validation: Charter's validator beside openapi-spec-validator, in one run.

Run: .venv/bin/python bench/validation.py [--rounds 3]
Documents: Stripe's v110 and v120 (JSON, OpenAPI 3.0), v190 (YAML), and v120 turned into OpenAPI 3.1
(`nullable` written as a `"null"` type, as a 3.1 document says it): a large 3.1 description. Each is
parsed once; both validators then run `rounds` times on the same parsed document (medians shown).
Charter's first call also compiles its validators (once per process): that cost is printed apart.
Both must agree that each document is valid, or the run stops.

Then what `charter diff` does with the Stripe pair (v110 -> v120): parse both, validate both, diff,
in this process, without validation, with Charter's and with openapi-spec-validator's.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Any

from openapi_spec_validator import validate as oracle_validate

from bench._corpus import corpus_dir
from contracts.diff import diff_documents
from contracts.kinds import detect_kind
from contracts.loading import load_document
from contracts.validation import validate_document

CORPUS = corpus_dir() / "stripe"


def as_openapi_31(doc: dict[str, Any]) -> dict[str, Any]:
    """The same description in OpenAPI 3.1 terms: `nullable: true` becomes a `"null"` type."""

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items() if key != "nullable"}
        if node.get("nullable") is True and isinstance(node.get("type"), str):
            out["type"] = [node["type"], "null"]
        return out

    converted = convert(copy.deepcopy(doc))
    converted["openapi"] = "3.1.0"
    return converted


def documents() -> list[tuple[str, float, dict[str, Any]]]:
    found = []
    for name in ("spec3-v110.json", "spec3-v120.json", "spec3-v190.yaml"):
        data = (CORPUS / name).read_bytes()
        found.append((name, len(data) / 1e6, load_document(data)))
    v120 = found[1][2]
    found.append(("v120 as 3.1", found[1][1], as_openapi_31(v120)))
    return found


def timed(call: Any, rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    docs = documents()

    started = time.perf_counter()
    validate_document(docs[0][2], detect_kind(docs[0][2]))
    print(f"Charter's first validation, compiling its validators: {time.perf_counter() - started:.2f} s")
    header = ("document", "MB", "charter s", "openapi-spec-validator s", "speed-up")
    print("{:<16} {:>5} {:>10} {:>25} {:>9}".format(*header))
    for name, megabytes, doc in docs:
        kind = detect_kind(doc)
        ours, issues = timed(lambda doc=doc, kind=kind: validate_document(doc, kind), rounds)
        if issues:
            raise SystemExit(f"{name}: Charter finds {len(issues)} errors, first {issues[0]}")
        theirs, _ = timed(lambda doc=doc: oracle_validate(doc), rounds)
        print(f"{name:<16} {megabytes:>5.1f} {ours:>10.3f} {theirs:>25.2f} {theirs / ours:>8.0f}x")
    diff_pair(rounds)


def diff_pair(rounds: int) -> None:
    base, revision = (CORPUS / "spec3-v110.json").read_bytes(), (CORPUS / "spec3-v120.json").read_bytes()

    def run(validate: Any) -> int:
        documents = [load_document(base), load_document(revision)]
        for doc in documents:
            validate(doc)
        return len(diff_documents(*documents).changes)

    def charter(doc: dict[str, Any]) -> None:
        if validate_document(doc, detect_kind(doc)):
            raise SystemExit("Charter finds a Stripe document invalid")

    print("\nparse + validate both + diff, Stripe v110 -> v120:")
    for label, validate in (
        ("no validation", lambda doc: None),
        ("Charter's validation", charter),
        ("openapi-spec-validator", oracle_validate),
    ):
        seconds, changes = timed(lambda validate=validate: run(validate), rounds)
        print(f"  {label:<24} {seconds:>6.2f} s  ({changes} changes)")


if __name__ == "__main__":
    main()
