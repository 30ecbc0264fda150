"""OPTIONS on a registry resource names every method the resource answers (RFC 9110 section 10.2.1).

litestar 2 creates a path's automatic OPTIONS handler when the first handler of the path registers
and never updates it, so `Allow` named only that handler's methods: `GET, OPTIONS` on a path that
also takes POST (fixed in litestar 3). The registry defines no OPTIONS handler of its own, so a
before-request hook answers every OPTIONS from the methods of the whole route.
"""

from __future__ import annotations

from litestar import Litestar, Request, Response
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT


def allowed_methods(app: Litestar) -> dict[str, str]:
    """The `Allow` value of each HTTP route, by its path template."""
    return {
        route.path_format: ", ".join(sorted(route.methods))
        for route in app.routes
        if isinstance(route, HTTPRoute)
    }


async def answer_options(request: Request) -> Response | None:
    if request.method != "OPTIONS":
        return None
    allow = request.app.state.allowed_methods.get(request.scope["path_template"])
    if allow is None:
        return None
    return Response(None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})
