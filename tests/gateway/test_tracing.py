"""Traces of gateway requests, exported over OTLP/HTTP to a real receiver on loopback.

Each test runs the app through its whole life: the spans still batched are exported when it shuts
down, so the receiver holds every span by the time the test looks.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from litestar.testing import AsyncTestClient

from gateway.tracing import TracingConfig
from registry.app import create_app
from tests.gateway.conftest import gateway_settings
from tests.gateway.test_http_adapter import bind, upstream_app
from tests.loopback import serving
from tests.otlp import Receiver, otlp_receiver
from tests.registry.support import ADMIN, bearer, fetch_token

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    with serving(upstream_app) as base:
        yield base


def traced_app(tmp_path, receiver: Receiver, ratio: float = 1.0):
    return create_app(
        gateway_settings(tmp_path, tracing=TracingConfig(endpoint=receiver.url, sample_ratio=ratio))
    )


async def test_a_request_continues_the_callers_trace_through_policies_to_the_upstream(
    tmp_path, receiver, upstream
):
    app = traced_app(tmp_path, receiver)
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        await bind(client, app, admin, upstream + "/base")
        response = await client.get(
            "/gw/projects/v1/projects",
            params={"client": "acme"},
            headers={**billing, "traceparent": INCOMING},
        )
        assert response.status_code == 200, response.text
        seen = response.json()["headers"]["traceparent"]

    returned = response.headers["traceparent"]
    _, trace_id, span_id, flags = returned.split("-")
    assert (trace_id, flags) == ("4bf92f3577b34da6a3ce929d0e0e4736", "01")
    (server,) = [s for s in receiver.trace(trace_id) if s.kind == "server"]
    # The trace id and span the client gets back are the gateway's span's.
    assert (server.span_id, server.parent_id) == (span_id, "00f067aa0ba902b7")
    assert server.name == "GET projects listProjects"
    assert server.attributes["charter.api"] == "projects"
    assert server.attributes["charter.api.version"].startswith("1.")
    assert server.attributes["charter.operation"] == "listProjects"
    assert server.attributes["charter.consumer"] == "billing-app"
    assert server.attributes["http.response.status_code"] == 200
    assert [name for name, _ in server.events] == ["charter.auth", "charter.throttle", "charter.validation"]
    assert server.resource["service.name"] == "charter"
    assert server.resource["service.version"]

    # The upstream call is a client span under the request's, and the upstream continues from it.
    (call,) = [s for s in receiver.trace(trace_id) if s.kind == "client"]
    assert call.parent_id == server.span_id
    assert call.attributes["http.request.method"] == "GET"
    assert call.attributes["url.full"].endswith("/base/projects?client=acme")
    assert call.attributes["http.response.status_code"] == 200
    assert seen == f"00-{trace_id}-{call.span_id}-01"


async def test_refusals_and_upstream_failures_are_recorded_on_the_span(tmp_path, receiver, upstream):
    app = traced_app(tmp_path, receiver)
    async with AsyncTestClient(app) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        await bind(client, app, admin, upstream)
        anonymous = await client.get("/gw/projects/v1/projects")
        boom = await client.get("/gw/projects/v1/projects/boom", headers=billing)
    assert (anonymous.status_code, boom.status_code) == (401, 500)

    refused = next(s for s in receiver.trace(anonymous.headers["traceparent"].split("-")[1]))
    assert refused.events == [("charter.refused", {"charter.reason": "unauthenticated"})]
    assert refused.attributes["http.response.status_code"] == 401
    assert not refused.error  # a client's mistake is not the server's error

    spans = receiver.trace(boom.headers["traceparent"].split("-")[1])
    server = next(s for s in spans if s.kind == "server")
    client_span = next(s for s in spans if s.kind == "client")
    assert server.error and client_span.error
    assert client_span.attributes["http.response.status_code"] == 500


async def test_head_sampling_keeps_ids_but_exports_only_sampled_traces(tmp_path, receiver):
    app = traced_app(tmp_path, receiver, ratio=0.0)
    async with AsyncTestClient(app) as client:
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        fresh = await client.get("/gw/projects/v1/projects", params={"client": "acme"}, headers=billing)
        sampled = await client.get(
            "/gw/projects/v1/projects",
            params={"client": "acme"},
            headers={**billing, "traceparent": INCOMING},
        )
    assert fresh.status_code == sampled.status_code == 200
    # Ratio 0 samples no new trace, yet the client still gets the span's ids (flags: not sampled).
    _, fresh_trace, _, flags = fresh.headers["traceparent"].split("-")
    assert not int(flags, 16) & 1 and fresh_trace != "0" * 32
    assert receiver.trace(fresh_trace) == []
    # Parent-based: a caller that sampled its trace has it continued and exported.
    assert [s.kind for s in receiver.trace(sampled.headers["traceparent"].split("-")[1])] == ["server"]


def test_without_an_endpoint_opentelemetry_is_never_imported(tmp_path):
    """Tracing off costs no import: importing Charter loads no module of OpenTelemetry, and building
    the app loads only what litestar's own probe for its OpenTelemetry plugin does on every app it
    builds (the `opentelemetry` namespace and semantic-convention constants): no API, no SDK, no
    exporter, no context."""
    script = f"""
import os, sys
for name in ("CHARTER_OTEL_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
    os.environ.pop(name, None)
def loaded():
    return sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
from registry.app import create_app
from tests.gateway.conftest import gateway_settings
assert loaded() == [], loaded()
app = create_app(gateway_settings({str(tmp_path)!r}))
assert app.state.tracing.enabled is False
probed = [m for m in loaded() if m != "opentelemetry" and not m.startswith("opentelemetry.semconv")]
assert probed == [], probed
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_endpoint_and_ratio_come_from_the_environment():
    assert TracingConfig.from_env({}) is None
    assert TracingConfig.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}) == TracingConfig(
        endpoint="http://collector:4318/v1/traces"
    )
    config = TracingConfig.from_env(
        {
            "CHARTER_OTEL_ENDPOINT": "http://collector:4318/v1/traces",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318",
            "CHARTER_OTEL_SAMPLE_RATIO": "0.1",
        }
    )
    assert config == TracingConfig(endpoint="http://collector:4318/v1/traces", sample_ratio=0.1)
    with pytest.raises(ValueError, match="CHARTER_OTEL_SAMPLE_RATIO"):
        TracingConfig.from_env(
            {"CHARTER_OTEL_ENDPOINT": "http://c/v1/traces", "CHARTER_OTEL_SAMPLE_RATIO": "2"}
        )
