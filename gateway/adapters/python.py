"""Python handler adapters: an operationId mapped to an async function.

Handlers come from the `charter.adapters` entry-point group (a package declares
`[project.entry-points."charter.adapters"] name = "module:handlers"`, where `handlers` maps
operationIds to async functions) or are given directly by configuration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from gateway.adapters.base import GatewayRequest, GatewayResponse
from gateway.routing import Operation

Handler = Callable[[GatewayRequest], Awaitable[Any]]
ENTRY_POINT_GROUP = "charter.adapters"


class UnknownAdapter(Exception):
    pass


class PythonAdapter:
    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)

    @classmethod
    def from_entry_point(cls, name: str) -> PythonAdapter:
        found = entry_points(group=ENTRY_POINT_GROUP, name=name)
        if not found:
            raise UnknownAdapter(f"no `{ENTRY_POINT_GROUP}` entry point named {name!r}")
        handlers = next(iter(found)).load()
        if not isinstance(handlers, Mapping):
            raise UnknownAdapter(f"entry point {name!r} is not a mapping of operationIds to handlers")
        return cls(handlers)

    async def handle(self, request: GatewayRequest, operation: Operation) -> GatewayResponse:
        handler = self.handlers.get(operation.operation_id or "")
        if handler is None:
            return GatewayResponse(
                status=501,
                media_type="application/problem+json",
                body={
                    "type": "/problems/not-implemented",
                    "title": "Not implemented",
                    "status": 501,
                    "detail": f"no handler for {operation.label}",
                },
            )
        result = await handler(request)
        if isinstance(result, GatewayResponse):
            return result
        return GatewayResponse(status=200 if result is not None else 204, body=result)
