"""Distributed tracing: off (a no-op that imports nothing) unless an OTLP endpoint is configured.

With `CHARTER_OTEL_ENDPOINT` (an OTLP/HTTP traces URL, `.../v1/traces`), or the standard
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the same) or `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL), spans
go to that endpoint through OpenTelemetry (`gateway.otel`, imported only then). Without one, nothing
of OpenTelemetry is imported and the gateway's request path takes no tracing branch beyond one check.

Head sampling is parent-based: a caller's `traceparent` decides; a new trace is kept with
probability `CHARTER_OTEL_SAMPLE_RATIO` (default 1). Every request still gets a trace id and a span
id, sampled or not, so the `traceparent` a client gets back always names the gateway's span.

The interface is small so that the gateway, the flows and the registry use it alike, whether on or off:
`Tracing.start` opens a span (a child of a given span, of a `traceparent` string, or of the span
current in this task), `Tracing.span` does the same as a context manager that makes it current.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import msgspec

SpanKind = Literal["internal", "server", "client"]
Attributes = Mapping[str, str | int | float | bool]


class TracingConfig(msgspec.Struct, frozen=True, kw_only=True):
    endpoint: str  # the OTLP/HTTP traces URL
    sample_ratio: float = 1.0
    service_name: str = "charter"
    service_version: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_ratio <= 1.0:  # also refuses nan
            raise ValueError(f"the trace sample ratio must be between 0 and 1, not {self.sample_ratio}")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, service_version: str = ""
    ) -> TracingConfig | None:
        """The configuration the environment names, or None (tracing off) when it names no endpoint."""
        env = os.environ if environ is None else environ
        endpoint = env.get("CHARTER_OTEL_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not endpoint and (base := env.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
            endpoint = base.rstrip("/") + "/v1/traces"  # as the OTLP exporter specification says
        if not endpoint:
            return None
        ratio = env.get("CHARTER_OTEL_SAMPLE_RATIO") or "1"
        try:
            sample_ratio = float(ratio)
        except ValueError:
            raise ValueError(
                f"CHARTER_OTEL_SAMPLE_RATIO must be a number from 0 to 1, not {ratio!r}"
            ) from None
        if not 0.0 <= sample_ratio <= 1.0:
            raise ValueError(f"CHARTER_OTEL_SAMPLE_RATIO must be a number from 0 to 1, not {ratio!r}")
        return cls(
            endpoint=endpoint,
            sample_ratio=sample_ratio,
            service_name=env.get("OTEL_SERVICE_NAME") or "charter",
            service_version=service_version,
        )


class Span:
    """A span that records nothing (tracing off); `gateway.otel.OtelSpan` records."""

    __slots__ = ()
    traceparent = ""  # this span's W3C traceparent, to send to whatever it calls
    recording = False  # whether what is set on it goes anywhere (sampled); else skip describing it

    def set(self, key: str, value: str | int | float | bool | None) -> None:
        pass

    def set_many(self, attributes: Mapping[str, str | int | float | bool | None]) -> None:
        """Several attributes at once (one lock in the SDK, not one each); None values are left out."""

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        pass

    def rename(self, name: str) -> None:
        """Name the span by what it turned out to be (a request, once its operation is known)."""

    def fail(self, description: str) -> None:
        """Mark the span as an error (what went wrong, in a few words)."""

    def end(self) -> None:
        pass


NO_SPAN = Span()


class Tracing:
    """Tracing off: every span is `NO_SPAN`, and the gateway skips its tracing branch."""

    enabled = False

    def start(
        self,
        name: str,
        *,
        parent: Span | str | None = None,
        kind: SpanKind = "internal",
        attributes: Attributes | None = None,
    ) -> Span:
        """A span named `name`, child of `parent` (a span, or a `traceparent` from elsewhere), else of
        the span current in this task. The caller ends it."""
        return NO_SPAN

    @contextlib.contextmanager
    def span(
        self, name: str, *, parent: Span | str | None = None, attributes: Attributes | None = None
    ) -> Iterator[Span]:
        """A span current while the block runs (its children nest under it); an exception escaping
        the block marks it as an error."""
        yield NO_SPAN

    def activate(self, span: Span) -> Any:
        """Make `span` current in this task; the token to pass to `deactivate`."""
        return None

    def deactivate(self, token: Any) -> None:
        pass

    def shutdown(self) -> None:
        """Export what is still buffered, then stop (the server's shutdown)."""


NO_TRACING = Tracing()


def start_tracing(config: TracingConfig | None) -> Tracing:
    """Tracing as configured: OpenTelemetry when `config` names an endpoint, else `NO_TRACING`."""
    if config is None:
        return NO_TRACING
    from gateway.otel import OtelTracing  # only now: tracing off costs no import

    return OtelTracing(config)
