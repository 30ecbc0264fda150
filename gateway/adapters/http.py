"""The HTTP upstream adapter: forwards to a base URL through one shared httpx connection pool."""

from __future__ import annotations

import asyncio
import logging

import httpx

from gateway.adapters.base import GatewayRequest, GatewayResponse, is_asserted_header
from gateway.routing import Operation
from gateway.tracing import NO_TRACING, Span, Tracing
from policies.egress import EgressRefused

log = logging.getLogger("charter.gateway")
# RFC 9110 section 7.6.1: connection-specific headers never cross a proxy. Host and length are ours
# to set; the consumer's token was checked here and is not the upstream's business. Headers the
# gateway asserts (trace, consumer) are dropped by `is_asserted_header` and set anew below.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "authorization",
    }
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRIES = 2


class UpstreamUnavailable(Exception):
    """The upstream refused the connection or broke it: 502."""


class UpstreamTimeout(Exception):
    """The upstream did not connect or answer in time: 504."""


class UpstreamForbidden(Exception):
    """The upstream's address is one the egress policy refuses (private, loopback, ...): 502."""


class HttpAdapter:
    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.tracing = tracing

    async def handle(self, request: GatewayRequest, operation: Operation) -> GatewayResponse:
        headers = [
            (k, v)
            for k, v in request.headers
            if (name := k.decode("latin-1").lower()) not in _HOP_BY_HOP and not is_asserted_header(name)
        ]
        if request.principal is not None:
            headers.append(
                (b"x-charter-consumer", (request.principal.client_id or request.principal.subject).encode())
            )
        url = (
            self.base_url
            + request.path
            + (f"?{request.query_string.decode('latin-1')}" if request.query_string else "")
        )
        span: Span | None = None
        if self.tracing.enabled:
            # A client span, child of the request's: the upstream continues the trace from it.
            span = self.tracing.start(
                request.method, kind="client", attributes=_client_attributes(request, url)
            )
            headers.append((b"traceparent", span.traceparent.encode()))
        else:
            headers.append((b"traceparent", request.traceparent.encode()))
        upstream = self.client.build_request(
            request.method, url, headers=headers, content=request.body, timeout=self.timeout
        )
        try:
            response = await self._send(upstream, request, span)
        except Exception as exc:
            if span is not None:
                span.set("error.type", type(exc).__name__)
                span.fail(str(exc))
                span.end()
            raise
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        if span is not None:
            span.set("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                span.fail(f"status {response.status_code}")
        return GatewayResponse(
            status=response.status_code, stream=_body(response, span), media_type=None, headers=kept
        )

    async def _send(
        self, upstream: httpx.Request, request: GatewayRequest, span: Span | None
    ) -> httpx.Response:
        # httpx's own transport retries would repeat any method; only idempotent ones may be repeated.
        attempts = 1 + (RETRIES if request.method in _IDEMPOTENT else 0)
        for attempt in range(attempts):
            if attempt and span is not None:
                span.set("http.request.resend_count", attempt)
            try:
                return await self.client.send(upstream, stream=True)
            except EgressRefused as exc:
                log.warning("upstream %s refused by the egress policy: %s", self.base_url, exc)
                raise UpstreamForbidden(f"the upstream of {request.api} is not an allowed address") from exc
            except httpx.TimeoutException as exc:
                if attempt + 1 == attempts:
                    raise UpstreamTimeout(f"{self.base_url} did not answer in time") from exc
            except httpx.TransportError as exc:
                if attempt + 1 == attempts:
                    raise UpstreamUnavailable(f"{self.base_url} is unreachable: {exc}") from exc
            await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _client_attributes(request: GatewayRequest, url: str) -> dict[str, str | int]:
    parsed = httpx.URL(url)
    attributes: dict[str, str | int] = {
        "http.request.method": request.method,
        "server.address": parsed.host,
        "url.full": url,
        "charter.api": request.api,
    }
    if parsed.port is not None:
        attributes["server.port"] = parsed.port
    return attributes


async def _body(response: httpx.Response, span: Span | None):  # type: ignore[no-untyped-def]
    """The upstream's body as it streams to the client; its span ends with it."""
    try:
        async for chunk in response.aiter_raw():
            yield chunk
    except httpx.TimeoutException:
        log.warning("upstream body timed out after the headers were sent")
        if span is not None:
            span.fail("body timed out")
    finally:
        await response.aclose()
        if span is not None:
            span.end()
