"""Lifecycle events delivered to consumers' webhooks: signed with HMAC-SHA256, retried with backoff.

Webhook URLs come from teams: deliveries connect only where the egress policy allows (public
addresses, or what the operator's allow-list names), checked at connect time against DNS rebinding,
and follow no redirects. The secret is stored sealed (registry.secret_box) and opened per delivery.

A delivery is `POST <webhook_url>` with the event as JSON and the headers `Charter-Event`,
`Charter-Delivery` (stable across retries, for de-duplication), `Charter-Timestamp` and
`Charter-Signature: sha256=<hex HMAC of "<timestamp>.<body>">` under the consumer's secret, so
that a receiver can refuse forged or replayed calls. Retries (tenacity) follow failures and 5xx
answers with exponential backoff; a 4xx answer is final.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time

import httpx
import msgspec
import nodesemver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from gateway.egress import guarded_client
from policies.egress import EgressPolicy, EgressRefused
from registry.db.models import Api, Consumer
from registry.events import Event
from registry.secret_box import SecretBox, SecretsKeyError

log = logging.getLogger("charter.webhooks")


class _Retryable(Exception):
    pass


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        egress: EgressPolicy,
        secrets: SecretBox,
        attempts: int = 6,
        first_wait: float = 1.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._secrets = secrets
        self._http = guarded_client(egress, timeout=httpx.Timeout(10, connect=3))
        self._attempts = attempts
        self._first_wait = first_wait
        self._deliveries: set[asyncio.Task[None]] = set()

    async def on_deprecated(self, event: Event) -> None:
        """Tell every consumer whose version range includes the deprecated version."""
        api_name, version = str(event.payload.get("api")), str(event.payload.get("version"))
        async with self._sessionmaker() as session:
            consumers = (
                await session.scalars(
                    select(Consumer)
                    .join(Api, Api.id == Consumer.api_id)
                    .where(Api.name == api_name, Consumer.webhook_url.is_not(None))
                )
            ).all()
        body = msgspec.json.encode(
            {"event": event.topic, "id": event.id, "at": event.at, "contract": event.payload}
        )
        for consumer in consumers:
            if not nodesemver.satisfies(version, consumer.versions, False):
                continue
            assert consumer.webhook_url is not None and consumer.webhook_secret_sealed is not None
            try:
                secret = self._secrets.open(consumer.webhook_secret_sealed)
            except SecretsKeyError as exc:
                log.error("webhook of %s not delivered: %s", consumer.consumer, exc)
                continue
            # Deliveries run beside the outbox relay: a slow receiver must not hold up other events.
            task = asyncio.create_task(
                self.deliver(consumer.webhook_url, secret, event, body),
                name=f"charter-webhook-{consumer.consumer}",
            )
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def deliver(self, url: str, secret: str, event: Event, body: bytes) -> bool:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=self._first_wait, max=300),
                retry=retry_if_exception_type(_Retryable),
                reraise=True,
            ):
                with attempt:
                    await self._post(url, secret, event, body)
            return True
        except (_Retryable, httpx.HTTPError, EgressRefused) as exc:
            log.warning("webhook %s for event %s given up: %s", url, event.id, exc)
            return False

    async def _post(self, url: str, secret: str, event: Event, body: bytes) -> None:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Charter-Event": event.topic,
            "Charter-Delivery": f"{event.id}",
            "Charter-Timestamp": timestamp,
            "Charter-Signature": signature(secret, timestamp, body),
        }
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise _Retryable(str(exc)) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retryable(f"answered {response.status_code}")
        if response.status_code >= 400:
            log.warning("webhook %s refused event %s with %s", url, event.id, response.status_code)

    async def wait(self) -> None:
        """For tests and shutdown: let the deliveries under way finish."""
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def aclose(self) -> None:
        for task in self._deliveries:
            task.cancel()
        await self.wait()
        await self._http.aclose()
