"""What an adapter reads of a request's header fields."""

from __future__ import annotations

from gateway.adapters.base import GatewayRequest


def request_with(fields: list[tuple[bytes, bytes]]) -> GatewayRequest:
    return GatewayRequest(
        api="projects",
        version="1.0.0",
        operation_id="getProject",
        method="GET",
        path="/projects/p-1",
        path_params={"projectId": "p-1"},
        query={},
        query_string=b"",
        received_headers=fields,
        body=b"",
    )


def test_an_adapter_never_reads_the_fields_the_gateway_asserts_whatever_their_case():
    request = request_with(
        [
            (b"accept", b"application/json"),
            (b"X-Charter-Consumer", b"admin"),
            (b"x-charter-scopes", b"everything"),
            (b"TraceParent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            (b"x-tenant", b"a"),
            (b"x-tenant", b"b"),
        ]
    )
    assert request.headers == [(b"accept", b"application/json"), (b"x-tenant", b"a"), (b"x-tenant", b"b")]
