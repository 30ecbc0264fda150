"""What every simulated system of the demo shares: call counts, injected faults, idempotent writes.

A simulated system is a set of in-memory handlers behind the gateway (the gateway has already
authenticated the caller and validated the request against the system's contract). Around each
handler it counts the call, applies the fault an admin injected (a delay, then the next N calls
answer an error status), and replays the first answer of a write that carries an `Idempotency-Key`
(draft-ietf-httpapi-idempotency-key-header), so that a flow retrying a step never creates a second
record.
"""

from __future__ import annotations

import asyncio
import hashlib
from abc import ABC, abstractmethod
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from gateway.adapters.base import GatewayRequest, GatewayResponse

PROBLEM = "application/problem+json"
Handler = Callable[[GatewayRequest], Awaitable[Any]]
# Anyone with a system's write scope can add records: the demo keeps a bounded amount per system.
MAX_RECORDS = 10_000
MAX_REMEMBERED_KEYS = 10_000


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """What the system does to its next calls: wait `delay_ms` on each, fail the next `fail_next`."""

    fail_next: int = 0
    status: int = 503
    delay_ms: int = 0


class StoreFull(Exception):
    """The system holds MAX_RECORDS records of a kind already."""


def problem(status: int, slug: str, title: str, detail: str) -> GatewayResponse:
    return GatewayResponse(
        status=status,
        media_type=PROBLEM,
        body={"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail},
    )


def not_found(what: str) -> GatewayResponse:
    return problem(404, "not-found", "Not found", f"no {what}")


def admit(records: Mapping[str, Any], what: str) -> None:
    """Raise StoreFull before a new record would pass the bound."""
    if len(records) >= MAX_RECORDS:
        raise StoreFull(f"the demo holds {MAX_RECORDS} {what} already")


def query_value(request: GatewayRequest, name: str) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else None


class _Reply(msgspec.Struct, frozen=True):
    fingerprint: str
    response: GatewayResponse


class SimulatedSystem(ABC):
    """One simulated system: its handlers by operationId, its call counts and its current fault."""

    name: str = ""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.fault = Fault()
        self._replies: OrderedDict[tuple[str, str, str], _Reply] = OrderedDict()

    @abstractmethod
    def operations(self) -> Mapping[str, Handler]:
        """The system's handlers by operationId, unwrapped."""

    def set_fault(self, fault: Fault) -> None:
        self.fault = fault

    def handlers(self) -> dict[str, Handler]:
        """The system's handlers, each wrapped in counting, faults and idempotency."""
        return {operation_id: self._wrap(operation_id, h) for operation_id, h in self.operations().items()}

    def _wrap(self, operation_id: str, handler: Handler) -> Handler:
        async def handle(request: GatewayRequest) -> GatewayResponse:
            self.calls[operation_id] += 1
            if self.fault.delay_ms:
                await asyncio.sleep(self.fault.delay_ms / 1000)
            if self.fault.fail_next > 0:
                self.fault = msgspec.structs.replace(self.fault, fail_next=self.fault.fail_next - 1)
                return problem(
                    self.fault.status,
                    "injected-fault",
                    "Injected fault",
                    f"the demo {self.name} system was told to fail this call",
                )
            key = _idempotency_key(request)
            if request.method == "GET" or key is None:
                return await self._answer(handler, request)
            return await self._once(operation_id, key, handler, request)

        return handle

    async def _once(
        self, operation_id: str, key: str, handler: Handler, request: GatewayRequest
    ) -> GatewayResponse:
        # Keys are scoped to the caller: one consumer cannot read another's answers by their key.
        subject = request.principal.subject if request.principal is not None else ""
        slot = (subject, operation_id, key)
        fingerprint = hashlib.sha256(
            request.method.encode() + b" " + request.path.encode() + b"\n" + request.body
        ).hexdigest()
        earlier = self._replies.get(slot)
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                return problem(
                    422,
                    "idempotency-key-reused",
                    "Idempotency key reused",
                    "this Idempotency-Key was sent before with a different request",
                )
            return earlier.response
        # The handlers never wait on anything, so no second request with this key can start in between.
        response = await self._answer(handler, request)
        # Server errors may be retried with the same key and get a fresh attempt.
        if response.status < 500:
            self._replies[slot] = _Reply(fingerprint, response)
            while len(self._replies) > MAX_REMEMBERED_KEYS:
                self._replies.popitem(last=False)
        return response

    async def _answer(self, handler: Handler, request: GatewayRequest) -> GatewayResponse:
        try:
            result = await handler(request)
        except StoreFull as exc:
            return problem(507, "demo-store-full", "Demo store full", str(exc))
        if isinstance(result, GatewayResponse):
            return result
        return GatewayResponse(status=200, body=result)


def _idempotency_key(request: GatewayRequest) -> str | None:
    for name, value in request.headers:
        if name == b"idempotency-key":
            # Kept as a digest: the remembered answers cost the same whatever the key's length.
            return hashlib.sha256(value).hexdigest()
    return None
