"""Errors on pages: a friendly page with the right status, never a traceback; the REST API keeps its
problem+json (registry.api.problems)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect, Template
from sqlalchemy.exc import SQLAlchemyError

from contracts.errors import ContractError, DocumentTooComplex, DocumentTooLarge
from registry.api.problems import DATABASE_RETRY_AFTER_SECONDS
from registry.db.engine import database_unavailable
from registry.errors import Forbidden, RegistryError, Unauthenticated
from registry.web.access import SignInRequired, known_page_principal, sign_in_location

log = logging.getLogger("charter.portal")

_TITLES = {
    400: "That request could not be read",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Conflict",
    413: "Too large",
    422: "That cannot be shown",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "The registry's database does not answer",
}
_NEXT_STEP = {
    400: "Check the address or go back to the catalog.",
    401: "Sign in with a client id and secret that may read the registry.",
    403: "Ask an administrator for a client with the registry:read scope, or sign in as another client.",
    404: "Search the catalog for it: it may have another name, or the version may not exist.",
    422: "Pick other versions, or go back to the API's page.",
    500: "Try again in a moment; if it keeps happening, tell the registry's operators.",
    503: "Try again in a few seconds; your sign-in is kept. If it lasts, tell the registry's operators.",
}
# Paths of the REST API, the gateway and the machinery: their errors stay problem+json for every client.
_MACHINE_PATHS = ("/api/", "/gw/", "/oauth/", "/schema", "/.well-known/", "/health", "/metrics", "/static/")


def error_page(
    request: Request, status: int, detail: str | None, headers: dict[str, str] | None = None
) -> Template:
    principal = known_page_principal(request)
    return Template(
        headers=headers,
        template_name="error.html",
        context={
            "status": status,
            "title": _TITLES.get(status, "Error"),
            "detail": detail,
            "next_step": _NEXT_STEP.get(status, _NEXT_STEP[400] if status < 500 else _NEXT_STEP[500]),
            "user": principal.subject if principal else None,
        },
        status_code=status,
    )


def registry_error(request: Request, exc: RegistryError) -> Response[Any]:
    if isinstance(exc, Unauthenticated):
        return error_page(request, 401, "Your sign-in is not valid any more.")
    if isinstance(exc, Forbidden):
        return error_page(request, 403, exc.detail)
    return error_page(request, exc.status, exc.detail)


def contract_error(request: Request, exc: ContractError) -> Response[Any]:
    status = 413 if isinstance(exc, DocumentTooLarge) else 422
    detail = exc.detail if isinstance(exc, DocumentTooComplex | DocumentTooLarge) else exc.title
    return error_page(request, status, detail)


def http_error(request: Request, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if isinstance(exc, PermissionDeniedException) and "CSRF" in (exc.detail or ""):
        return error_page(request, 403, "The form had expired. Reload the page and send it again.")
    if isinstance(exc, NotAuthorizedException):
        return error_page(request, 401, None)
    # litestar's own messages name parameters and types; a reader gets the status's plain words.
    detail = (
        None
        if status >= 500
        else ("The address has a parameter this page cannot use." if status == 400 else None)
    )
    return error_page(request, status, detail)


def sign_in_required(request: Request, exc: SignInRequired) -> Response[Any]:
    return Redirect(sign_in_location(exc.next_path), status_code=303)


def storage_error(request: Request, exc: Exception) -> Response[Any]:
    """The page of the API's `database-unavailable` problem: 503 with the same Retry-After."""
    if not database_unavailable(exc):
        return unexpected_error(request, exc)
    log.warning("database unavailable on page %s %s: %s", request.method, request.url.path, exc)
    return error_page(
        request,
        503,
        "The registry is running, but its database does not answer just now.",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def unexpected_error(request: Request, exc: Exception) -> Response[Any]:
    log.exception("unhandled error on page %s %s", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, None)


PAGE_EXCEPTION_HANDLERS: Mapping[type[Exception], Callable[..., Response[Any]]] = {
    SignInRequired: sign_in_required,
    RegistryError: registry_error,
    ContractError: contract_error,
    HTTPException: http_error,
    # The app's own handlers answer these with problem+json; a page answers with a page.
    SQLAlchemyError: storage_error,
    OSError: storage_error,
    Exception: unexpected_error,
}


def for_browsers(
    handlers: Mapping[Any, Callable[..., Response[Any]]],
) -> dict[Any, Callable[..., Response[Any]]]:
    """The app's handlers, except that a browser asking for a page no route knows (a 404 or 405 outside
    the API's paths) gets the portal's page instead of problem+json."""
    api_http_error = handlers[HTTPException]

    def http_error_for(request: Request, exc: HTTPException) -> Response[Any]:
        wants_page = "text/html" in request.headers.get("accept", "")
        if wants_page and exc.status_code in (404, 405) and not request.url.path.startswith(_MACHINE_PATHS):
            return error_page(request, exc.status_code, None)
        return api_http_error(request, exc)

    return {**handlers, HTTPException: http_error_for}
