"""Charter's uvicorn protocol writes a response's head and body in one send, and never delays a head
that has no body to wait for: driven through the protocol with a transport that records its writes."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from registry.http_limits import header_deadline_protocol

GET = b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n"


class RecordingTransport(asyncio.Transport):
    """What the protocol sent, one entry per write, as a socket's transport would have sent it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            raise RuntimeError("write on a closed transport")  # as uvloop's does
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connection(app: Any) -> tuple[Any, RecordingTransport]:
    config = Config(app=app, http=header_deadline_protocol(10), lifespan="off", proxy_headers=False)
    config.load()
    protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)
    return protocol, transport


def answer(body: bytes) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_small_answer_goes_out_in_one_write() -> None:
    protocol, transport = connection(answer(b"hello"))
    protocol.data_received(GET)
    await settle()
    (written,) = transport.writes
    assert written.startswith(b"HTTP/1.1 200 OK\r\n")
    assert written.endswith(b"\r\n\r\nhello")
    protocol.connection_lost(None)


async def test_pipelined_answers_keep_their_order() -> None:
    protocol, transport = connection(answer(b"hello"))
    protocol.data_received(GET + GET)
    await settle()
    sent = b"".join(transport.writes)
    assert sent.count(b"HTTP/1.1 200 OK") == 2
    assert sent.endswith(b"hello")
    assert len(transport.writes) == 2  # one per answer
    protocol.connection_lost(None)


async def test_a_large_body_follows_its_head_unjoined() -> None:
    body = bytes(range(256)) * 1024  # 256 KiB: joining would copy it
    protocol, transport = connection(answer(body))
    protocol.data_received(GET)
    await settle()
    head, sent_body = transport.writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert sent_body == body
    protocol.connection_lost(None)


async def test_a_streamed_head_is_not_held_for_its_body() -> None:
    """A streaming answer's head leaves when the loop next turns, not when its first chunk is ready."""
    first_chunk = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await first_chunk.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": False})

    protocol, transport = connection(app)
    protocol.data_received(GET)
    await settle()
    (head,) = transport.writes
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"transfer-encoding: chunked" in head
    first_chunk.set()
    await settle()
    assert b"data: 1" in transport.writes[1]
    protocol.connection_lost(None)


async def test_a_head_only_answer_is_sent_when_its_response_ends() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    protocol, transport = connection(app)
    protocol.data_received(GET)
    await settle()
    assert b"".join(transport.writes).startswith(b"HTTP/1.1 204 No Content\r\n")
    protocol.connection_lost(None)


async def test_a_head_held_when_the_connection_is_lost_is_dropped() -> None:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    never = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await never.wait()

    protocol, transport = connection(app)
    protocol.data_received(GET)
    await asyncio.sleep(0)  # the app's task sent its head: held until the loop turns
    assert transport.writes == []
    transport.close()
    protocol.connection_lost(None)
    await settle()
    assert transport.writes == []
    assert errors == []
