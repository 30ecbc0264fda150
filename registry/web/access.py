"""Who reads a page: the bearer token of the browser's session (or of an Authorization header), held
to the same scopes as the REST API; anonymous only when the catalog is public."""

from __future__ import annotations

import hashlib
import secrets
import time
from urllib.parse import quote

import msgspec
from litestar import Request
from litestar.datastructures import Cookie
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore

from policies.auth import InvalidToken, Principal
from registry.access import require_read
from registry.api.security import BearerAuth
from registry.settings import Settings

SESSION_COOKIE = "charter_session"
CSRF_COOKIE = "charter_csrf"
SIGN_IN_PATH = "/sign-in"


class SignInRequired(Exception):
    """A private catalog and nobody signed in: the page answers with a redirect to the sign-in form."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class BrowserSessions:
    """Signed-in browsers: the cookie holds a random id, the server keeps the access token it stands
    for (a hash of the id is the key, so the store never holds a usable cookie). A new id on every
    sign-in, so an id planted before signing in is worth nothing."""

    def __init__(self, store: Store, *, lifetime: int, secure: bool) -> None:
        self._store = store
        self.lifetime = lifetime
        self.secure = secure

    async def start(self, token: str, subject: str, *, expires_at: int | None = None) -> tuple[str, int]:
        """A session for `token`, ending when the token does (at the latest after `lifetime`): the
        new id, and its lifetime in seconds."""
        session_id = secrets.token_urlsafe(32)
        lifetime = self.lifetime
        if expires_at is not None:
            lifetime = max(1, min(lifetime, expires_at - int(time.time())))
        value = msgspec.json.encode({"token": token, "subject": subject})
        await self._store.set(_key(session_id), value, expires_in=lifetime)
        return session_id, lifetime

    async def find(self, session_id: str | None) -> tuple[str, str] | None:
        if not session_id or len(session_id) > 100:
            return None
        value = await self._store.get(_key(session_id))
        if value is None:
            return None
        data = msgspec.json.decode(value)
        return data["token"], data["subject"]

    async def end(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 100:
            await self._store.delete(_key(session_id))

    def cookie(self, session_id: str, lifetime: int) -> Cookie:
        return Cookie(
            key=SESSION_COOKIE,
            value=session_id,
            max_age=lifetime,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def expired_cookie(self) -> Cookie:
        return Cookie(
            key=SESSION_COOKIE,
            value="",
            max_age=0,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )


def _key(session_id: str) -> str:
    return "session:" + hashlib.sha256(session_id.encode()).hexdigest()


def browser_sessions(settings: Settings) -> BrowserSessions:
    """In process; shared through Redis when replicas share one (CHARTER_REDIS_URL)."""
    store: Store
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        store = RedisStore.with_client(url=settings.redis_url, namespace="charter-portal")
    else:
        store = MemoryStore()
    return BrowserSessions(
        store, lifetime=settings.token_lifetime, secure=settings.public_url.startswith("https://")
    )


def csrf_secret(settings: Settings) -> str:
    """The CSRF tokens' HMAC key: derived from the secrets key so that replicas agree, else per process."""
    material = settings.secrets_key or settings.secrets_key_file
    if material:
        return hashlib.sha256(b"charter-portal-csrf\0" + material.encode()).hexdigest()
    return secrets.token_hex(32)


async def page_principal(request: Request) -> Principal | None:
    """The caller of a page: an Authorization header (scripts, the benchmark) or the session's token.
    Kept on the request, so that an error page raised later still names who is signed in."""
    principal = await _find_principal(request)
    request.state.page_principal = principal
    return principal


def known_page_principal(request: Request) -> Principal | None:
    """Who `page_principal` found for this request, if a page asked before it failed."""
    return getattr(request.state, "page_principal", None)


async def _find_principal(request: Request) -> Principal | None:
    auth: BearerAuth = request.app.state.bearer_auth
    header = request.headers.get("authorization")
    if header:
        return await auth.principal(header)
    sessions: BrowserSessions = request.app.state.browser_sessions
    found = await sessions.find(request.cookies.get(SESSION_COOKIE))
    if found is None:
        return None
    try:
        return await auth.verify(found[0])
    except InvalidToken:
        return None  # expired, or signed by a key this server no longer holds: sign in again


def public_catalog(settings: Settings) -> bool:
    return settings.public_catalog or settings.anonymous_reads


async def require_page_read(request: Request, *, catalog: bool = True) -> Principal | None:
    """As the API's reads: `registry:read` (or admin); anonymous only on a public catalog, and an
    anonymous visitor of a private one is sent to sign in, then back here. Pages outside the catalog
    (the flows console: business keys, failures) are anonymous only where the API's reads are."""
    settings: Settings = request.app.state.settings
    open_to_all = public_catalog(settings) if catalog else settings.anonymous_reads
    principal = await page_principal(request)
    if principal is None and not open_to_all:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    require_read(principal, anonymous_reads=open_to_all)
    return principal


def sign_in_location(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_path, safe='/')}"


def local_path(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//host` or a URL)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\r\n\\"):
        return "/"
    return value
