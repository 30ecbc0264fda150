"""Where the embedded gateway and its metrics are reached in the registry's HTTP app."""

from __future__ import annotations

import contextlib
import hmac
import logging
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, asgi, get
from litestar._asgi.utils import is_valid_host  # the check litestar's router makes, kept for the gateway
from litestar.handlers import ASGIRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.app import Gateway
from registry.api.problems import PROBLEM_JSON, problem_type
from registry.api.schemas import Problem
from registry.errors import Unauthenticated

if TYPE_CHECKING:
    from registry.settings import Settings

GATEWAY_PREFIX = "/gw"
log = logging.getLogger("charter.registry")


def gateway_mount(gateway: Gateway) -> ASGIRouteHandler:
    """Every method and sub-path under the prefix reaches the gateway's own ASGI app (the prefix itself,
    `/gw`, is the only one left to this route: `GatewayFirst` takes the rest before routing)."""

    async def gateway_app(scope: Any, receive: Any, send: Any) -> None:
        await gateway(scope, receive, send)

    return asgi(GATEWAY_PREFIX, is_mount=True, copy_scope=True, include_in_schema=False)(gateway_app)


class GatewayFirst:
    """The registry's HTTP entry: a request below the gateway's prefix goes straight to `gateway`, any
    other to `app` (litestar's router and everything behind it).

    The gateway routes by itself, from its compiled table; going through litestar first cost about a
    fifth of a gateway request (py-spy: its router, two exception middlewares wrapping `send`, and a
    copy of the scope for the mount). What litestar did on the way stays: a Host header its router
    would refuse goes to it, and so answers 400; an unexpected error is logged and answered 500
    problem+json, as the registry's exception handler does.
    """

    def __init__(self, gateway: ASGIApp, app: ASGIApp, *, prefix: str = GATEWAY_PREFIX) -> None:
        self.gateway = gateway
        self.app = app
        self._below = prefix.rstrip("/") + "/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self._below) or not _host_is_valid(scope):
            await self.app(scope, receive, send)
            return
        try:
            await self.gateway(scope, receive, send)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            # When the response has already started the server refuses a second one, and closes the
            # connection as it does for any response left unfinished.
            with contextlib.suppress(Exception):
                await _send_internal_error(send, scope["path"])


def _host_is_valid(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"host":
            return is_valid_host(value)
    return True


async def _send_internal_error(send: Send, path: str) -> None:
    problem = Problem(
        type=problem_type("internal-error"),
        title="Internal server error",
        status=500,
        detail="an unexpected error occurred",
        instance=path,
    )
    body = msgspec.json.encode(problem)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response[bytes]:
    """The gateway's and the registry's Prometheus metrics, in the text exposition format."""
    settings: Settings = request.app.state.settings
    if settings.metrics_token is not None:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        # Compared in constant time: the token is a password.
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), settings.metrics_token.encode()
        ):
            raise Unauthenticated("/metrics needs the bearer token CHARTER_METRICS_TOKEN names")
    gateway: Gateway = request.app.state.gateway
    registry_metrics = request.app.state.get("registry_metrics")
    if registry_metrics is not None:
        await registry_metrics.read_outbox(request.app.state.sessionmaker)
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
