"""Charter's OpenAPI validation against openapi-spec-validator, the oracle: same verdict, same places.

Over the corpus and a few hundred seeded mutations of real documents: the oracle finds a document
valid exactly when Charter does, and every place the oracle reports is one Charter reports (or a
more precise place inside it). Charter may report more, in two known ways only:
- where the oracle stops early: it reports one meta-schema error per schema and then skips the
  rest of that schema (its `default`s, its `required` names); Charter goes on. Such extras sit in a
  schema or operation the oracle flagged too.
- where the oracle raises instead of reporting (it walks `responses: "none"` as a mapping): it
  stops there, Charter goes on.
- references to nothing: the oracle never looks at request bodies, headers or callbacks, so a
  dangling `$ref` there passes it; Charter refuses every dangling reference, wherever it is.
"""

from __future__ import annotations

import copy
import functools
import random

import pytest

from contracts.kinds import detect_kind
from contracts.loading import load_document
from contracts.validation import validate_document
from tests.conftest import corpus
from tests.contracts.openapi_mutations import excerpt, mutants
from tests.contracts.oracle import oracle
from tests.contracts.test_validation import SWAGGER
from tests.samples import projects

MUTANTS_PER_BASE = 34


def _stripe() -> dict:
    return load_document(corpus("stripe", "spec3-v110.json").read_bytes())


@functools.cache
def _bases() -> list[tuple[str, dict]]:
    stripe = _stripe()
    rng = random.Random(7)
    bases = [
        ("projects-3.0", projects()),
        ("projects-3.1", {**projects(), "openapi": "3.1.0"}),
        ("swagger", SWAGGER),
    ]
    for index in range(3):
        part = excerpt(stripe, rng.sample(sorted(stripe["paths"]), 3), schemas=12)
        bases.append((f"stripe-excerpt-{index}-3.0", part))
        bases.append((f"stripe-excerpt-{index}-3.1", {**part, "openapi": "3.1.0"}))
    return bases


def _within(place: str, other: str) -> bool:
    return place == other or place.startswith(other + "/")


def _region(place: str) -> str:
    """The schema or operation a place belongs to: `/components/schemas/X`, `/paths/~1a/get`."""
    return "/".join(place.split("/")[:4])


def assert_agrees(doc: dict) -> None:
    kind = detect_kind(doc)
    verdict = oracle(doc, kind.line)
    issues = validate_document(doc, kind)
    ours = {issue.pointer for issue in issues}
    dangling = {
        i.pointer for i in issues if "points to nothing" in i.message or "external reference" in i.message
    }

    missed = {place for place in verdict.places if not any(_within(p, place) for p in ours)}
    assert not missed, f"the oracle reports {missed}, Charter does not: {issues}"
    regions = {_region(place) for place in verdict.places}
    unexplained = {
        p
        for p in ours - dangling
        if not any(_within(p, place) or _within(place, p) for place in verdict.places)
        and _region(p) not in regions
    }
    # An oracle that raised (a malformed document it walks as a well-formed one) stopped early.
    assert verdict.crashed or not unexplained, (
        f"Charter reports {unexplained}, the oracle not: {verdict.places}"
    )
    if not dangling:
        assert verdict.valid == (not issues), (verdict.crashed, issues)


@pytest.mark.parametrize("name", ["spec3-v110.json", "spec3-v120.json", "spec3-v190.yaml"])
def test_the_corpus_is_valid_for_both(name):
    doc = load_document(corpus("stripe", name).read_bytes())
    kind = detect_kind(doc)
    assert oracle(doc, kind.line).valid
    assert validate_document(doc, kind) == []


@pytest.mark.parametrize("index", range(9))
def test_mutated_documents_get_the_oracles_verdict_and_places(index):
    name, base = copy.deepcopy(_bases()[index])
    assert_agrees(base)
    for description, doc in mutants(base, MUTANTS_PER_BASE, seed=index):
        try:
            assert_agrees(doc)
        except AssertionError as exc:
            raise AssertionError(f"{name}, {description}: {exc}") from None
