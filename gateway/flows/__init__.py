"""Orchestration flows hosted by the gateway: declared by firms, run durably on DBOS."""

from gateway.flows.declaration import (
    Compensation,
    Flow,
    FlowInput,
    Outcome,
    RetryPolicy,
    Step,
    StepContext,
    StepFailed,
    SystemClient,
    SystemResponse,
    last_output,
)

__all__ = [
    "Compensation",
    "Flow",
    "FlowInput",
    "Outcome",
    "RetryPolicy",
    "Step",
    "StepContext",
    "StepFailed",
    "SystemClient",
    "SystemResponse",
    "last_output",
]
