"""The flow adapter: a process API operation starts (or finds) a durable run and answers its result.

`Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): the run id is derived from the
caller (its client and subject), the API, the operation and the key, so the same key from the same
caller on the same operation finds the first run (DBOS starts a workflow id once, which also makes
concurrent duplicates run once), and the same key with a different request is refused with 422.

An anonymous caller (an operation without security, called without a token) has no identity to
scope its keys by: anonymous keys share one scope per operation. There a key still makes the
request run once (and a different request with it is refused with 422), but the answer goes only
to the request that started the run: a repeat gets 409 `idempotency-key-replayed` and no answer,
so nobody reads another's answer by guessing their key. The starting request is recognised by a
random stamp it adds to the request hash the run records.

A run that finishes within the wait budget answers its result; otherwise 202 and where to poll.
"""

from __future__ import annotations

import hashlib
import secrets

import msgspec

from gateway.adapters.base import GatewayRequest, GatewayResponse
from gateway.flows.declaration import FlowInput
from gateway.flows.runner import FlowRunner
from gateway.flows.runs import RunRecord, RunState
from gateway.routing import Operation
from policies.auth import Principal

PROBLEM = "application/problem+json"
RUNS_PATH = "/api/v1/flows/runs/"
IDEMPOTENCY_HEADER = b"idempotency-key"
MAX_IDEMPOTENCY_KEY = 255


class FlowAdapter:
    def __init__(self, runner: FlowRunner, flow: str, *, wait_seconds: float = 10.0) -> None:
        self.runner = runner
        self.flow = flow
        self.wait_seconds = wait_seconds

    async def handle(self, request: GatewayRequest, operation: Operation) -> GatewayResponse:
        if self.flow not in self.runner.flows:
            return _problem(
                503, "unknown-flow", "Service unavailable", f"no flow {self.flow!r} is registered"
            )
        key = next((v.decode("latin-1") for k, v in request.headers if k == IDEMPOTENCY_HEADER), None)
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            return _problem(
                400, "invalid-idempotency-key", "Invalid request", "Idempotency-Key is 1-255 characters"
            )
        principal = request.principal
        consumer = (principal.client_id or principal.subject) if principal else None
        flow_input = FlowInput(
            path_params=dict(request.path_params),
            query=dict(request.query),
            body=request.json,
            operation_id=operation.operation_id,
            consumer=consumer,
        )
        request_hash = hashlib.sha256(
            msgspec.json.encode(
                [operation.label, flow_input.path_params, flow_input.query, request.body.hex()]
            )
        ).hexdigest()
        run_id = None
        stamp = request_hash
        anonymous = not consumer
        if key is not None:
            run_id = keyed_run_id(principal, request.api, operation.label, key)
            known = await self.runner.index.get(run_id)
            if known is not None:
                if _request_of(known.request_hash) != request_hash:
                    return _reused_key()
                if anonymous:
                    return _replayed_key()
            if anonymous:
                stamp = f"{request_hash}.{secrets.token_hex(16)}"
        run_id = await self.runner.start_run(
            self.flow, flow_input, run_id=run_id, traceparent=request.traceparent, request_hash=stamp
        )
        record = await self.runner.wait(run_id, self.wait_seconds)
        if record is not None and key is not None:
            if _request_of(record.request_hash) != request_hash:
                return _reused_key()
            if anonymous and record.request_hash != stamp:  # a concurrent duplicate started it
                return _replayed_key()
        return _answer(run_id, record)


def keyed_run_id(principal: Principal | None, api: str, operation: str, key: str) -> str:
    """The run an Idempotency-Key names: one per caller, API, operation and key."""
    if principal is None:
        caller = "anonymous"
    else:
        consumer = principal.client_id or principal.subject
        # Users of one client application (subjects of one `client_id`) do not share keys.
        caller = (
            consumer
            if principal.subject == consumer
            else msgspec.json.encode([consumer, principal.subject]).decode()
        )
    scope = f"{caller}\x00{api}\x00{operation}\x00{key}"
    return "idem-" + hashlib.sha256(scope.encode()).hexdigest()[:40]


def _request_of(request_hash: str | None) -> str | None:
    """The request hash a run recorded, less the stamp of an anonymous caller."""
    return request_hash.partition(".")[0] if request_hash is not None else None


def _answer(run_id: str, record: RunRecord | None) -> GatewayResponse:
    location = [("location", RUNS_PATH + run_id)]
    if record is not None and record.state is RunState.SUCCEEDED and record.result is not None:
        result = record.result
        return GatewayResponse(
            status=int(result["status"]),
            body=result.get("body"),
            headers=[*(tuple(h) for h in result.get("headers") or []), ("charter-flow-run", run_id)],  # type: ignore[misc]
        )
    if record is not None and record.state in (RunState.COMPENSATED, RunState.CANCELLED):
        failed = next((s for s in record.steps if s.name == record.failed_step), None)
        error = failed.error if failed is not None else None
        return _problem(
            409,
            "flow-run-compensated",
            "Conflict",
            f"the run stopped at step {record.failed_step} and was {record.state.value}",
            extra={"run": run_id, "error": error},
            headers=location,
        )
    state = record.state.value if record is not None else RunState.RUNNING.value
    return GatewayResponse(status=202, body={"run": run_id, "state": state}, headers=location)


def _reused_key() -> GatewayResponse:
    return _problem(
        422,
        "idempotency-key-reused",
        "Unprocessable content",
        "this Idempotency-Key was already used with a different request",
    )


def _replayed_key() -> GatewayResponse:
    return _problem(
        409,
        "idempotency-key-replayed",
        "Conflict",
        "this Idempotency-Key was already used; an anonymous caller's answer goes only to the request"
        " that started the run (send a bearer token to get an earlier answer again)",
    )


def _problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    extra: dict | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> GatewayResponse:
    body = {"type": f"/problems/{slug}", "title": title, "status": status, "detail": detail, **(extra or {})}
    return GatewayResponse(status=status, body=body, media_type=PROBLEM, headers=headers or [])
