"""Charter's own events, described by the AsyncAPI contract shipped beside the registry's code."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get

from registry.api.security import PUBLIC

# Every topic the registry announces and its payload schema; also published as API `charter-events`
# when the demo is loaded.
EVENTS_CONTRACT = Path(__file__).resolve().parents[1] / "events.asyncapi.yaml"


@get(
    "/schema/asyncapi.yaml",
    summary="The AsyncAPI 3 contract of the events Charter emits",
    security=PUBLIC,
    media_type="application/yaml",
    # Like /schema/openapi.json: a description of the API, not an operation of it.
    include_in_schema=False,
)
async def events_contract() -> Response[bytes]:
    """Public like the OpenAPI document: it describes the registry, not what it holds."""
    return Response(EVENTS_CONTRACT.read_bytes(), media_type="application/yaml")
