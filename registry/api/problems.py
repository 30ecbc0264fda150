"""Every error leaves the API as RFC 9457 problem+json; this is the one place that renders them."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.exc import SQLAlchemyError

from contracts.errors import ContractError, DocumentTooComplex, DocumentTooLarge
from policies.auth import challenge
from registry.api.schemas import Problem, ProblemIssue
from registry.compatibility import IncompatibleChange
from registry.db.engine import database_unavailable
from registry.errors import Forbidden, RegistryError, Unauthenticated

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("charter.registry")

_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
}
# What a client told the database is away waits before trying again: a restart takes seconds.
DATABASE_RETRY_AFTER_SECONDS = 2


def problem_type(slug: str) -> str:
    return f"/problems/{slug}"


def problem_response(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str | None,
    issues: list[ProblemIssue] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: str | None,
) -> Response[Problem]:
    body = Problem(
        type=problem_type(slug),
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=issues or None,
        **extensions,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _issues(error: RegistryError | ContractError) -> list[ProblemIssue]:
    return [
        ProblemIssue(pointer=i.pointer, message=i.message, file=i.file, line=i.line, column=i.column)
        for i in error.issues
    ]


def registry_error(request: Request, exc: RegistryError) -> Response[Problem]:
    headers = None
    if isinstance(exc, Unauthenticated):
        headers = {
            "WWW-Authenticate": challenge(error=exc.error, description=exc.detail if exc.error else None)
        }
    elif isinstance(exc, Forbidden) and exc.missing_scopes:
        # RFC 6750 section 3.1: name the scope the token lacks.
        headers = {
            "WWW-Authenticate": challenge(
                error="insufficient_scope", description=exc.detail, scope=sorted(exc.missing_scopes)
            )
        }
    extensions = {}
    if isinstance(exc, IncompatibleChange):
        extensions = {
            "required_bump": exc.verdict.required_bump.value,
            "base_version": exc.verdict.base_version,
        }
    return problem_response(
        request, exc.status, exc.slug, exc.title, exc.detail, _issues(exc), headers, **extensions
    )


def contract_error(request: Request, exc: ContractError) -> Response[Problem]:
    if isinstance(exc, DocumentTooLarge):
        status, slug = 413, "document-too-large"
    elif isinstance(exc, DocumentTooComplex):
        status, slug = 422, "document-too-complex"
    else:
        status, slug = 422, "contract-invalid"
    return problem_response(request, status, slug, exc.title, exc.detail, _issues(exc))


def http_error(request: Request, exc: HTTPException) -> Response[Problem]:
    status = exc.status_code
    issues = None
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        issues = [
            ProblemIssue(pointer=_pointer(item), message=str(item.get("message", "")))
            for item in exc.extra
            if isinstance(item, dict)
        ]
    slug = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "request-too-large"}.get(
        status, f"http-{status}"
    )
    response = problem_response(
        request, status, slug, _TITLES.get(status, "Error"), exc.detail, issues, dict(exc.headers or {})
    )
    return response


def _pointer(item: dict) -> str:
    key = item.get("key")
    # litestar names the source by its ParamType enum, whose str() is "ParamType.QUERY".
    source = getattr(item.get("source"), "value", item.get("source"))
    if key and source in ("query", "path", "header", "cookie"):
        return f"{source}:{key}"
    return "/" + str(key) if key else ""


def unexpected_error(request: Request, exc: Exception) -> Response[Problem]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "internal-error", _TITLES[500], "an unexpected error occurred")


def storage_error(request: Request, exc: Exception) -> Response[Problem]:
    """503 with Retry-After while the database cannot answer; any other such error is a bug (500)."""
    if not database_unavailable(exc):
        return unexpected_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        request,
        503,
        "database-unavailable",
        "Service unavailable",
        "the database does not answer; try again shortly",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


EXCEPTION_HANDLERS = {
    RegistryError: registry_error,
    ContractError: contract_error,
    HTTPException: http_error,
    # The driver's own socket errors reach handlers unwrapped when a connection cannot be opened.
    SQLAlchemyError: storage_error,
    OSError: storage_error,
    Exception: unexpected_error,
}


def problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem, description=description, media_type=PROBLEM_JSON, generate_examples=False
    )


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses a route documents, so clients and conformance tests know them."""
    descriptions = {
        400: "Malformed request (query parameters or body)",
        401: "Missing or invalid bearer token",
        403: "Token lacks a scope, its subject is not in the owning team, or a scope is another team's",
        404: "No such team, API or version",
        409: "Conflict with what is stored",
        413: "Request body over the size limit",
        415: "Unsupported media type",
        422: "Invalid contract or request, with every issue and its JSON pointer",
    }
    return {status: problem(descriptions[status]) for status in statuses}
