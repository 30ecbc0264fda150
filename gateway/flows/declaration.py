"""How a firm declares a flow: its steps, their retry policy and compensation, business keys, SLA.

A flow is plain Python in the firm's own package, registered through the `charter.flows`
entry-point group (`[project.entry-points."charter.flows"] lead-to-project = "acme.flows:flow"`,
where `flow` is a `Flow`). Each step is an async function of a `StepContext`; it calls system
APIs through `context.client` (by API name and major version, through the gateway's own policy
chain) and returns a JSON-serialisable value that later steps read from `context.outputs`.

A step's output is recorded once it completes, so a resumed, retried or replayed run never calls a
completed step again: steps must take what they need from `context.input` and `context.outputs`,
never from module state.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# The HTTP statuses after which a call may succeed if made again (RFC 9110 and common practice).
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts of one step: exponential backoff with jitter, and a time limit per attempt.

    The delay before attempt n+1 is `backoff_seconds * backoff_factor**(n-1)`, capped at
    `max_backoff_seconds`, then scaled by a random factor in [1 - jitter, 1 + jitter] so that
    runs failing together do not retry together.
    """

    attempts: int = 3
    backoff_seconds: float = 0.5
    backoff_factor: float = 2.0
    max_backoff_seconds: float = 30.0
    jitter: float = 0.25
    timeout_seconds: float | None = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a step needs at least one attempt")
        if self.backoff_seconds < 0 or self.backoff_factor < 1 or self.max_backoff_seconds < 0:
            raise ValueError("backoff must be non-negative and not shrink")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")
        if self.timeout_seconds is not None and self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        base = min(self.backoff_seconds * self.backoff_factor ** (attempt - 1), self.max_backoff_seconds)
        spread = (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, base * spread)


class SystemResponse(Protocol):
    """What a system API answered a step."""

    @property
    def status(self) -> int: ...
    @property
    def body(self) -> Any: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def raise_for_status(self) -> None:
        """Raise `StepFailed` (retryable for 408/425/429/5xx, permanent for other 4xx) unless 2xx."""


class SystemClient(Protocol):
    """Calls system APIs by name and major version through the gateway's policy chain.

    Every call carries the flow's own client credentials, an `Idempotency-Key` derived from the
    run and step (so a retried attempt is recognised downstream), and the run's `traceparent`.
    """

    async def request(
        self,
        api: str,
        major: int,
        method: str,
        path: str,
        *,
        json: Any = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> SystemResponse: ...

    async def get(self, api: str, major: int, path: str, **kw: Any) -> SystemResponse: ...
    async def post(self, api: str, major: int, path: str, **kw: Any) -> SystemResponse: ...
    async def put(self, api: str, major: int, path: str, **kw: Any) -> SystemResponse: ...
    async def patch(self, api: str, major: int, path: str, **kw: Any) -> SystemResponse: ...
    async def delete(self, api: str, major: int, path: str, **kw: Any) -> SystemResponse: ...


@dataclass(frozen=True)
class FlowInput:
    """The request that started a run, as the process API received it (after validation)."""

    path_params: dict[str, str] = field(default_factory=dict)
    query: dict[str, list[str]] = field(default_factory=dict)
    body: Any = None
    operation_id: str | None = None
    consumer: str | None = None  # the authenticated client id that called the process API


@dataclass
class StepContext:
    """What a step (or its compensation) receives."""

    run_id: str
    flow: str
    step: str
    attempt: int
    input: FlowInput
    outputs: dict[str, Any]  # outputs of the steps completed before this one, by step name
    client: SystemClient
    idempotency_key: str  # derived from run and step: stable across attempts and restarts
    traceparent: str
    output: Any = None  # for a compensation: the output of the step it undoes
    events: list[tuple[str, Any]] = field(default_factory=list)

    def emit(self, event_type: str, data: Any) -> None:
        """Publish a business event (`delivery.project.created`) once this step completes.

        Events leave with the step's recorded output, so a step retried after a failure does not
        send the event of its failed attempt.
        """
        self.events.append((event_type, data))


StepFunction = Callable[[StepContext], Awaitable[Any]]
Compensation = Callable[[StepContext], Awaitable[None]]


class StepFailed(Exception):
    """A step's failure, with the downstream problem+json when there is one.

    `retryable=False` skips the remaining attempts: the downstream refused for good.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        status: int | None = None,
        problem: Any = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.problem = problem


@dataclass(frozen=True)
class Step:
    name: str
    run: StepFunction
    retry: RetryPolicy = RetryPolicy()
    compensate: Compensation | None = None
    description: str = ""


@dataclass(frozen=True)
class Outcome:
    """What the process API answers for a run that succeeded."""

    status: int = 200
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()


ResultBuilder = Callable[[FlowInput, Mapping[str, Any]], Outcome]


def last_output(flow_input: FlowInput, outputs: Mapping[str, Any]) -> Outcome:
    """The default answer: the last step's output, 200."""
    return Outcome(status=200, body=list(outputs.values())[-1] if outputs else None)


@dataclass(frozen=True)
class Flow:
    """A durable process: steps run in order, each step's completion recorded.

    `business_keys` name the values a run is found by (`opportunityId`): they are read from the
    path parameters and the top level of the request body when the run starts, and from the top
    level of each step's output (a step that creates a project returns its `projectId`).
    A run older than `sla_seconds` that has not finished is `late`.
    With `compensate_on_failure`, a step that fails for good (not retryable, or out of attempts)
    undoes the completed steps in reverse and ends the run `compensated` instead of parking it.
    """

    name: str
    owner: str  # the owning team's name: its members may retry, replay and cancel runs
    steps: tuple[Step, ...]
    business_keys: tuple[str, ...] = ()
    sla_seconds: float = 3600.0
    title: str = ""
    description: str = ""
    result: ResultBuilder = last_output
    compensate_on_failure: bool = False
    # The flow's own client id at the gateway: its scopes govern the system APIs it may call.
    client_id: str | None = None

    def __post_init__(self) -> None:
        if not self.steps:
            raise ValueError(f"flow {self.name!r} has no steps")
        names = [step.name for step in self.steps]
        if len(set(names)) != len(names):
            raise ValueError(f"flow {self.name!r} has two steps with the same name")
        if self.sla_seconds <= 0:
            raise ValueError("sla_seconds must be positive")

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def step_index(self, name: str) -> int:
        return [step.name for step in self.steps].index(name)
