"""Prometheus alerting rules generated from every API's SLA and every hosted flow.

Over the metrics the gateway exports at /metrics (gateway.observability, gateway.flows.metrics):
`charter_gateway_requests_total{api, version, operation, status}`,
`charter_gateway_request_duration_seconds_bucket{api, version, operation, outcome, le}`,
`charter_flow_runs_parked_total{flow}` and `charter_flow_runs_late{flow}`.

Availability follows the Google SRE workbook's multi-window, multi-burn-rate alerts: page when 2 %
of the 30-day budget burns in an hour (burn rate 14.4 over 1 h and 5 m), ticket when 10 % burns in 3
days (burn rate 1 over 3 d and 6 h). 429 answers are left out of the error ratio's denominator, as
in the registry's own compliance (registry.slo.compliance). The latency objective reads only the
histogram's `outcome="served"` series: answers the gateway's policies refused with a 4xx (429 among
them) are fast, and a flood of them would hide a slow API.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import msgspec

# (severity, burn rate, long window, short window): SRE workbook, chapter 5, table 5-8's first and last rows.
BURN_ALERTS = (
    ("page", 14.4, "1h", "5m"),
    ("ticket", 1.0, "3d", "6h"),
)
ERROR_RATIO_WINDOWS = ("5m", "1h", "6h", "3d")
SERVED = '"served"'  # the gateway's histogram outcome the latency objective reads


class Rule(msgspec.Struct, omit_defaults=True):
    record: str | None = None
    alert: str | None = None
    expr: str = ""
    for_: str | None = msgspec.field(default=None, name="for")
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class RuleGroup(msgspec.Struct):
    name: str
    rules: list[Rule]


class RuleFile(msgspec.Struct):
    groups: list[RuleGroup]


class ApiObjectives(msgspec.Struct, frozen=True):
    api: str
    team: str
    availability: float | None  # percent
    latency_p99_ms: int | None


class FlowObjectives(msgspec.Struct, frozen=True):
    flow: str
    team: str
    sla_seconds: float


def _quoted(value: str) -> str:
    """A PromQL string literal: Go's escapes, which JSON's are a subset of."""
    return json.dumps(value)


def _number(value: float) -> str:
    return repr(round(value, 12))


def api_group(objectives: ApiObjectives) -> RuleGroup:
    api = _quoted(objectives.api)
    api_label = {"api": objectives.api}
    labels = {**api_label, "team": objectives.team}
    rules: list[Rule] = []
    if objectives.availability is not None and objectives.availability < 100:
        budget = (100 - objectives.availability) / 100
        for window in ERROR_RATIO_WINDOWS:
            requests = "sum by (api) (rate(charter_gateway_requests_total{{api={},status{}}}[{}]))"
            errors = requests.format(api, '=~"5.."', window)
            counted = requests.format(api, '!="429"', window)
            rules.append(
                # The api label again: promtool takes same-named records of several groups for duplicates.
                Rule(
                    record=f"charter:api_error_ratio:rate{window}",
                    expr=f"{errors} / {counted}",
                    labels=api_label,
                )
            )
        for severity, rate, long, short in BURN_ALERTS:
            threshold = f"({_number(rate)} * {_number(budget)})"
            spent = "2 % of the 30-day error budget in 1 hour" if severity == "page" else "10 % in 3 days"
            rules.append(
                Rule(
                    alert="CharterApiErrorBudgetBurn",
                    expr=(
                        f"charter:api_error_ratio:rate{long}{{api={api}}} > {threshold}"
                        f" and charter:api_error_ratio:rate{short}{{api={api}}} > {threshold}"
                    ),
                    labels={**labels, "severity": severity, "long_window": long, "short_window": short},
                    annotations={
                        "summary": f"{objectives.api} burns its error budget at {_number(rate)}x or more",
                        "description": (
                            f"{objectives.api} answers 5xx at {_number(rate)} times the rate its SLA of "
                            f"{_number(objectives.availability)} % allows, over {long} and {short} "
                            f"(spending {spent})."
                        ),
                    },
                )
            )
    if objectives.latency_p99_ms is not None:
        seconds = objectives.latency_p99_ms / 1000
        rules.append(
            Rule(
                record="charter:api_latency_p99_seconds:rate5m",
                expr=(
                    "histogram_quantile(0.99, sum by (api, le) "
                    f"(rate(charter_gateway_request_duration_seconds_bucket{{api={api},outcome={SERVED}}}[5m])))"
                ),
                labels=api_label,
            )
        )
        rules.append(
            Rule(
                alert="CharterApiLatencyP99",
                expr=f"charter:api_latency_p99_seconds:rate5m{{api={api}}} > {_number(seconds)}",
                for_="10m",
                labels={**labels, "severity": "ticket"},
                annotations={
                    "summary": f"{objectives.api} p99 latency above {objectives.latency_p99_ms} ms",
                    "description": (
                        f"The gateway's p99 latency of {objectives.api} over 5 minutes has been above its "
                        f"SLA target of {objectives.latency_p99_ms} ms for 10 minutes."
                    ),
                },
            )
        )
    return RuleGroup(name=f"charter-slo-{objectives.api}", rules=rules)


def flow_group(flows: Iterable[FlowObjectives]) -> RuleGroup:
    rules: list[Rule] = []
    for objectives in flows:
        flow = _quoted(objectives.flow)
        labels = {"flow": objectives.flow, "team": objectives.team, "severity": "ticket"}
        rules.append(
            Rule(
                alert="CharterFlowRunsParked",
                # A counter: every replica counts the runs it parked.
                expr=f"sum by (flow) (increase(charter_flow_runs_parked_total{{flow={flow}}}[15m])) > 0",
                labels=labels,
                annotations={
                    "summary": f"runs of {objectives.flow} parked as failed",
                    "description": (
                        f"Runs of the flow {objectives.flow} failed and wait for an operator "
                        "(retry, replay or cancel in the flows console)."
                    ),
                },
            )
        )
        rules.append(
            Rule(
                alert="CharterFlowRunsLate",
                # Every replica counts the same shared runs: max, not sum.
                expr=f"max by (flow) (charter_flow_runs_late{{flow={flow}}}) > 0",
                for_="5m",
                labels=labels,
                annotations={
                    "summary": f"runs of {objectives.flow} late",
                    "description": (
                        f"Unfinished runs of {objectives.flow} are older than its SLA of "
                        f"{_number(objectives.sla_seconds)} s."
                    ),
                },
            )
        )
    return RuleGroup(name="charter-flows", rules=rules)


def rule_file(apis: Iterable[ApiObjectives], flows: Iterable[FlowObjectives]) -> RuleFile:
    groups = [group for group in map(api_group, apis) if group.rules]
    flow_rules = flow_group(flows)
    if flow_rules.rules:
        groups.append(flow_rules)
    return RuleFile(groups=groups)


def to_yaml(rules: RuleFile) -> bytes:
    return msgspec.yaml.encode(rules)
