"""Tracing through OpenTelemetry: spans batched and exported over OTLP/HTTP (see `gateway.tracing`).

Imported only when tracing is configured. The provider is this app's own, not OpenTelemetry's
process-wide one: a process (a test run) may build several apps, each exporting where it was told,
and the global provider can be set only once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway.tracing import Attributes, Span, SpanKind, Tracing, TracingConfig

_KINDS = {
    "internal": trace.SpanKind.INTERNAL,
    "server": trace.SpanKind.SERVER,
    "client": trace.SpanKind.CLIENT,
}
_propagator = TraceContextTextMapPropagator()


class OtelSpan(Span):
    __slots__ = ("span",)

    def __init__(self, span: trace.Span) -> None:
        self.span = span

    @property
    def traceparent(self) -> str:  # type: ignore[override]
        context = self.span.get_span_context()
        return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"

    @property
    def recording(self) -> bool:  # type: ignore[override]
        return self.span.is_recording()

    def set(self, key: str, value: str | int | float | bool | None) -> None:
        if value is not None:
            self.span.set_attribute(key, value)

    def set_many(self, attributes: Mapping[str, str | int | float | bool | None]) -> None:
        self.span.set_attributes({key: value for key, value in attributes.items() if value is not None})

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        self.span.add_event(name, attributes)

    def rename(self, name: str) -> None:
        self.span.update_name(name)

    def fail(self, description: str) -> None:
        self.span.set_status(Status(StatusCode.ERROR, description))

    def end(self) -> None:
        self.span.end()


class OtelTracing(Tracing):
    enabled = True

    def __init__(self, config: TracingConfig) -> None:
        attributes = {"service.name": config.service_name}
        if config.service_version:
            attributes["service.version"] = config.service_version
        # `Resource.create` adds OTEL_RESOURCE_ATTRIBUTES and the SDK's own; ours take precedence.
        self.provider = TracerProvider(
            resource=Resource.create(attributes),
            sampler=ParentBased(TraceIdRatioBased(config.sample_ratio)),
        )
        # Batched off the request path; OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE ... apply.
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
        self.tracer = self.provider.get_tracer("charter", config.service_version or None)

    def start(
        self,
        name: str,
        *,
        parent: Span | str | None = None,
        kind: SpanKind = "internal",
        attributes: Attributes | None = None,
    ) -> OtelSpan:
        return OtelSpan(
            self.tracer.start_span(name, context=_parent(parent), kind=_KINDS[kind], attributes=attributes)
        )

    @contextlib.contextmanager
    def span(
        self, name: str, *, parent: Span | str | None = None, attributes: Attributes | None = None
    ) -> Iterator[OtelSpan]:
        with self.tracer.start_as_current_span(name, context=_parent(parent), attributes=attributes) as span:
            yield OtelSpan(span)

    def activate(self, span: Span) -> Any:
        if not isinstance(span, OtelSpan):
            return None
        return otel_context.attach(trace.set_span_in_context(span.span))

    def deactivate(self, token: Any) -> None:
        if token is not None:
            otel_context.detach(token)

    def shutdown(self) -> None:
        self.provider.shutdown()  # flushes the batch processor first


def _parent(parent: Span | str | None) -> otel_context.Context | None:
    """The context a new span descends from: None means the current one; a `traceparent` string
    that is empty or malformed starts a new trace (as the gateway always did)."""
    if parent is None:
        return None
    if isinstance(parent, OtelSpan):
        return trace.set_span_in_context(parent.span)
    if isinstance(parent, str):
        return _propagator.extract({"traceparent": parent}) if parent else otel_context.Context()
    return None
