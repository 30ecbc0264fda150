"""How long a client may take to send its request: the head, then the body.

uvicorn (0.54) has neither timeout: `timeout_keep_alive` covers only the idle time between requests and
is cancelled by the first byte received, so a client that trickles its header lines, or declares a
Content-Length it never sends, holds a connection (and, for a body, a request task) for as long as it
likes. The head is guarded where it is parsed, in uvicorn's protocol; the body where it is read, in an
ASGI middleware that can still answer 408 with a problem, because no response has started yet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from registry.api.problems import PROBLEM_JSON, problem_type
from registry.api.schemas import Problem


class BodyDeadline:
    """Answers 408 when a request body arrives too slowly: it has `timeout` seconds, plus one more for
    every `min_rate` bytes received, so an upload at `min_rate` or faster never times out and one that
    stalls, or never sends what its Content-Length promised, is cut off after `timeout`.

    The application reading the body is told the client went away (`http.disconnect`); whatever it
    sends or raises afterwards is dropped. Should its response already have started, nothing more is sent, and
    uvicorn closes a connection whose response was left unfinished.
    """

    def __init__(self, app: ASGIApp, *, timeout: float, min_rate: int) -> None:
        self.app = app
        self.timeout = timeout
        self.min_rate = min_rate
        self._detail = f"the request body did not arrive in time ({timeout:g} s, then {min_rate} bytes/s)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _declares_no_body(scope):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        received = 0
        complete = False
        timed_out = False
        responding = False

        async def receive_in_time() -> Any:
            nonlocal received, complete, timed_out
            if timed_out:
                return {"type": "http.disconnect"}
            if complete:
                return await receive()  # waiting for a disconnect is not the client's to hurry
            deadline = started + self.timeout + received / self.min_rate
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                if not responding:
                    await _send_timeout(send, scope, self._detail)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            return message

        async def send_unless_timed_out(message: Message) -> None:
            nonlocal responding
            if timed_out:
                return
            responding = responding or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_in_time, send_unless_timed_out)
        except Exception:
            # Told its client is gone, the application fails as it should (litestar raises, and then
            # again because a response, the 408, has started); the client has its answer already.
            if not timed_out:
                raise


def _declares_no_body(scope: Scope) -> bool:
    """An HTTP/1 request with neither Content-Length (or a zero one) nor Transfer-Encoding has no body
    (RFC 9112 6.3): the server holds it complete with its head, and nothing is left to wait for. Such
    requests (most gateway calls) skip the deadline's timer and wrapped `send`, some 5 us each."""
    if scope.get("http_version") not in ("1.1", "1.0"):
        return False  # HTTP/2 frames a body without either header
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return False
    return True


class ResponseWriter:
    """The transport as uvicorn's response cycle sees it: a response's head is held back until its body
    is written and both go out together, one send() system call and one TCP segment for a small
    answer where uvicorn makes two. The two writes were the largest cost of a request's time on the
    server (bench/gateway_profile.py); uvloop sends each at once.

    A head is never held past the end of the event loop's iteration (a streamed body may start later),
    the end of its response, or a write or close of the connection's own.
    """

    __slots__ = ("_held", "_loop", "hold", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self.hold = False  # set when a request's head is complete: the next write is its response's head

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            # Joining copies the body: worth it for small ones, where a second send() costs more.
            if len(data) <= 65536:
                self.transport.write(held + data)
                return
            self.transport.write(held)
        elif self.hold:
            self.hold = False
            self._held = data
            self._loop.call_soon(self.flush)
            return
        self.transport.write(data)

    def flush(self) -> None:
        held = self._held
        self._held = None
        # A connection lost meanwhile takes the head with it: writing to it now would be an error.
        if held is not None and not self.transport.is_closing():
            self.transport.write(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 408 and closing a connection whose request head is not
    complete `header_timeout` seconds after the connection opened or its previous response ended.

    Use `header_deadline_protocol` to choose the timeout; uvicorn builds the protocol itself.

    One timer per connection, not one per request: a request only notes when the wait for the next
    head began, and the timer, when it fires, either finds that head late or sets itself again for
    what is left. Scheduling and cancelling a timer for every request cost about 5% of a gateway
    request's CPU time.
    """

    header_timeout: ClassVar[float] = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._awaiting_head_since: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._writer = ResponseWriter(transport, self.loop)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._awaiting_head_since = None
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._awaiting_head_since = None
        super().on_headers_complete()
        # Its response writes through the writer (uvicorn made the cycle with the bare transport; its
        # task runs from the next iteration of the loop on).
        if self.cycle is not None:
            self.cycle.transport = self._writer  # type: ignore[assignment]
            self._writer.hold = True

    def on_response_complete(self) -> None:
        self._writer.flush()
        super().on_response_complete()
        if not self.transport.is_closing():
            self._writer.hold = True  # a pipelined request's answer, started just now, comes next
            self._await_head()  # the next request on this kept-alive connection

    def send_400_response(self, msg: str) -> None:
        self._writer.flush()  # a response still held goes out before the connection's own answer
        super().send_400_response(msg)

    def shutdown(self) -> None:
        self._writer.flush()
        super().shutdown()

    def _await_head(self) -> None:
        self._awaiting_head_since = self.loop.time()
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.header_timeout, self._check_head)

    def _check_head(self) -> None:
        self._head_deadline = None
        since = self._awaiting_head_since
        if since is None or self.transport.is_closing():
            return  # a request is being read or answered; its response's end waits for the next head
        left = since + self.header_timeout - self.loop.time()
        if left > 0:
            self._head_deadline = self.loop.call_later(left, self._check_head)
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a pipelined request is being answered; its end waits for the next head again
        self._writer.flush()
        detail = f"the request head did not arrive within {self.header_timeout:g} s"
        head, body = _timeout_response(detail, instance=None)
        lines = [b"HTTP/1.1 408 Request Timeout", *(name + b": " + value for name, value in head)]
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        self.transport.close()


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class to hand uvicorn (`http=`), with its head timeout set."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})


def _timeout_response(detail: str, instance: str | None) -> tuple[list[tuple[bytes, bytes]], bytes]:
    problem = Problem(
        type=problem_type("request-timeout"),
        title="Request timeout",
        status=408,
        detail=detail,
        instance=instance,
    )
    body = msgspec.json.encode(problem)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return headers, body


async def _send_timeout(send: Send, scope: Scope, detail: str) -> None:
    headers, body = _timeout_response(detail, instance=scope.get("path"))
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
