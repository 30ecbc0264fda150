"""Events a flow sends through the registry's outbox are checked against the AsyncAPI contracts
registered for their topics: a breaking business event fails its step for good (the run parks),
a breaking status event is held back, an event no contract names leaves unchecked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

pytest.importorskip("gateway.flows", reason="the flow engine is not installed")

from gateway.flows.declaration import Flow, FlowInput, RetryPolicy, Step, StepContext
from gateway.flows.runs import RunRecord
from registry.app import create_app
from registry.db.models import OutboxEvent
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings

PROJECT = {
    "opportunityId": "opp-1001",
    "clientId": "acme",
    "projectId": "PRJ-1001",
    "engagementId": "ENG-1001",
    "managerId": "e-100",
    "members": ["e-201", "e-301"],
}


async def announce(context: StepContext) -> dict[str, Any]:
    """Emits the events the run's input lists: `[[topic, data], ...]`."""
    for topic, data in context.input.body:
        context.emit(topic, data)
    return {"announced": len(context.input.body)}


ANNOUNCE = Flow(
    name="announce",
    owner="delivery",
    steps=(Step("announce", announce, RetryPolicy(attempts=3, backoff_seconds=0.01, jitter=0)),),
)


def contract(address: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "asyncapi": "3.0.0",
        "info": {"title": address, "version": "1.0.0"},
        "channels": {"events": {"address": address, "messages": {"event": {"payload": payload}}}},
        "operations": {"send": {"action": "send", "channel": {"$ref": "#/channels/events"}}},
    }


@pytest.fixture
def app(database_url: str) -> Litestar:
    # The demo registers project-events 1.0.0, whose `delivery.project.created` requires six fields.
    return create_app(make_settings(database_url, demo=True), flows={ANNOUNCE.name: ANNOUNCE})


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app) as test_client:
        yield test_client


async def run(client: AsyncTestClient, app: Litestar, events: list[list[Any]]) -> RunRecord:
    runner = app.state.flow_runner

    async def start_and_wait() -> RunRecord:
        run_id = await runner.start_run(ANNOUNCE.name, FlowInput(body=events))
        record = await runner.wait(run_id, 10)
        assert record is not None
        return record

    return await asyncio.to_thread(client.blocking_portal.call, start_and_wait)


async def outbox(client: AsyncTestClient, app: Litestar) -> list[tuple[str, dict[str, Any]]]:
    async def read() -> list[tuple[str, dict[str, Any]]]:
        async with app.state.sessionmaker() as session:
            rows = await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id))
            return [(row.topic, row.payload) for row in rows]

    # On the app's own loop: asyncpg connections belong to the loop that opened them.
    return await asyncio.to_thread(client.blocking_portal.call, read)


async def publish(client: AsyncTestClient, app: Litestar, name: str, document: dict[str, Any]) -> None:
    admin = bearer(await fetch_token(client, *ADMIN))
    published = await client.post(
        f"/api/v1/apis/{name}/versions",
        content=json.dumps(document),
        params={"owner": "delivery"},
        headers={**admin, "Content-Type": "application/json"},
    )
    assert published.status_code == 201, published.text
    # The contract reaches the catalog through the outbox relay's `contract.published` event.
    for _ in range(200):
        await asyncio.to_thread(client.blocking_portal.call, app.state.event_contracts.wait)
        if app.state.event_contracts.catalog.covers(document["channels"]["events"]["address"]):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the event contracts did not reload")


async def test_an_event_that_keeps_its_contract_leaves_through_the_outbox(client, app):
    record = await run(client, app, [["delivery.project.created", PROJECT]])

    assert record.state.value == "succeeded"
    sent = await outbox(client, app)
    assert ("delivery.project.created", {"run": record.id, "flow": "announce", "data": PROJECT}) in sent
    assert "flow.run.succeeded" in [topic for topic, _ in sent]


async def test_an_event_that_breaks_its_contract_fails_its_step_for_good_and_is_not_sent(client, app):
    broken = {key: value for key, value in PROJECT.items() if key != "members"}
    record = await run(
        client, app, [["warehouse.restocked", {"sku": "A-1"}], ["delivery.project.created", broken]]
    )

    assert record.state.value == "failed"
    step = record.steps[0]
    assert step.attempts == 1  # the same code would emit the same event: no retry
    assert step.error is not None
    assert "event delivery.project.created breaks its contract" in step.error["message"]
    assert step.error["problem"] == {
        "event": "delivery.project.created",
        "violations": ['project-events 1.0.0, message ProjectCreated: /: "members" is a required property'],
    }
    topics = [topic for topic, _ in await outbox(client, app)]
    # None of the step's events leave, the valid one included: they go with the step or not at all.
    assert "delivery.project.created" not in topics
    assert "warehouse.restocked" not in topics
    assert "flow.run.failed" in topics


async def test_an_event_no_contract_names_leaves_unchecked(client, app):
    data = {"anything": [1, {"goes": True}]}
    record = await run(client, app, [["warehouse.restocked", data]])

    assert record.state.value == "succeeded"
    assert (
        "warehouse.restocked",
        {"run": record.id, "flow": "announce", "data": {"anything": [1, {"goes": True}]}},
    ) in await outbox(client, app)


async def test_a_contract_published_later_applies_to_the_next_events(client, app):
    first = await run(client, app, [["stock.low", {"quantity": 3}]])
    assert first.state.value == "succeeded"

    sku_required = {"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"}}}
    await publish(client, app, "stock-events", contract("stock.low", sku_required))

    refused = await run(client, app, [["stock.low", {"quantity": 3}]])
    assert refused.state.value == "failed"
    assert refused.steps[0].error["problem"]["violations"] == [
        'stock-events 1.0.0, message event: /: "sku" is a required property'
    ]
    kept = await run(client, app, [["stock.low", {"sku": "A-1", "quantity": 3}]])
    assert kept.state.value == "succeeded"


async def test_a_status_event_that_breaks_a_registered_contract_is_held_back(client, app):
    tagged = {"type": "object", "required": ["region"]}
    await publish(client, app, "run-events", contract("flow.run.succeeded", tagged))

    record = await run(client, app, [["warehouse.restocked", {"sku": "A-1"}]])

    assert record.state.value == "succeeded"  # the run index, not the event, is the run's record
    topics = [topic for topic, _ in await outbox(client, app)]
    assert "warehouse.restocked" in topics
    assert "flow.run.succeeded" not in topics
