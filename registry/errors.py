"""Errors of the registry's rules, as typed values; registry.api.problems renders them (RFC 9457)."""

from __future__ import annotations

from contracts.errors import Issue


class RegistryError(Exception):
    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, issues: list[Issue] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = issues or []


class NotFound(RegistryError):
    status, slug, title = 404, "not-found", "Not found"


class AlreadyExists(RegistryError):
    status, slug, title = 409, "already-exists", "Already exists"


class VersionConflict(RegistryError):
    """The version exists with other content: a published version never changes."""

    status, slug, title = 409, "version-conflict", "Version conflict"


class IllegalTransition(RegistryError):
    status, slug, title = 409, "illegal-transition", "Illegal lifecycle transition"


class InvalidRequest(RegistryError):
    status, slug, title = 422, "invalid-request", "Invalid request"


class Unauthenticated(RegistryError):
    status, slug, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str, *, error: str | None = None) -> None:
        super().__init__(detail)
        self.error = error


class Forbidden(RegistryError):
    status, slug, title = 403, "forbidden", "Forbidden"

    def __init__(self, detail: str, *, missing_scopes: frozenset[str] = frozenset()) -> None:
        super().__init__(detail)
        self.missing_scopes = missing_scopes


class RulesetViolation(RegistryError):
    """A valid contract that the governance ruleset refuses: a policy decision, not bad input."""

    status, slug, title = 422, "ruleset-violation", "Governance ruleset violated"


class ScopeNotOwned(RegistryError):
    """A scope of another team's API, asked for without that team's grant."""

    status, slug, title = 403, "scope-not-owned", "Scope belongs to another team"


class ScopeTaken(RegistryError):
    """A contract declares a scope that another team's published API already declares."""

    status, slug, title = 409, "scope-taken", "Scope declared by another team"
