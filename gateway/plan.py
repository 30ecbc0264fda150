"""An operation's policy chain compiled once: what every request to it would otherwise work out again.

The gateway builds a plan on an operation's first request and keeps it on the operation, so it lives
exactly as long as the compiled routes it belongs to: a reload of the API compiles new operations,
and their first requests build new plans with the adapters bound then. Built lazily because a
registry of 10,000 APIs has tens of thousands of operations, most never called by a given replica,
and each plan holds metric series that would otherwise all be exported at zero.
"""

from __future__ import annotations

from gateway.adapters.base import Adapter
from gateway.observability import RequestSeries
from gateway.routing import Operation
from gateway.validation import OperationValidator, UnenforceableSchema
from policies.auth import challenge
from policies.throttle import RateLimitPolicy


class OperationPlan:
    __slots__ = (
        "adapter",
        "alternatives",
        "api",
        "auth_required",
        "label",
        "missing_token",
        "operation",
        "operation_key",
        "rate_limit",
        "series",
        "throttle_suffix",
        "unenforceable",
        "validator",
        "version",
    )

    def __init__(
        self,
        *,
        api: str,
        version: str,
        operation: Operation,
        adapter: Adapter | None,
        rate_limit: RateLimitPolicy | None,
        per_operation_budget: bool,
        validate: bool,
        series: RequestSeries,
    ) -> None:
        self.api = api
        self.version = version
        self.operation = operation
        self.label = operation.label
        self.operation_key = f"{operation.method} {operation.template}"  # as the diff names it
        self.adapter = adapter
        self.rate_limit = rate_limit
        self.throttle_suffix = f":{self.label}" if per_operation_budget else ""
        self.validator: OperationValidator | None = None
        self.unenforceable: str | None = None  # why the contract's schemas cannot be enforced
        try:
            self.validator = operation.validator if validate else None
        except UnenforceableSchema as exc:
            self.unenforceable = str(exc)
        security = operation.security
        # Scopes within one requirement are AND, requirements are alternatives (OR); an empty one
        # (`{}` in the contract) admits anyone, as does a missing or empty `security`.
        self.auth_required = bool(security) and all(security or ())
        self.alternatives = tuple(
            frozenset(s for _, scopes in alternative for s in scopes) for alternative in security or ()
        )
        first_scopes = sorted(self.alternatives[0]) if self.alternatives else []
        self.missing_token = challenge(scope=first_scopes or None)
        self.series = series  # its requests and latencies, found once
