"""The gateway: an ASGI app that runs the policy chain in front of the adapters it hosts.

`/gw/{api}/v{major}/{path}` (or `/gw/{api}/{path}` with an `API-Version` header, or the latest
published version): resolve the version (410 when retired, Deprecation/Sunset/Link when
deprecated), match the operation, authenticate and check its scopes, throttle by SLA tier and
consumer, validate the request, then call the adapter bound to the API.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import msgspec

from contracts.loading import LoadLimits
from contracts.plural import counted
from gateway.adapters.base import Adapter, GatewayRequest, GatewayResponse
from gateway.adapters.http import HttpAdapter, UpstreamForbidden, UpstreamTimeout, UpstreamUnavailable
from gateway.adapters.mock import MockAdapter
from gateway.adapters.python import Handler, PythonAdapter, UnknownAdapter
from gateway.egress import guarded_client
from gateway.observability import (
    REFUSED,
    SERVED,
    AccessLog,
    AccessRecord,
    GatewayMetrics,
    UsageCounter,
    traceparent,
)
from gateway.plan import OperationPlan
from gateway.routing import ApiRoutes, Operation, compile_routes, with_routes_of
from gateway.service_levels import ServiceLevelCounter
from gateway.source import AdapterBinding, ContractSource
from gateway.tracing import NO_TRACING, Span, Tracing
from gateway.validation import MAX_VALIDATED_DEPTH, UnenforceableSchema, UnsupportedMediaType
from policies.auth import InvalidToken, Principal, challenge
from policies.egress import EgressPolicy
from policies.throttle import RateLimitDecision, Throttle, ThrottleUnavailable
from policies.versioning import (
    UnknownVersion,
    VersionInfo,
    VersionState,
    deprecation_headers,
    resolve_version,
)

log = logging.getLogger("charter.gateway")
Authenticate = Callable[[str], Awaitable[Principal]]
# Builds the adapter of a binding kind the core does not know (the flow adapter): the composition
# root hands these in, so the core never imports what it hosts.
AdapterFactory = Callable[[AdapterBinding, str], Adapter | None]
PROBLEM = "application/problem+json"
_MAJOR = re.compile(r"^v(\d+)$")
_encoder = msgspec.json.Encoder()


class GatewayConfig(msgspec.Struct, frozen=True, kw_only=True):
    prefix: str = "/gw"
    public_url: str = ""  # for Link headers to successor versions
    throttle_shadow: bool = False  # report what would be throttled, throttle nothing
    throttle_per_operation: bool = False  # one budget per consumer and operation, not per API
    validate_requests: bool = True
    # Shadow mode only: a response that breaks the contract is logged and counted, never altered.
    validate_responses: bool = False
    max_body_bytes: int = 10 * 1024 * 1024  # larger request bodies get 413
    max_body_depth: int = 64  # a JSON body nested deeper gets 400, before any schema sees it

    def __post_init__(self) -> None:
        if not 1 <= self.max_body_depth <= MAX_VALIDATED_DEPTH:
            raise ValueError(f"max_body_depth must be between 1 and {MAX_VALIDATED_DEPTH}")
        if self.max_body_bytes < 1:
            raise ValueError("max_body_bytes must be positive")


class _Refusal(Exception):
    """A request stopped by a policy: answered as problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        errors: list[dict[str, str]] | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.title, self.detail = status, slug, title, detail
        self.headers = headers or []
        self.errors = errors
        self.reason = reason or slug


