"""Liveness and readiness: the service answers and its database does."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy import text

from registry.api.dependencies import Session
from registry.api.schemas import Health
from registry.api.security import PUBLIC


@get(
    "/health",
    tags=["health"],
    summary="Service and database health",
    security=PUBLIC,
    responses={503: ResponseSpec(Health, description="The database does not answer")},
)
async def health(session: Session) -> Response[Health]:
    try:
        await session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means the same thing here: not ready
        return Response(Health(status="unavailable", database=type(exc).__name__), status_code=503)
    return Response(Health(status="ok", database=session.bind.dialect.name))
