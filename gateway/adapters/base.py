"""What an adapter receives and answers: the validated request, and a response to send back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec

from gateway.routing import Operation
from policies.auth import Principal

# Headers whose values the gateway vouches for: the caller's trace position (it forwards its own
# `traceparent`) and everything under `x-charter-` (the authenticated consumer, and whatever the
# gateway asserts there later). A client's copies never reach an adapter.
ASSERTED_HEADER_PREFIX = "x-charter-"
TRACE_HEADER = "traceparent"


def is_asserted_header(name: str) -> bool:
    name = name.lower()
    return name == TRACE_HEADER or name.startswith(ASSERTED_HEADER_PREFIX)


_TRACE_NAME, _ASSERTED_PREFIX = TRACE_HEADER.encode(), ASSERTED_HEADER_PREFIX.encode()


def is_asserted_header_name(name: bytes) -> bool:
    """`is_asserted_header` of a name as ASGI carries it, without decoding it first (every request)."""
    name = name.lower()
    return name == _TRACE_NAME or name.startswith(_ASSERTED_PREFIX)


class GatewayRequest(msgspec.Struct, kw_only=True):
    api: str
    version: str
    operation_id: str | None
    method: str
    path: str  # the path below the API and version, as sent (still percent-encoded)
    path_params: dict[str, str]
    query: dict[str, list[str]]
    query_string: bytes
    # As the ASGI scope carries them, asserted ones included: an adapter reads `headers`.
    received_headers: list[tuple[bytes, bytes]]
    body: bytes
    json: Any = None  # the body decoded, when it is JSON
    principal: Principal | None = None
    traceparent: str = ""

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The request's header fields less the asserted ones, names lower-case. Filtered when read:
        most handlers never read them, and filtering every request's cost about 0.5 us."""
        return [(k, v) for k, v in self.received_headers if not is_asserted_header_name(k)]


class GatewayResponse(msgspec.Struct, kw_only=True):
    status: int = 200
    body: Any = None  # encoded as JSON unless `content` or `stream` is given
    content: bytes | None = None
    stream: AsyncIterator[bytes] | None = None
    media_type: str | None = "application/json"
    headers: list[tuple[str, str]] = []


class Adapter(Protocol):
    async def handle(self, request: GatewayRequest, operation: Operation) -> GatewayResponse: ...