class Gateway:
    def __init__(
        self,
        source: ContractSource,
        *,
        authenticate: Authenticate,
        throttle: Throttle,
        config: GatewayConfig | None = None,
        handlers: Mapping[str, Mapping[str, Handler]] | None = None,
        metrics: GatewayMetrics | None = None,
        access_log: AccessLog | None = None,
        egress: EgressPolicy | None = None,
        adapter_factories: Mapping[str, AdapterFactory] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.source = source
        self.tracing = tracing or NO_TRACING
        self._factories = dict(adapter_factories or {})
        self.authenticate = authenticate
        self.throttle = throttle
        self.config = config or GatewayConfig()
        self._body_limits = LoadLimits(
            max_bytes=self.config.max_body_bytes, max_depth=self.config.max_body_depth
        )
        self.metrics = metrics or GatewayMetrics()
        self.access_log = access_log or AccessLog(sys.stderr.buffer)
        self.usage = UsageCounter()
        # Measured against each API's SLA; the registry drains it as it drains `usage`.
        self.service_levels = ServiceLevelCounter()
        self._handlers = dict(handlers or {})
        # Upstream URLs come from API owners: only public addresses, or those the operator allows.
        self._http = guarded_client(
            egress or EgressPolicy(),
            timeout=httpx.Timeout(10, connect=2),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )
        self._table: dict[str, ApiRoutes] = {}
        self._adapters: dict[str, _Bound] = {}
        # Which reload (numbered as they start) set each API's routes, and the last full one.
        self._reloads_started = 0
        self._everything_loaded_by = 0
        self._api_loaded_by: dict[str, int] = {}

    async def reload(self, names: Collection[str] | None = None) -> None:
        """Recompile the routing table from the source (called when a version changes state): every
        API, or only the APIs in `names`, the others keeping their compiled routes and adapters.

        Reloads overlap (the announcements' background reload, a direct one after a backup import),
        and one that read the source earlier can finish later: an API's routes are set only by a
        reload started after the one that set them last, which read every change the earlier one
        was started for."""
        self._reloads_started += 1
        generation = self._reloads_started
        fresh = compile_routes(await self.source.load(names))
        named = set(fresh) | set(self._table) if names is None else set(names)
        taken = [name for name in named if self._loaded_by(name) < generation]
        adapters = dict(self._adapters)
        for name in taken:
            adapters.pop(name, None)
            if name in fresh:
                adapters[name] = self._bind(fresh[name].adapter, name)
        self._adapters = adapters
        self._table = with_routes_of(
            self._table, taken, {name: fresh[name] for name in taken if name in fresh}
        )
        if names is None:
            self._everything_loaded_by = max(self._everything_loaded_by, generation)
            self._api_loaded_by = {
                name: by for name, by in self._api_loaded_by.items() if by > self._everything_loaded_by
            }
        else:
            self._api_loaded_by.update(dict.fromkeys(taken, generation))

    def _loaded_by(self, api: str) -> int:
        return max(self._api_loaded_by.get(api, 0), self._everything_loaded_by)

    async def aclose(self) -> None:
        self.access_log.flush()
        await self._http.aclose()

    def _bind(self, binding: AdapterBinding | None, api: str) -> _Bound:
        if binding is None:
            return _Bound(None, {})
        singles = binding.operations or {}
        operations = {operation_id: self._adapter(single, api) for operation_id, single in singles.items()}
        return _Bound(self._adapter(binding, api), operations)

    def _adapter(self, binding: AdapterBinding | None, api: str) -> Adapter | None:
        if binding is None:
            return None
        if binding.kind in self._factories:
            return self._factories[binding.kind](binding, api)
        if binding.kind == "mock":
            return MockAdapter()
        if binding.kind == "http" and binding.url:
            return HttpAdapter(
                self._http,
                binding.url,
                connect_timeout=binding.connect_timeout,
                read_timeout=binding.read_timeout,
                tracing=self.tracing,
            )
        if binding.kind == "python" and binding.entry_point:
            if binding.entry_point in self._handlers:
                return PythonAdapter(self._handlers[binding.entry_point])
            try:
                return PythonAdapter.from_entry_point(binding.entry_point)
            except UnknownAdapter:
                return None
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        headers = _Headers(scope["headers"])
        if self.tracing.enabled:
            await self._traced(scope, receive, send, headers, started)
            return
        state = _RequestState(method=scope["method"], trace=traceparent(headers.field(b"traceparent")))
        await self._respond(scope, receive, send, headers, started, state)

    async def _traced(
        self, scope: dict[str, Any], receive: Any, send: Any, headers: _Headers, started: float
    ) -> None:
        """A request under a server span: it continues the caller's trace (or starts one), is current
        while the request is handled (an upstream call or a flow run descends from it), and the
        `traceparent` the client gets back names it."""
        span = self.tracing.start(scope["method"], parent=headers.field(b"traceparent") or "", kind="server")
        token = self.tracing.activate(span)  # current even unsampled: what it calls stays in its trace
        recording = span.recording  # an unsampled span is not described: the cost is in the SDK
        state = _RequestState(
            method=scope["method"], trace=span.traceparent, span=span if recording else None
        )
        try:
            await self._respond(scope, receive, send, headers, started, state)
        except Exception as exc:
            span.fail(type(exc).__name__)
            raise
        finally:
            self.tracing.deactivate(token)
            if recording:
                _describe(span, state)
            span.end()

    async def _respond(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        headers: _Headers,
        started: float,
        state: _RequestState,
    ) -> None:
        trace = state.trace
        try:
            response = await self._handle(scope, receive, headers, state)
            extra = state.headers
        except _Refusal as refusal:
            state.refused = refusal.status < 500  # the gateway's own errors are the API's latency
            if refusal.status >= 400 and state.api:
                self.metrics.rejected.labels(state.api, refusal.reason).inc()
            if state.span is not None:
                state.span.event("charter.refused", {"charter.reason": refusal.reason})
            response, extra = _problem(refusal, scope), [*_encoded(refusal.headers), *state.headers]
        state.status = response.status
        extra.append((b"traceparent", trace.encode("latin-1")))
        await _send(send, response, extra)
        elapsed = time.perf_counter() - started
        plan = state.plan
        outcome = REFUSED if state.refused else SERVED
        if plan is not None:
            if state.consumer and response.status < 400:
                self.usage.record(plan.api, plan.version, plan.operation_key, state.consumer)
            plan.series.record(response.status, elapsed, outcome)
        elif state.api is not None:
            self.metrics.requests.series(state.api, state.version or "", "").record(
                response.status, elapsed, outcome
            )
        if state.version is not None:
            self.service_levels.record(state.api or "", state.version, response.status, elapsed)
        if self.access_log.stream is None:
            return
        self.access_log.write(
            AccessRecord(
                api=state.api,
                version=state.version,
                operation=state.operation,
                consumer=state.consumer,
                method=state.method,
                path=(scope.get("raw_path") or b"").decode("latin-1") or scope.get("path", ""),
                status=response.status,
                # round(x, 3) takes a decimal conversion of x, several times the cost of this.
                latency_ms=round(elapsed * 1e6) / 1000,
                throttled=state.throttled,
                trace=trace,
            )
        )

    async def _handle(
        self, scope: dict[str, Any], receive: Any, headers: _Headers, state: _RequestState
    ) -> GatewayResponse:
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
        relative = raw_path.removeprefix(scope.get("root_path", "")).removeprefix(self.config.prefix)
        segments = relative.lstrip("/").split("/", 2)
        api_name = segments[0]
        routes = self._table.get(api_name)
        if routes is None:
            raise _Refusal(404, "unknown-api", "Not found", f"no API {api_name!r} is published here")
        state.api = api_name
        major_match = _MAJOR.match(segments[1]) if len(segments) > 1 else None
        rest = "/".join(segments[2:] if major_match else segments[1:])
        path = "/" + rest
        major = int(major_match.group(1)) if major_match else None
        requested = None if major_match else headers.field(b"api-version")
        info = routes.resolved.get((major, requested))
        if info is None:
            try:
                info = resolve_version(routes.versions, major=major, requested=requested)
            except UnknownVersion as exc:
                raise _Refusal(404, "unknown-version", "Not found", f"{api_name}: {exc}") from None
            # Bounded: the table is rebuilt on every version change, and odd headers are not kept.
            if len(routes.resolved) < 64:
                routes.resolved[(major, requested)] = info
        state.version = info.version
        if info.state is VersionState.RETIRED:
            live = routes.successors.get(info.version)
            use = f"; use {live.version}" if live else ""
            link = [("link", f'<{self._major_url(api_name, live)}>; rel="successor-version"')] if live else []
            raise _Refusal(
                410, "version-retired", "Gone", f"{api_name} {info.version} is retired{use}", headers=link
            )
        if info.state is VersionState.DEPRECATED:
            state.headers += _encoded(self._deprecation(api_name, info, routes))

        found = routes.routes[info.version].trie.match(path)
        if found is None:
            raise _Refusal(404, "unknown-path", "Not found", f"{api_name} {info.version} has no path {path}")
        operations, values = found
        method = "GET" if state.method == "HEAD" and "HEAD" not in operations else state.method
        operation = operations.get(method)
        if operation is None:
            allow = ", ".join(sorted(operations))
            raise _Refusal(
                405,
                "method-not-allowed",
                "Method not allowed",
                f"{path} allows {allow}",
                headers=[("allow", allow)],
            )
        plan: OperationPlan | None = operation.plan
        if plan is None:
            plan = operation.plan = self._plan(api_name, info.version, routes, operation)
        state.plan = plan
        state.operation = plan.label

        principal = await self._authorize(plan, headers)
        state.consumer = (principal.client_id or principal.subject) if principal else None
        span = state.span
        # Policies as events, which say when each passed (their outcome is on the span): a child span
        # each cost more (bench/tracing.py).
        if span is not None:
            span.event("charter.auth")
        if plan.rate_limit is not None:
            await self._throttle(plan, scope, state)
            if span is not None:
                span.event("charter.throttle")

        message = await receive()
        if message["type"] == "http.request" and not message.get("more_body"):  # a GET's, most bodies
            body: bytes = message.get("body", b"")
            if len(body) > self.config.max_body_bytes:
                raise _body_too_large(self.config.max_body_bytes)
        else:
            body = await _read_body(receive, message, self.config.max_body_bytes)
        path_params = dict(zip(operation.path_params, values, strict=True))
        query_string = scope.get("query_string", b"")
        query = parse_qs(query_string.decode("latin-1"), keep_blank_values=True) if query_string else {}
        decoded = None
        if plan.unenforceable is not None:
            reason = plan.unenforceable
            detail = f"{api_name} {info.version} cannot be enforced: its schema at {reason}; publish a fix"
            raise _Refusal(503, "contract-not-enforceable", "Service unavailable", detail)
        if plan.validator is not None:
            try:
                content_type = headers.field(b"content-type") or ""
                violations, decoded = plan.validator.validate(
                    path_params, query, headers, body, content_type, limits=self._body_limits
                )
            except UnsupportedMediaType as exc:
                raise _Refusal(415, "unsupported-media-type", "Unsupported media type", str(exc)) from None
            if violations:
                raise _Refusal(
                    400,
                    "invalid-request",
                    "Invalid request",
                    f"{counted(len(violations), 'violation')} of {api_name} {info.version} {operation.label}",
                    errors=[{"pointer": v.pointer, "message": v.message} for v in violations],
                )
            if span is not None:
                span.event("charter.validation")

        adapter = plan.adapter
        if adapter is None:
            raise _Refusal(503, "no-adapter", "Service unavailable", f"no adapter is bound to {api_name}")
        request = GatewayRequest(
            api=api_name,
            version=info.version,
            operation_id=operation.operation_id,
            method=state.method,
            path=path,
            path_params=path_params,
            query=query,
            query_string=query_string,
            received_headers=scope["headers"],
            body=body,
            json=decoded,
            principal=principal,
            traceparent=state.trace,
        )
        try:
            response = await adapter.handle(request, operation)
        except UpstreamTimeout as exc:
            raise _Refusal(504, "upstream-timeout", "Gateway timeout", str(exc)) from None
        except UpstreamUnavailable as exc:
            raise _Refusal(502, "upstream-unavailable", "Bad gateway", str(exc)) from None
        except UpstreamForbidden as exc:
            raise _Refusal(502, "upstream-forbidden", "Bad gateway", str(exc)) from None
        if self.config.validate_responses and response.stream is None and response.content is None:
            self._check_response(operation, response, state)
        return response

    def _plan(self, api: str, version: str, routes: ApiRoutes, operation: Operation) -> OperationPlan:
        bound = self._adapters.get(api)
        label = operation.label
        return OperationPlan(
            api=api,
            version=version,
            operation=operation,
            adapter=bound.for_operation(operation.operation_id) if bound is not None else None,
            rate_limit=routes.rate_limit,
            per_operation_budget=self.config.throttle_per_operation,
            validate=self.config.validate_requests,
            series=self.metrics.requests.series(api, version, label),
        )

    def _check_response(self, operation: Operation, response: GatewayResponse, state: _RequestState) -> None:
        try:
            violations = operation.validator.validate_response(
                response.status, response.media_type or "", response.body
            )
        except UnenforceableSchema as exc:
            log.warning(
                "%s %s %s: response not checked, schema at %s", state.api, state.version, operation.label, exc
            )
            return
        if violations:
            self.metrics.response_violations.labels(state.api or "", operation.label).inc()
            log.warning(
                "%s %s %s answered outside its contract: %s",
                state.api,
                state.version,
                operation.label,
                "; ".join(f"{v.pointer}: {v.message}" for v in violations[:5]),
            )

    def _deprecation(self, api: str, info: VersionInfo, routes: ApiRoutes) -> list[tuple[str, str]]:
        if info.state is not VersionState.DEPRECATED:
            return []
        live = routes.successors.get(info.version)
        successor = self._major_url(api, live) if live else None
        return list(deprecation_headers(info, successor).items())

    def _major_url(self, api: str, info: VersionInfo) -> str:
        return f"{self.config.public_url}{self.config.prefix}/{quote(api)}/v{info.semver.major}"

    async def _authorize(self, plan: OperationPlan, headers: _Headers) -> Principal | None:
        token = _bearer(headers.field(b"authorization"))
        if token is None:
            if not plan.auth_required:
                return None
            raise _Refusal(
                401,
                "unauthenticated",
                "Authentication required",
                "a bearer token is required",
                headers=[("www-authenticate", plan.missing_token)],
                reason="unauthenticated",
            )
        try:
            principal = await self.authenticate(token)
        except InvalidToken as exc:
            raise _Refusal(
                401,
                "invalid-token",
                "Authentication required",
                str(exc),
                headers=[("www-authenticate", challenge(error="invalid_token", description=str(exc)))],
            ) from None
        if not plan.auth_required:
            return principal
        granted = principal.scopes
        for alternative in plan.alternatives:
            if alternative <= granted:
                return principal
        best = min(plan.alternatives, key=lambda alternative: len(alternative - granted))
        wanted = sorted(best)
        raise _Refusal(
            403,
            "insufficient-scope",
            "Forbidden",
            f"{plan.label} needs scope {' '.join(wanted)}",
            headers=[("www-authenticate", challenge(error="insufficient_scope", scope=wanted))],
        )

    async def _throttle(self, plan: OperationPlan, scope: dict[str, Any], state: _RequestState) -> None:
        policy = plan.rate_limit
        assert policy is not None
        consumer = state.consumer or "ip:" + str((scope.get("client") or ("unknown",))[0])
        try:
            decision: RateLimitDecision = await self.throttle.check(
                f"{plan.api}:{consumer}{plan.throttle_suffix}", policy
            )
        except ThrottleUnavailable:
            # The store's timeout is a fraction of a second: a client may try again soon.
            raise _Refusal(
                503,
                "throttle-unavailable",
                "Service unavailable",
                "the rate-limit store cannot be reached",
                headers=[("retry-after", "1")],
            ) from None
        if decision.degraded:
            self.metrics.degraded.labels(plan.api).inc()
        if decision.allowed and not decision.degraded:  # a degraded decision's numbers are a guess
            state.headers += decision.header_fields()
        if decision.allowed:
            return
        state.throttled = True
        self.metrics.throttled.labels(plan.api, str(self.config.throttle_shadow).lower()).inc()
        if self.config.throttle_shadow:
            return
        raise _Refusal(
            429,
            "quota-exceeded",
            "Too many requests",
            f"{consumer} is over the {policy.name} quota of {plan.api}",
            headers=list(decision.headers().items()),
        )


class _Bound:
    """An API's adapters: its default, and those bound to single operationIds."""

    __slots__ = ("default", "operations")

    def __init__(self, default: Adapter | None, operations: dict[str, Adapter | None]) -> None:
        self.default = default
        self.operations = operations

    def for_operation(self, operation_id: str | None) -> Adapter | None:
        if operation_id is not None and operation_id in self.operations:
            return self.operations[operation_id]
        return self.default


class _Headers(Mapping[str, str]):
    """A request's header fields by name as ASGI carries them (lower-case latin-1 bytes), a repeated
    field's last value winning. A value is decoded only when asked for: the policy chain reads a few
    fields, and decoding every one into a dict of its own cost 1-3 us a request."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Iterable[tuple[bytes, bytes]]) -> None:
        self._fields = dict(fields)

    def field(self, name: bytes) -> str | None:
        value = self._fields.get(name)
        return None if value is None else value.decode("latin-1")

    def __getitem__(self, name: str) -> str:
        try:
            return self._fields[name.encode("latin-1")].decode("latin-1")
        except UnicodeEncodeError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return (name.decode("latin-1") for name in self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class _RequestState:
    __slots__ = (
        "api",
        "consumer",
        "headers",
        "method",
        "operation",
        "plan",
        "refused",
        "span",
        "status",
        "throttled",
        "trace",
        "version",
    )

    def __init__(self, *, method: str, trace: str, span: Span | None = None) -> None:
        self.method = method
        self.trace = trace
        self.span = span
        self.status = 0
        self.api: str | None = None
        self.version: str | None = None
        self.operation: str | None = None
        self.plan: OperationPlan | None = None
        self.consumer: str | None = None
        self.throttled = False
        self.refused = False
        self.headers: list[tuple[bytes, bytes]] = []  # as sent: lower-case latin-1


def _describe(span: Span, state: _RequestState) -> None:
    """The request's span named and described by what the gateway learnt of it."""
    if state.api is not None:
        span.rename(f"{state.method} {state.api} {state.operation or ''}".rstrip())
    span.set_many(
        {
            "http.request.method": state.method,
            "http.response.status_code": state.status or None,
            "charter.api": state.api,
            "charter.api.version": state.version,
            "charter.operation": state.operation,
            "charter.consumer": state.consumer,
            "charter.throttled": state.throttled,
        }
    )
    if state.status >= 500:
        span.fail(f"status {state.status}")


def _bearer(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _read_body(receive: Any, message: dict[str, Any], limit: int) -> bytes:
    """The body of a request whose first message, `message`, did not carry all of it."""
    chunks: list[bytes] = []
    size = 0
    while message["type"] != "http.disconnect":
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            break
        message = await receive()
    return b"".join(chunks)


def _body_too_large(limit: int) -> _Refusal:
    return _Refusal(413, "body-too-large", "Request body too large", f"at most {limit} bytes")


def _problem(refusal: _Refusal, scope: dict[str, Any]) -> GatewayResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{refusal.slug}",
        "title": refusal.title,
        "status": refusal.status,
        "detail": refusal.detail,
        "instance": scope.get("path", ""),
    }
    if refusal.errors:
        body["errors"] = refusal.errors
    return GatewayResponse(status=refusal.status, body=body, media_type=PROBLEM)


def _encoded(headers: Collection[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _send(send: Any, response: GatewayResponse, extra: list[tuple[bytes, bytes]]) -> None:
    # The gateway's own fields come encoded (the rate-limit policy's once per policy): only an adapter's
    # are encoded here.
    headers = _encoded(response.headers) + extra if response.headers else extra
    if response.stream is not None:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        async for chunk in response.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if response.content is not None:
        content = response.content
    elif response.body is None or response.status in (204, 304):
        content = b""
    else:
        content = _encoder.encode(response.body)
    if response.media_type and content:
        headers.append((b"content-type", response.media_type.encode("latin-1")))
    headers.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
