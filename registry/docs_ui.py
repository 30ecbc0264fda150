"""The registry's own contract and its docs UI, served from files in the package (no CDN)."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components
from litestar.static_files import create_static_files_router

from registry.api.security import SECURITY_SCHEMES, read_security

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static"


def openapi_config(*, title: str, version: str, anonymous_reads: bool) -> OpenAPIConfig:
    swagger = f"{STATIC_PATH}/swagger-ui"
    return OpenAPIConfig(
        title=title,
        version=version,
        path="/schema",
        # Declared schemes give Swagger UI its Authorize button; operations that write or need no
        # token say so themselves, reads inherit this requirement.
        components=Components(security_schemes=SECURITY_SCHEMES),  # type: ignore[arg-type]
        security=read_security(anonymous_reads=anonymous_reads),
        render_plugins=[
            # Swagger UI 5 from npm's swagger-ui-dist (Apache-2.0): PyPI's bundle is 4.x, which
            # cannot render the OpenAPI 3.1 that litestar writes.
            SwaggerRenderPlugin(
                path=["/swagger", "/"],
                js_url=f"{swagger}/swagger-ui-bundle.js",
                css_url=f"{swagger}/swagger-ui.css",
                standalone_preset_js_url=f"{swagger}/swagger-ui-standalone-preset.js",
            ),
            JsonRenderPlugin(),
        ],
    )


def static_files_router() -> Router:
    return create_static_files_router(path=STATIC_PATH, directories=[STATIC_DIR], include_in_schema=False)
