"""The web portal: catalog, API pages, contract docs and diffs, and the flows console, rendered on the
server from Jinja templates, with every asset served from this package (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from registry.settings import Settings
from registry.web.access import CSRF_COOKIE, BrowserSessions, browser_sessions, csrf_secret
from registry.web.errors import PAGE_EXCEPTION_HANDLERS, for_browsers
from registry.web.flow_pages import FlowConsoleController
from registry.web.pages import PortalController
from registry.web.queries import FacetCache
from registry.web.sign_in import PendingSignIns, SignInController, oidc_provider

HERE = Path(__file__).parent
ASSETS_PATH = "/assets"


def template_config() -> TemplateConfig:
    # JinjaTemplateEngine turns autoescape on for a directory: registry data is always text.
    return TemplateConfig(directory=HERE / "templates", engine=JinjaTemplateEngine)


def portal_router(settings: Settings) -> Router:
    """The pages, behind a CSRF check on every form that changes something (double-submit cookie)."""
    csrf = CSRFConfig(
        secret=csrf_secret(settings),
        cookie_name=CSRF_COOKIE,
        cookie_httponly=True,
        cookie_samesite="lax",
        cookie_secure=settings.public_url.startswith("https://"),
    )
    facets = FacetCache()
    return Router(
        path="/",
        dependencies={"facet_cache": Provide(lambda: facets, sync_to_thread=False)},
        route_handlers=[PortalController, SignInController, FlowConsoleController],
        middleware=[DefineMiddleware(CSRFMiddleware, config=csrf)],
        exception_handlers=dict(PAGE_EXCEPTION_HANDLERS),  # type: ignore[arg-type]
        include_in_schema=False,
    )


def pending_sign_ins(settings: Settings) -> PendingSignIns:
    """Sealed under the same key material as the CSRF tokens, so that replicas agree on both."""
    return PendingSignIns(csrf_secret(settings), secure=settings.public_url.startswith("https://"))


def assets_router() -> Router:
    return create_static_files_router(
        path=ASSETS_PATH, directories=[HERE / "static"], include_in_schema=False, name="portal-assets"
    )


__all__ = [
    "BrowserSessions",
    "assets_router",
    "browser_sessions",
    "for_browsers",
    "oidc_provider",
    "pending_sign_ins",
    "portal_router",
    "template_config",
]
