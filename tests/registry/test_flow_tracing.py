"""One trace from a consumer's request through a flow run, its steps and their system calls, exported
over OTLP/HTTP to a real receiver; and the spans of a publish."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

pytest.importorskip("gateway.flows", reason="the flow engine is not installed")

from gateway.tracing import TracingConfig
from registry.app import create_app
from registry.demo.flows import FLOWS
from tests.gateway.conftest import settled
from tests.otlp import ReceivedSpan, Receiver, otlp_receiver
from tests.registry.support import ADMIN, CLIENTS, bearer, fetch_token, make_settings
from tests.registry.test_demo_flows import CONSUMER, finished, quick
from tests.samples import JSON_HEADERS, as_json, projects

CRM = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as running:
        yield running


def ancestors(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[str]:
    """The names of the span's ancestors, nearest first, as far as the trace holds them."""
    names = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        names.append(span.name)
    return names


def flows_app(tmp_path, receiver: Receiver) -> Litestar:
    """The demo with its flows (retries milliseconds apart), tracing to `receiver`."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/charter.db",
        demo=True,
        clients_json=json.dumps([*CLIENTS, CONSUMER]),
        tracing=TracingConfig(endpoint=receiver.url),
    )
    return create_app(settings, flows={flow.name: quick(flow) for flow in FLOWS})


async def test_a_won_opportunity_is_one_trace_from_the_crm_request_to_the_project(tmp_path, receiver):
    app = flows_app(tmp_path, receiver)
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        bound = await client.put(
            "/api/v1/apis/lead-to-project/adapter",
            json={"kind": "flow", "flow": "lead-to-project"},
            headers=admin,
        )
        assert bound.status_code == 200, bound.text
        await settled(app)
        consumer = bearer(await fetch_token(client, "back-office", "back-office-secret"))
        response = await client.post(
            "/gw/lead-to-project/v1/opportunities/opp-1001/won", headers={**consumer, "traceparent": CRM}
        )
        assert response.status_code == 201, response.text
        run = await finished(client, admin, response.headers["charter-flow-run"])
    trace_id = CRM.split("-")[1]
    assert run["trace_id"] == trace_id

    spans = receiver.trace(trace_id)
    by_id = {span.span_id: span for span in spans}
    (request,) = [s for s in spans if s.name == "POST lead-to-project convertWonOpportunity"]
    assert request.parent_id == "b7ad6b7169203331"  # the CRM's span
    assert response.headers["traceparent"].split("-")[2] == request.span_id

    (flow_run,) = [s for s in spans if s.name == "flow.run lead-to-project"]
    assert flow_run.parent_id == request.span_id
    assert flow_run.attributes["charter.flow.run"] == run["id"]
    assert flow_run.attributes["charter.flow.state"] == "succeeded"

    steps = [s for s in spans if s.name.startswith("flow.step ")]
    assert [s.attributes["charter.flow.step"] for s in steps] == [step["name"] for step in run["steps"]]
    assert all(s.parent_id == flow_run.span_id for s in steps)
    assert all(
        s.attributes["charter.flow.attempt"] == 1 and not s.attributes["charter.flow.retry"] for s in steps
    )

    # Each step's calls through the in-process client are gateway requests under the step's span.
    system_calls = [s for s in spans if s.kind == "server" and s is not request]
    assert system_calls
    for call in system_calls:
        assert by_id[call.parent_id].name.startswith("flow.step ")
        assert call.attributes["charter.consumer"] == "demo-flows"
        assert ancestors(call, by_id)[-1] == request.name
    called = {call.attributes["charter.api"] for call in system_calls}
    assert called == {"crm", "erp", "psa", "hcm"}


async def test_a_retried_step_has_a_span_per_attempt(tmp_path, receiver):
    app = flows_app(tmp_path, receiver)
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        bound = await client.put(
            "/api/v1/apis/time-to-bill/adapter", json={"kind": "flow", "flow": "time-to-bill"}, headers=admin
        )
        assert bound.status_code == 200, bound.text
        await settled(app)
        await client.put("/api/v1/demo/systems/erp/faults", json={"fail_next": 1}, headers=admin)
        consumer = bearer(await fetch_token(client, "back-office", "back-office-secret"))
        response = await client.post(
            "/gw/time-to-bill/v1/billing-runs", json={"client": "acme", "period": "2026-11"}, headers=consumer
        )
        assert response.status_code == 201, response.text
    trace_id = response.headers["traceparent"].split("-")[1]
    posting = [s for s in receiver.trace(trace_id) if s.name == "flow.step post-billing-lines"]
    assert [(s.attributes["charter.flow.attempt"], s.attributes["charter.flow.retry"]) for s in posting] == [
        (1, False),
        (2, True),
    ]
    failed, succeeded = posting
    assert failed.error and failed.attributes["charter.flow.retryable"] is True
    assert not succeeded.error


async def test_a_publish_has_a_span_per_phase(tmp_path, receiver):
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/charter.db", tracing=TracingConfig(endpoint=receiver.url)
    )
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        await client.post(
            "/api/v1/teams", json={"name": "delivery", "members": ["delivery-ci"]}, headers=admin
        )
        publisher = bearer(await fetch_token(client, "delivery-ci", "delivery-secret"))
        for number in ("1.0.0", "1.1.0"):
            response = await client.post(
                "/api/v1/apis/projects/versions",
                content=as_json(projects(number)),
                headers={**publisher, **JSON_HEADERS, "traceparent": CRM},
                params={"owner": "delivery"},
            )
            assert response.status_code == 201, response.text
        invalid = await client.post(
            "/api/v1/apis/projects/versions",
            content=b'{"openapi": "3.1.0", "info": {"title": "x", "version": "1.2.0"}, "paths": {"x": 1}}',
            headers={**publisher, **JSON_HEADERS},
        )
        assert invalid.status_code == 422, invalid.text

    publishes = receiver.named("registry.publish")
    assert [s.attributes["charter.publish.result"] for s in publishes] == [
        "published",
        "published",
        "invalid",
    ]
    second = publishes[1]
    assert (second.trace_id, second.parent_id) == (CRM.split("-")[1], "b7ad6b7169203331")
    assert second.attributes["charter.api.version"] == "1.1.0"
    children = [s for s in receiver.trace(second.trace_id) if s.parent_id == second.span_id]
    assert [s.name for s in children] == ["publish.validate", "publish.lint", "publish.diff", "publish.store"]
    assert publishes[2].error
    assert [s.name for s in receiver.trace(publishes[2].trace_id) if s.parent_id == publishes[2].span_id] == [
        "publish.validate"
    ]
