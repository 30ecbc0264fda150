"""Webhook deliveries: events turned into rows of a durable log, sent by a background worker.

Two kinds of webhook share this one path: a team's subscriptions (registry.webhook_subscriptions)
and a consumer's webhook, which hears `contract.deprecated` for the versions its range includes.

From event to rows: `WebhookDeliveries.on_event` runs for every event the bus hands this replica
and writes one row per (webhook, event) that should hear it. The row is unique on that pair, and
the insert does nothing when the row is there: several replicas handling the same event (as they
do when every replica consumes the bus) leave one row, so one delivery.

From rows to receivers: `run` claims due rows (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas
never send the same row at once; SQLite: the one write lock) by moving their next attempt past the
time a send can take, sends them, and records the outcome. A row whose replica dies mid-send comes
due again after that lease, so a delivery is sent at least once and survives restarts.

A delivery is `POST <url>` with the event as JSON and the headers `Charter-Event`,
`Charter-Delivery` (the row's key: stable across retries and redeliveries, for de-duplication),
`Charter-Timestamp` and `Charter-Signature: sha256=<hex HMAC of "<timestamp>.<body>">` under the
webhook's secret, so that a receiver can refuse forged or replayed calls. A 2xx answer delivers; a
transport error, 408, 429 or 5xx is retried with exponential backoff and jitter up to `attempts`
times; any other answer is final. URLs are held to the egress policy at connect time (DNS
rebinding included) and redirects are not followed; a refused target fails the delivery for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import random
import time
import uuid
from collections.abc import Mapping

import httpx
import msgspec
import nodesemver
from prometheus_client import Counter
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gateway.egress import guarded_client
from policies.egress import EgressPolicy, EgressRefused
from registry.db.engine import begin_write
from registry.db.models import Api, Consumer, DeliveryState, WebhookDelivery, WebhookSubscription, utcnow
from registry.events import Event
from registry.secret_box import SecretBox, SecretsKeyError

log = logging.getLogger("charter.webhooks")

# Events about an API: their payload names it as `api` (and, for contract.*, the `version`).
API_TOPICS = ("contract.", "api.", "consumer.", "canonical.")
# Events for the team that owns the API they name (`owner`): a canonical model it declares broke.
OWNER_TOPICS = ("canonical.",)
# An API's error-budget alerts (registry.slo.burn_alerts): for its owning team only.
SLO_TOPICS = ("slo.",)
# Registry events that say who holds which scopes: never sent to a subscription.
PRIVATE_TOPICS = ("client.", "access.")
_TIMEOUT = httpx.Timeout(10, connect=3)
# How long a claimed row stays with the replica that claimed it: longer than a send may take
# (connect, write and read timeouts), so that only a dead replica's claims come due again.
CLAIM_SECONDS = 60.0
MAX_WAIT_SECONDS = 3600.0


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def topic_matches(pattern: str, topic: str) -> bool:
    """`contract.deprecated` matches itself; `flow.run.*` matches `flow.run.failed`."""
    if pattern.endswith(".*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


def is_flow_event(event: Event) -> bool:
    """Flow status events (`flow.run.*`) and business events carry the run and its flow."""
    return "run" in event.payload and "flow" in event.payload and not event.topic.startswith(API_TOPICS)


def event_body(event: Event) -> bytes:
    key = "contract" if event.topic.startswith("contract.") else "data"
    return msgspec.json.encode({"event": event.topic, "id": event.id, "at": event.at, key: event.payload})


def retry_delay(first_wait: float, attempts: int) -> float:
    """Exponential backoff with jitter: about `first_wait * 2**(attempts-1)`, between half and all of it,
    so that many deliveries failing together against one receiver do not all come back at once."""
    ceiling = min(MAX_WAIT_SECONDS, first_wait * 2 ** max(0, attempts - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class _Claimed(msgspec.Struct, frozen=True):
    """A claimed delivery, as read at claim time: what to send, and where."""

    id: int
    key: str
    event_id: int
    topic: str
    body: bytes
    url: str | None
    sealed: str | None


class _Outcome(msgspec.Struct, frozen=True):
    status: int | None
    error: str | None  # None: delivered
    retry: bool


class WebhookDeliveries:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        egress: EgressPolicy,
        secrets: SecretBox,
        flow_owners: Mapping[str, str] | None = None,
        attempts: int = 6,
        first_wait: float = 1.0,
        poll_seconds: float = 2.0,
        batch: int = 20,
        defer_writes: bool | None = None,
        outcomes: Counter | None = None,
    ) -> None:
        """`defer_writes`: write an event's rows after `on_event` returns, not before. By default on
        SQLite, where the in-process outbox relay calls subscribers inside its write transaction and
        a write here would wait for the lock its caller holds; the price is that a crash right after
        the relay commits loses those rows. A bus that calls subscribers outside any transaction
        (NATS) should pass False, so that an event is acknowledged only once its rows are stored."""
        self._sessionmaker = sessionmaker
        self._secrets = secrets
        self._outcomes = outcomes  # attempts counted by outcome (delivered, retrying, failed)
        self._flow_owners = dict(flow_owners or {})
        self._http = guarded_client(egress, timeout=_TIMEOUT)
        self.attempts = attempts
        self._first_wait = first_wait
        self._poll_seconds = poll_seconds
        self._batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        self._writes: set[asyncio.Task[None]] = set()
        self._defer_writes = self._dialect() == "sqlite" if defer_writes is None else defer_writes

    # From events to rows.

    async def on_event(self, event: Event) -> None:
        if self._defer_writes:
            task = asyncio.create_task(self._record_retrying(event), name=f"charter-webhook-rows-{event.id}")
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
            return
        await self.record(event)

    def _dialect(self) -> str:
        return self._sessionmaker.kw["bind"].dialect.name

    async def _record_retrying(self, event: Event) -> None:
        for attempt in range(5):
            try:
                await self.record(event)
                return
            except Exception:
                log.exception("deliveries of event %s not recorded (attempt %d)", event.id, attempt + 1)
                await asyncio.sleep(1 + attempt)

    async def record(self, event: Event) -> int:
        """Write the rows this event needs; rows already written (by any replica) stay as they are."""
        if event.topic.startswith(PRIVATE_TOPICS):
            return 0
        async with self._sessionmaker() as session:
            subscriptions = await self._subscriptions(session, event)
            consumers = await self._consumers(session, event) if event.topic == "contract.deprecated" else []
            await session.rollback()
            if not subscriptions and not consumers:
                return 0
            body = event_body(event)
            now = utcnow()
            rows = [
                {
                    "key": uuid.uuid4().hex,
                    "subscription_id": subscription_id,
                    "consumer_id": consumer_id,
                    "event_id": event.id,
                    "topic": event.topic,
                    "body": body,
                    "state": DeliveryState.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for subscription_id, consumer_id in [(s, None) for s in subscriptions]
                + [(None, c) for c in consumers]
            ]
            insert = (postgresql if self._dialect() == "postgresql" else sqlite).insert
            await begin_write(session)
            await session.execute(insert(WebhookDelivery).values(rows).on_conflict_do_nothing())
            await session.commit()
        self._wake.set()
        return len(rows)

    async def _subscriptions(self, session: AsyncSession, event: Event) -> list[int]:
        flow_event = is_flow_event(event)
        api_event = event.topic.startswith(API_TOPICS)
        slo_event = event.topic.startswith(SLO_TOPICS)
        if not (flow_event or api_event or slo_event):
            return []
        api, version = str(event.payload.get("api", "")), event.payload.get("version")
        flow = str(event.payload.get("flow", ""))
        owner = self._flow_owners.get(flow) if flow_event else None
        if flow_event and owner is None:
            return []  # a flow this replica does not host: its owner, who alone may hear it, is unknown
        out = []
        for row in (await session.scalars(select(WebhookSubscription))).all():
            if not any(topic_matches(pattern, event.topic) for pattern in row.topics):
                continue
            if flow_event:
                # A run's input and answer are business data: only the flow's owning team hears them.
                if row.team.name != owner or (row.flows and flow not in row.flows):
                    continue
            elif slo_event:
                if row.team.name != event.payload.get("team") or (row.apis and api not in row.apis):
                    continue
            else:
                if row.apis and api not in row.apis:
                    continue
                if event.topic.startswith(OWNER_TOPICS) and row.team.name != event.payload.get("owner"):
                    continue
                breaking = event.topic.startswith("contract.") and event.payload.get("breaking") is True
                if row.breaking_only and not breaking:
                    continue
                if (
                    row.versions
                    and event.topic.startswith("contract.")
                    and not (isinstance(version, str) and _satisfies(version, row.versions))
                ):
                    continue
            out.append(row.id)
        return out

    async def _consumers(self, session: AsyncSession, event: Event) -> list[int]:
        """Consumers whose range includes the deprecated version, and who gave a webhook."""
        api, version = str(event.payload.get("api")), str(event.payload.get("version"))
        rows = (
            await session.scalars(
                select(Consumer)
                .join(Api, Api.id == Consumer.api_id)
                .where(Api.name == api, Consumer.webhook_url.is_not(None))
            )
        ).all()
        return [row.id for row in rows if _satisfies(version, row.versions)]

    # From rows to receivers.

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            wait = self._poll_seconds
            try:
                while await self.deliver_due() == self._batch and not self._stopping:
                    pass
                wait = min(wait, await self._seconds_to_next())
            except Exception:
                log.exception("webhook deliveries failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)

    async def deliver_due(self) -> int:
        """Claim the rows that are due, send them, record how each went; the number claimed."""
        claimed = await self._claim()
        if claimed:
            outcomes = await asyncio.gather(*(self._send(delivery) for delivery in claimed))
            # One write for the batch: on SQLite a write per row would queue them on its one lock.
            await self._record_attempts(list(zip(claimed, outcomes, strict=True)))
        return len(claimed)

    async def _claim(self) -> list[_Claimed]:
        async with self._sessionmaker() as session:
            await begin_write(session)
            now = utcnow()
            stmt = (
                select(WebhookDelivery)
                .where(
                    WebhookDelivery.state == DeliveryState.PENDING.value,
                    WebhookDelivery.next_attempt_at <= now,
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(self._batch)
            )
            if self._dialect() == "postgresql":
                stmt = stmt.with_for_update(skip_locked=True)
            rows = (await session.scalars(stmt)).all()
            if not rows:
                await session.rollback()
                return []
            claimed = []
            for row in rows:
                url, sealed = await self._target(session, row)
                claimed.append(_Claimed(row.id, row.key, row.event_id, row.topic, row.body, url, sealed))
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([row.id for row in rows]))
                .values(next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS))
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            return claimed

    async def _target(self, session: AsyncSession, row: WebhookDelivery) -> tuple[str | None, str | None]:
        """The webhook's URL and sealed secret as they are now (a consumer may have changed them)."""
        if row.subscription_id is not None:
            subscription = await session.get(WebhookSubscription, row.subscription_id)
            if subscription is not None:
                return subscription.url, subscription.secret_sealed
        elif row.consumer_id is not None:
            consumer = await session.get(Consumer, row.consumer_id)
            if consumer is not None:
                return consumer.webhook_url, consumer.webhook_secret_sealed
        return None, None

    async def _seconds_to_next(self) -> float:
        async with self._sessionmaker() as session:
            due = await session.scalar(
                select(func.min(WebhookDelivery.next_attempt_at)).where(
                    WebhookDelivery.state == DeliveryState.PENDING.value
                )
            )
        if due is None:
            return self._poll_seconds
        if due.tzinfo is None:  # SQLite hands an aggregate back as it stored it, without the type
            due = due.replace(tzinfo=dt.UTC)
        return max(0.0, (due - utcnow()).total_seconds())

    async def _send(self, delivery: _Claimed) -> _Outcome:
        status: int | None = None
        retry = False
        if delivery.url is None or delivery.sealed is None:
            error: str | None = "the webhook was removed"
        else:
            try:
                secret = self._secrets.open(delivery.sealed)
                status = await self._post(delivery.url, secret, delivery)
                error = None if 200 <= status < 300 else f"answered {status}"
                retry = status >= 500 or status in (408, 429)
            except SecretsKeyError as exc:
                error = str(exc)
            except EgressRefused as exc:
                error = f"refused by the egress policy: {exc}"
            except httpx.TransportError as exc:
                error, retry = f"{type(exc).__name__}: {exc}", True
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # final, so that a fault of ours cannot send a row again forever
                log.exception("webhook delivery %s failed", delivery.id)
                error = f"{type(exc).__name__}: {exc}"
        return _Outcome(status, error, retry)

    async def _post(self, url: str, secret: str, row: _Claimed) -> int:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Charter-Event": row.topic,
            "Charter-Delivery": row.key,
            "Charter-Timestamp": timestamp,
            "Charter-Signature": signature(secret, timestamp, row.body),
        }
        response = await self._http.post(url, content=row.body, headers=headers)
        return response.status_code

    async def _record_attempts(self, sent: list[tuple[_Claimed, _Outcome]]) -> None:
        async with self._sessionmaker() as session:
            await begin_write(session)
            rows = await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.id.in_([delivery.id for delivery, _ in sent]))
            )
            by_id = {row.id: row for row in rows.all()}
            now = utcnow()
            counted: list[str] = []
            for delivery, outcome in sent:
                row = by_id.get(delivery.id)
                if row is None or row.state != DeliveryState.PENDING.value:
                    continue  # removed with its webhook meanwhile
                row.attempts += 1
                row.last_attempt_at = now
                row.last_status = outcome.status
                row.last_error = outcome.error
                if outcome.error is None:
                    row.state = DeliveryState.DELIVERED.value
                    row.delivered_at = now
                    row.next_attempt_at = None
                    counted.append("delivered")
                elif outcome.retry and row.attempts < self.attempts:
                    wait = retry_delay(self._first_wait, row.attempts)
                    row.next_attempt_at = now + dt.timedelta(seconds=wait)
                    counted.append("retrying")
                else:
                    counted.append("failed")
                    row.state = DeliveryState.FAILED.value
                    row.next_attempt_at = None
                    given_up = (delivery.url, row.event_id, outcome.error)
                    log.warning("webhook %s for event %s given up: %s", *given_up)
            await session.commit()
        if self._outcomes is not None:
            for outcome_name in counted:
                self._outcomes.labels(outcome_name).inc()

    async def wait(self) -> None:
        """For tests and shutdown: let the row writes under way finish."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    async def aclose(self) -> None:
        await self.wait()
        await self._http.aclose()


def _satisfies(version: str, versions: str) -> bool:
    try:
        return bool(nodesemver.satisfies(version, versions, False))
    except ValueError:
        return False
