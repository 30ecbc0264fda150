"""Events on NATS JetStream: the outbox relay publishes to a stream, every replica follows it.

The relaying replica publishes each outbox row to the stream (`charter.<topic>`, header `Nats-Msg-Id`
= the row id and its time, so that a relay that crashed between the publish and marking the row relayed, and
publishes again within the stream's duplicate window, stores it once) and marks the row only once
JetStream acknowledged it.

Every replica follows the stream with an ordered consumer and hands each event to its in-process
cache bus (routing table, event contracts, the issuer's clients). A replica rebuilds those caches
from the database when it starts, so it needs the events from the moment that rebuild began: it
notes the stream's last sequence before the rebuild and follows from the next one. While it runs,
the ordered consumer resumes after the last sequence it delivered, across lost connections and
server restarts. Nothing is kept on the server per replica: replicas on PostgreSQL get a fresh
name per process, and durable consumers named after them would pile up.

While NATS is away events wait in the outbox (the relay retries) and this replica's caches, its
own changes included, stand still; a replica that starts while NATS is away serves from the
database and, once NATS answers, reloads its caches and follows from then. Once subscribers
(webhooks) run on the relaying replica after the stream acknowledged the event: at least once, as
without NATS.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError

from registry.events import Event, Handler, InProcessBus

log = logging.getLogger("charter.events")

# A relay that crashed after a publish and before marking its rows publishes them again when it (or
# another replica) next relays: within this window JetStream stores them once. Beyond it a consumer
# sees the event twice and drops it by id (caches reload either way).
DUPLICATE_WINDOW_SECONDS = 3600.0
# Kept at most this long, so that a replica cut off from NATS resumes where it stopped.
MAX_AGE_SECONDS = 7 * 24 * 3600.0
PUBLISH_TIMEOUT_SECONDS = 5.0
# Missing two heartbeats makes the ordered consumer recreate itself after its last sequence.
HEARTBEAT_SECONDS = 1.0
# How long a starting server waits for NATS before it serves without it.
STARTUP_WAIT_SECONDS = 5.0
ERROR_LOG_SECONDS = 30.0
# Event ids already handed to the bus; a stream may hold an event twice (see above).
RECENT_IDS = 10_000

_decode_event = msgspec.json.Decoder(Event).decode
_encode = msgspec.json.Encoder().encode


def message_id(item: Event) -> str:
    """The stream's de-duplication key of one outbox row. The row id alone repeats when a database is
    recreated or restored while the stream lives on, and JetStream would then drop new events as
    duplicates for the whole window; the row's commit time tells those apart, and a relay that
    publishes the same row again sends the same key."""
    return f"{item.id}@{item.at.isoformat()}"


class JetStreamEvents:
    def __init__(self, url: str, *, stream: str, subject_prefix: str, bus: InProcessBus) -> None:
        self._url = url
        self.stream = stream
        self.prefix = subject_prefix
        self._bus = bus
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._recent: collections.OrderedDict[int, None] = collections.OrderedDict()
        self.last_sequence = 0  # of the stream, the last message handed to the bus
        self._ready = False
        self._tasks: list[asyncio.Task] = []
        self._error_logged = -ERROR_LOG_SECONDS

    def subject(self, topic: str) -> str:
        return f"{self.prefix}.{topic}"

    async def start(self, load_caches: Callable[[], Awaitable[None]]) -> None:
        """Connect, load this replica's caches (`load_caches`) and follow the stream from before that
        load. A NATS that does not answer within STARTUP_WAIT_SECONDS does not hold the server up: the
        caches load from the database now; once NATS answers they load again and the replica follows
        from there. Meanwhile the relay keeps events in the outbox."""
        opening = asyncio.create_task(self._open(), name="charter-nats-connect")
        self._tasks.append(opening)
        done, _ = await asyncio.wait({opening}, timeout=STARTUP_WAIT_SECONDS)
        if not done:
            log.warning(
                "NATS at %s does not answer; serving without it, events wait in the outbox", self._url
            )
            await load_caches()
            self._tasks.append(
                asyncio.create_task(
                    self._follow_once_open(opening, load_caches), name="charter-nats-late-start"
                )
            )
            return
        after = opening.result()
        await load_caches()
        await self.follow(after)

    async def _follow_once_open(
        self, opening: asyncio.Task[int], load_caches: Callable[[], Awaitable[None]]
    ) -> None:
        after = await opening
        log.info("NATS answers: reloading caches and following %s", self.stream)
        await load_caches()
        await self.follow(after)

    async def _open(self) -> int:
        """Connect and set the stream up, trying until it works; returns the stream's last sequence."""
        wait = 0.5
        while True:
            try:
                if self._nc is None:
                    # Tries for ever (`max_reconnect_attempts=-1` applies to the first connection too),
                    # then reconnects for ever.
                    self._nc = await nats.connect(
                        self._url,
                        name="charter",
                        connect_timeout=5,
                        reconnect_time_wait=0.5,
                        max_reconnect_attempts=-1,
                        error_cb=self._error,
                        disconnected_cb=self._disconnected,
                        reconnected_cb=self._reconnected,
                    )
                    self._js = self._nc.jetstream(timeout=PUBLISH_TIMEOUT_SECONDS)
                await self._ensure_stream()
                self._ready = True
                return await self.stream_sequence()
            except (NatsError, OSError, TimeoutError) as exc:
                # JetStream not enabled or not ready yet after a server start.
                await self._error(exc)
                await asyncio.sleep(wait)
                wait = min(2 * wait, 10.0)

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.prefix}.>"],
                    duplicate_window=DUPLICATE_WINDOW_SECONDS,
                    max_age=MAX_AGE_SECONDS,
                )
            )
            log.info("created JetStream stream %s for %s.>", self.stream, self.prefix)

    async def stream_sequence(self) -> int:
        """The stream's last sequence now: a replica follows from the next one."""
        assert self._js is not None
        return (await self._js.stream_info(self.stream)).state.last_seq

    async def publish(self, item: Event) -> None:
        """Store one event in the stream; returns only once JetStream acknowledged it (else raises)."""
        if not self._ready or self._js is None or self._nc is None:
            raise ConnectionError(f"NATS at {self._url} has not answered yet")
        if not self._nc.is_connected:
            # Fail now rather than wait out the publish timeout: on SQLite the relay holds the write lock.
            raise ConnectionError(f"NATS at {self._url} is reconnecting")
        await self._js.publish(
            self.subject(item.topic),
            _encode(item),
            timeout=PUBLISH_TIMEOUT_SECONDS,
            stream=self.stream,
            headers={"Nats-Msg-Id": message_id(item)},
        )

    async def follow(self, after_sequence: int) -> None:
        """Hand every event stored after `after_sequence` to the bus, then every new one."""
        assert self._js is not None
        self.last_sequence = after_sequence
        await self._js.subscribe(
            f"{self.prefix}.>",
            stream=self.stream,
            cb=self._deliver,
            ordered_consumer=True,
            idle_heartbeat=HEARTBEAT_SECONDS,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after_sequence + 1
            ),
        )

    async def _deliver(self, msg: Msg) -> None:
        self.last_sequence = msg.metadata.sequence.stream
        try:
            item = _decode_event(msg.data)
        except msgspec.DecodeError:
            log.error("message %s on %s is not an event; skipped", self.last_sequence, msg.subject)
            return
        if item.id in self._recent:
            return
        self._recent[item.id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        await self._bus.publish(item)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

    async def _error(self, exc: Exception) -> None:
        # The client retries twice a second while a server is away: one line per ERROR_LOG_SECONDS.
        now = time.monotonic()
        if now - self._error_logged >= ERROR_LOG_SECONDS:
            self._error_logged = now
            log.warning("NATS at %s: %s", self._url, exc or type(exc).__name__)

    async def _disconnected(self) -> None:
        log.warning("NATS connection lost; reconnecting")

    async def _reconnected(self) -> None:
        log.info("NATS connection back")

    def delivery(self, once: InProcessBus) -> Handler:
        """What the relay hands each event to: the stream first (raises unless acknowledged), then
        this replica's once subscribers. Cache subscribers get it back from the stream."""

        async def deliver(item: Event) -> None:
            await self.publish(item)
            await once.publish(item)

        return deliver
