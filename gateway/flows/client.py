"""The in-process client through which steps call system APIs: the gateway's own policy chain.

A call is an ASGI request to the gateway in this process (`/gw/{api}/v{major}{path}`): the flow's
own bearer token (its client's scopes decide what it may call), throttling and contract validation
apply exactly as to any consumer, and no socket is opened. Each call carries the step's
`Idempotency-Key` and the run's `traceparent`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import msgspec

from gateway.flows.declaration import RETRYABLE_STATUSES, StepFailed

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
TokenProvider = Callable[[str | None], Awaitable[str | None]]  # the flow's client id -> bearer token
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class SystemCallResult:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    def raise_for_status(self) -> None:
        if 200 <= self.status < 300:
            return
        problem = self.body if isinstance(self.body, dict) else None
        detail = (problem or {}).get("detail") or (problem or {}).get("title") or f"status {self.status}"
        raise StepFailed(
            f"{self.status}: {detail}",
            retryable=self.status in RETRYABLE_STATUSES,
            status=self.status,
            problem=problem,
        )


class GatewayClient:
    """Calls through `gateway` on behalf of one step of one run."""

    def __init__(
        self,
        gateway: Asgi,
        *,
        prefix: str,
        idempotency_key: str,
        traceparent: str,
        token: Callable[[], Awaitable[str | None]],
    ) -> None:
        self._gateway = gateway
        self._prefix = prefix
        self._idempotency_key = idempotency_key
        self._traceparent = traceparent
        self._token = token
        self._calls = 0

    async def request(
        self,
        api: str,
        major: int,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SystemCallResult:
        self._calls += 1
        # Several calls in one step each get a key of their own, stable across attempts.
        key = self._idempotency_key if self._calls == 1 else f"{self._idempotency_key}-{self._calls}"
        sent: dict[str, str] = {"idempotency-key": key, "accept": "application/json"}
        if self._traceparent:
            sent["traceparent"] = self._traceparent
        token = await self._token()
        if token:
            sent["authorization"] = f"Bearer {token}"
        body = b""
        if json is not None:
            body = _encoder.encode(json)
            sent["content-type"] = "application/json"
        sent.update({name.lower(): value for name, value in (headers or {}).items()})
        raw_path = f"{self._prefix}/{api}/v{major}/{path.lstrip('/')}"
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "root_path": "",
            "query_string": urlencode(dict(query or {})).encode(),
            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in sent.items()],
            "client": ("127.0.0.1", 0),
            "server": ("charter-flows", 0),
        }
        return await _call(self._gateway, scope, body)

    async def get(self, api: str, major: int, path: str, **kw: Any) -> SystemCallResult:
        return await self.request(api, major, "GET", path, **kw)

    async def post(self, api: str, major: int, path: str, **kw: Any) -> SystemCallResult:
        return await self.request(api, major, "POST", path, **kw)

    async def put(self, api: str, major: int, path: str, **kw: Any) -> SystemCallResult:
        return await self.request(api, major, "PUT", path, **kw)

    async def patch(self, api: str, major: int, path: str, **kw: Any) -> SystemCallResult:
        return await self.request(api, major, "PATCH", path, **kw)

    async def delete(self, api: str, major: int, path: str, **kw: Any) -> SystemCallResult:
        return await self.request(api, major, "DELETE", path, **kw)


async def _call(app: Asgi, scope: dict[str, Any], body: bytes) -> SystemCallResult:
    sent_body = False
    status = 500
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if sent_body:
            return {"type": "http.disconnect"}
        sent_body = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for name, value in message.get("headers", []):
                headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    content = b"".join(chunks)
    decoded: Any = None
    if content:
        try:
            decoded = msgspec.json.decode(content)
        except msgspec.DecodeError:
            decoded = content.decode("utf-8", "replace")
    return SystemCallResult(status=status, body=decoded, headers=headers)
