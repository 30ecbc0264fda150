"""The declaration a firm writes: retry policies, flows, and their registration by entry point."""

from __future__ import annotations

import random
from importlib.metadata import EntryPoint

import pytest

from gateway.flows import Flow, RetryPolicy, Step
from gateway.flows.registration import load_flows
from tests import acme_flows


def test_backoff_grows_exponentially_within_the_jitter_and_stops_at_the_cap():
    policy = RetryPolicy(
        attempts=6, backoff_seconds=0.1, backoff_factor=2, max_backoff_seconds=1, jitter=0.25
    )
    rng = random.Random(7)
    for attempt, base in enumerate([0.1, 0.2, 0.4, 0.8, 1.0, 1.0], start=1):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert base * 0.75 <= min(delays) and max(delays) <= base * 1.25
        assert max(delays) - min(delays) > base * 0.3  # jittered, not fixed


@pytest.mark.parametrize(
    "values",
    [
        {"attempts": 0},
        {"jitter": 1.5},
        {"backoff_factor": 0.5},
        {"timeout_seconds": 0},
        {"backoff_seconds": -1},
    ],
)
def test_a_policy_that_cannot_work_is_refused(values):
    with pytest.raises(ValueError):
        RetryPolicy(**values)


async def _noop(context):  # type: ignore[no-untyped-def]
    return None


def test_a_flow_needs_steps_with_distinct_names():
    with pytest.raises(ValueError):
        Flow(name="f", owner="t", steps=())
    with pytest.raises(ValueError):
        Flow(name="f", owner="t", steps=(Step("a", _noop), Step("a", _noop)))


def test_flows_come_from_entry_points_and_a_broken_one_is_skipped(caplog):
    found = [
        EntryPoint("onboarding", "tests.acme_flows:onboarding", "charter.flows"),
        EntryPoint("broken", "tests.acme_flows:no_such_flow", "charter.flows"),
        EntryPoint("not-a-flow", "tests.acme_flows:FAST", "charter.flows"),
    ]
    flows = load_flows(found)
    assert flows == {"onboarding": acme_flows.onboarding}
    assert "broken" in caplog.text and "not-a-flow" in caplog.text
