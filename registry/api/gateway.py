"""Where the embedded gateway and its metrics are mounted in the registry's HTTP app."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, asgi, get
from litestar.handlers import ASGIRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.app import Gateway

GATEWAY_PREFIX = "/gw"


def gateway_mount(gateway: Gateway) -> ASGIRouteHandler:
    """Every method and sub-path under the prefix reaches the gateway's own ASGI app."""

    async def gateway_app(scope: Any, receive: Any, send: Any) -> None:
        await gateway(scope, receive, send)

    return asgi(GATEWAY_PREFIX, is_mount=True, copy_scope=True, include_in_schema=False)(gateway_app)


@get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response[bytes]:
    """The gateway's Prometheus metrics, in the text exposition format."""
    gateway: Gateway = request.app.state.gateway
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
