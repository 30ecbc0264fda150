"""HTTP routes for teams' webhook subscriptions and their delivery logs."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.params import Body, PathParameter, QueryParameter

from registry import webhook_subscriptions as subscriptions
from registry.api.dependencies import Caller, Egress, Secrets, Session
from registry.api.discovery import Limit, Offset
from registry.api.problems import errors
from registry.api.schemas import Name, Text
from registry.api.security import WRITE_SECURITY
from registry.db.models import WebhookDelivery, WebhookSubscription
from registry.webhooks import WebhookDeliveries

TeamName = Annotated[str, PathParameter(description="team name", pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
SubscriptionId = Annotated[int, PathParameter(description="webhook subscription id", ge=1, le=2**31 - 1)]
DeliveryId = Annotated[int, PathParameter(description="delivery id", ge=1, le=2**53)]
DeliveryStateName = Literal["pending", "delivered", "failed"]
FlowName = Annotated[Text, msgspec.Meta(min_length=1, max_length=200)]
Topic = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._*-]*$", min_length=1, max_length=100)]


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    """Events of `topics` (names, or prefixes ending in `.*`) are POSTed to `url`, signed."""

    url: Annotated[str, msgspec.Meta(pattern=r"^https?://[^\x00]*$", max_length=2000)]
    topics: Annotated[list[Topic], msgspec.Meta(min_length=1, max_length=20)]
    # Only events about these APIs (all, when empty); for contract.* events, only versions in `versions`.
    apis: Annotated[list[Name], msgspec.Meta(max_length=100)] = []
    versions: Annotated[Text, msgspec.Meta(min_length=1, max_length=200)] | None = None
    # Only contract.* events of versions that break their predecessor: with `contract.drafted`, a
    # breaking change proposed; with `contract.published`, one forced through.
    breaking_only: bool = False
    # Only flow events of these flows (all the team owns, when empty).
    flows: Annotated[list[FlowName], msgspec.Meta(max_length=100)] = []


class WebhookOut(msgspec.Struct):
    id: int
    team: str
    url: str
    topics: list[str]
    apis: list[str]
    flows: list[str]
    versions: str | None
    breaking_only: bool
    created_at: dt.datetime
    created_by: str


class WebhookCreated(msgspec.Struct):
    """`secret` signs every delivery (Charter-Signature); it is shown this once and stored encrypted."""

    webhook: WebhookOut
    secret: str


class WebhookList(msgspec.Struct):
    items: list[WebhookOut]


class DeliveryOut(msgspec.Struct):
    id: int
    key: str  # the Charter-Delivery header
    event_id: int
    topic: str
    state: DeliveryStateName
    attempts: int
    next_attempt_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None


class DeliveryPage(msgspec.Struct):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


def webhook_out(row: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        team=row.team.name,
        url=row.url,
        topics=list(row.topics),
        apis=list(row.apis),
        flows=list(row.flows),
        versions=row.versions,
        breaking_only=row.breaking_only,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        key=row.key,
        event_id=row.event_id,
        topic=row.topic,
        state=row.state,  # type: ignore[arg-type]
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


class WebhookController(Controller):
    path = "/api/v1/teams/{team:str}/webhooks"
    tags = ["webhooks"]

    @post(
        responses=errors(400, 401, 403, 404, 422),
        summary="Subscribe a URL to events",
        security=WRITE_SECURITY,
    )
    async def create_webhook(
        self,
        session: Session,
        principal: Caller,
        egress: Egress,
        secrets: Secrets,
        team: TeamName,
        data: Annotated[WebhookIn, Body()],
    ) -> WebhookCreated:
        """Members of the team and admins. The URL must be a public address unless the operator's
        egress allow-list names it (422); events about clients and grants cannot be subscribed to (422).
        Flow events reach only subscriptions of the team that owns the flow."""
        row, secret = await subscriptions.create_subscription(
            session,
            principal,
            team,
            url=data.url,
            topics=data.topics,
            apis=data.apis,
            flows=data.flows,
            versions=data.versions,
            breaking_only=data.breaking_only,
            egress=egress,
            secrets=secrets,
        )
        await session.commit()
        return WebhookCreated(webhook=webhook_out(row), secret=secret)

    @get(responses=errors(400, 401, 403, 404), summary="The team's webhook subscriptions")
    async def list_webhooks(self, session: Session, principal: Caller, team: TeamName) -> WebhookList:
        """Members of the team and admins."""
        rows = await subscriptions.list_subscriptions(session, principal, team)
        return WebhookList(items=[webhook_out(row) for row in rows])

    @get("/{webhook_id:int}", responses=errors(400, 401, 403, 404), summary="A webhook subscription")
    async def get_webhook(
        self, session: Session, principal: Caller, team: TeamName, webhook_id: SubscriptionId
    ) -> WebhookOut:
        return webhook_out(await subscriptions.get_subscription(session, principal, team, webhook_id))

    @delete(
        "/{webhook_id:int}",
        responses=errors(400, 401, 403, 404),
        summary="Remove a webhook subscription and its deliveries",
        security=WRITE_SECURITY,
    )
    async def delete_webhook(
        self, session: Session, principal: Caller, team: TeamName, webhook_id: SubscriptionId
    ) -> None:
        await subscriptions.delete_subscription(session, principal, team, webhook_id)
        await session.commit()

    @get(
        "/{webhook_id:int}/deliveries",
        responses=errors(400, 401, 403, 404),
        summary="The deliveries of a webhook subscription, newest first",
    )
    async def list_deliveries(
        self,
        session: Session,
        principal: Caller,
        team: TeamName,
        webhook_id: SubscriptionId,
        in_state: Annotated[DeliveryStateName | None, QueryParameter(name="state")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> DeliveryPage:
        rows, total = await subscriptions.deliveries(
            session, principal, team, webhook_id, state=in_state, limit=limit, offset=offset
        )
        return DeliveryPage(items=[delivery_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @post(
        "/{webhook_id:int}/deliveries/{delivery_id:int}/redeliver",
        status_code=202,
        responses=errors(400, 401, 403, 404),
        summary="Send a delivery again",
        security=WRITE_SECURITY,
    )
    async def redeliver(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        team: TeamName,
        webhook_id: SubscriptionId,
        delivery_id: DeliveryId,
    ) -> DeliveryOut:
        """Members of the team and admins; the delivery is pending again with a fresh budget of attempts."""
        row = await subscriptions.redeliver(session, principal, team, webhook_id, delivery_id)
        await session.commit()
        deliveries: WebhookDeliveries = request.app.state.webhooks
        deliveries.wake()
        return delivery_out(row)
