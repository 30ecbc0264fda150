"""The demo's two process APIs as durable flows over the simulated CRM, ERP, PSA and HCM.

`lead-to-project` turns a won opportunity into an ERP client and project and a staffed PSA
engagement; when the PSA refuses the engagement for good, the ERP project is closed again.
`time-to-bill` bills a client's approved time of one month as ERP billing lines and an invoice,
once per client and period. Both call the system APIs through the gateway with the `demo-flows`
client, which holds the systems' own scopes (crm:read crm:write erp:read erp:write psa:read
psa:write hcm:read). `FLOWS` is what a server hosting the demo hands its flow runner.

Steps read only `context.input` and `context.outputs`: a retried or replayed run repeats none of
the completed ones, and every write carries the step's idempotency key, so the systems recognise
an attempt they already answered.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.flows.declaration import Flow, FlowInput, Outcome, RetryPolicy, Step, StepContext, StepFailed
from registry.demo import FLOWS_CLIENT

# People staffed per role: one for every this many contracted hours, at least one.
HOURS_PER_PERSON = 500
# The systems are in process: short backoffs keep a demo retry visible without a long wait.
SYSTEM_CALLS = RetryPolicy(attempts=4, backoff_seconds=0.5, backoff_factor=2.0, timeout_seconds=10.0)


def _refused(slug: str, title: str, detail: str) -> StepFailed:
    """A failure no retry can mend: the run stops at this step."""
    problem = {"type": f"/problems/{slug}", "title": title, "status": 422, "detail": detail}
    return StepFailed(detail, retryable=False, status=422, problem=problem)


# --- lead-to-project ---------------------------------------------------------------------------


def contract_issues(opportunity: Mapping[str, Any]) -> list[str]:
    """What keeps a CRM opportunity from becoming a project, in words for the person who fixes it."""
    issues = []
    if opportunity.get("stage") != "won":
        issues.append(f"the opportunity is {opportunity.get('stage')}, not won")
    contract = opportunity.get("contract") or {}
    value = (contract.get("value") or {}).get("amount")
    try:
        if value is None or Decimal(value) <= 0:
            issues.append("the contract value must be positive")
    except ArithmeticError:
        issues.append(f"the contract value {value!r} is not a number")
    try:
        dt.date.fromisoformat(str(contract.get("startDate")))
    except ValueError:
        issues.append("the contract has no valid start date")
    if not contract.get("managerId"):
        issues.append("the contract names no manager")
    roles = contract.get("roles") or []
    if not roles:
        issues.append("the contract names no roles")
    elif any(not isinstance(r.get("hours"), int | float) or r["hours"] <= 0 for r in roles):
        issues.append("every role needs a positive number of hours")
    return issues


async def validate_contract(context: StepContext) -> dict[str, Any]:
    """Input: the `opportunityId` path parameter. Output: the opportunity's client and contract.

    Reads the opportunity from the CRM and refuses it for good (422 `invalid-contract`) unless it
    is won with a positive value, a start date, a manager and roles with hours."""
    opportunity_id = context.input.path_params["opportunityId"]
    response = await context.client.get("crm", 1, f"/opportunities/{opportunity_id}")
    response.raise_for_status()
    opportunity = response.body
    if opportunity.get("sync"):
        project_id = opportunity["sync"]["projectId"]
        raise _refused("already-set-up", "Already set up", f"{opportunity_id} became project {project_id}")
    issues = contract_issues(opportunity)
    if issues:
        raise _refused(
            "invalid-contract", "Invalid contract attributes", f"{opportunity_id}: {'; '.join(issues)}"
        )
    return {
        "opportunityId": opportunity_id,
        "name": opportunity["name"],
        "client": opportunity["client"],
        "contract": opportunity["contract"],
    }


async def upsert_client(context: StepContext) -> dict[str, Any]:
    """Input: the client of `validate-contract`. Output: `clientId`, created or updated in the ERP."""
    client = context.outputs["validate-contract"]["client"]
    body = {"name": client["name"], "country": client["country"]}
    if client.get("vatId"):
        body["vatId"] = client["vatId"]
    response = await context.client.put("erp", 1, f"/clients/{client['id']}", json=body)
    response.raise_for_status()
    return {"clientId": client["id"]}


async def create_project(context: StepContext) -> dict[str, Any]:
    """Input: the opportunity and the ERP client. Output: the ERP `projectId`."""
    opportunity = context.outputs["validate-contract"]
    response = await context.client.post(
        "erp",
        1,
        "/projects",
        json={
            "clientId": context.outputs["upsert-client"]["clientId"],
            "name": opportunity["name"],
            "opportunityId": opportunity["opportunityId"],
            "contractValue": opportunity["contract"]["value"],
            "startDate": opportunity["contract"]["startDate"],
        },
    )
    response.raise_for_status()
    return {"projectId": response.body["id"]}


async def close_project(context: StepContext) -> None:
    """Compensates `create-project`: closes the ERP project (closing twice changes nothing)."""
    project_id = context.output["projectId"]
    reason = f"lead-to-project run {context.run_id} could not set the project up"
    response = await context.client.post("erp", 1, f"/projects/{project_id}/close", json={"reason": reason})
    response.raise_for_status()


async def provision_engagement(context: StepContext) -> dict[str, Any]:
    """Input: the contract and the ERP project. Output: the PSA `engagementId`.

    The PSA refuses for good (422) an engagement it cannot run, such as a billing model it does not
    offer: the run then compensates, closing the ERP project."""
    opportunity = context.outputs["validate-contract"]
    contract = opportunity["contract"]
    response = await context.client.post(
        "psa",
        1,
        "/engagements",
        json={
            "projectId": context.outputs["create-project"]["projectId"],
            "clientId": context.outputs["upsert-client"]["clientId"],
            "opportunityId": opportunity["opportunityId"],
            "billingModel": contract["billingModel"],
            "startDate": contract["startDate"],
            "managerId": contract["managerId"],
            "roles": [{"role": r["role"], "hours": r["hours"]} for r in contract["roles"]],
        },
    )
    response.raise_for_status()
    return {"engagementId": response.body["id"]}


async def staff_engagement(context: StepContext) -> dict[str, Any]:
    """Input: the contract's manager and roles, the engagement. Output: `manager` and `members`.

    Reads the manager and the people in each role from the HCM (one person per HOURS_PER_PERSON
    contracted hours, at least one, as many as there are) and sets them as the engagement's team."""
    contract = context.outputs["validate-contract"]["contract"]
    found = await context.client.get("hcm", 1, f"/employees/{contract['managerId']}")
    found.raise_for_status()
    manager = {"personId": found.body["id"], "name": found.body["name"]}
    members: list[dict[str, str]] = []
    for need in contract["roles"]:
        people = await context.client.get("hcm", 1, "/people", query={"role": need["role"]})
        people.raise_for_status()
        wanted = max(1, math.ceil(need["hours"] / HOURS_PER_PERSON))
        members += [
            {"personId": p["id"], "name": p["name"], "role": need["role"]} for p in people.body[:wanted]
        ]
    engagement_id = context.outputs["provision-engagement"]["engagementId"]
    team = {"manager": manager, "members": members}
    response = await context.client.put("psa", 1, f"/engagements/{engagement_id}/team", json=team)
    response.raise_for_status()
    return team


async def mark_synced(context: StepContext) -> dict[str, Any]:
    """Input: every earlier output. Output: what the run set up; emits `delivery.project.created`."""
    opportunity_id = context.outputs["validate-contract"]["opportunityId"]
    project_id = context.outputs["create-project"]["projectId"]
    engagement_id = context.outputs["provision-engagement"]["engagementId"]
    response = await context.client.post(
        "crm",
        1,
        f"/opportunities/{opportunity_id}/sync",
        json={"projectId": project_id, "engagementId": engagement_id},
    )
    response.raise_for_status()
    team = context.outputs["staff-engagement"]
    context.emit(
        "delivery.project.created",
        {
            "opportunityId": opportunity_id,
            "clientId": context.outputs["upsert-client"]["clientId"],
            "projectId": project_id,
            "engagementId": engagement_id,
            "managerId": team["manager"]["personId"],
            "members": [m["personId"] for m in team["members"]],
        },
    )
    return {"opportunityId": opportunity_id, "syncedAt": response.body["sync"]["syncedAt"]}


def project_set_up(flow_input: FlowInput, outputs: Mapping[str, Any]) -> Outcome:
    """The process API's 201: the lead-to-project contract's `ProjectSetUp`."""
    team = outputs["staff-engagement"]
    return Outcome(
        status=201,
        body={
            "opportunityId": outputs["validate-contract"]["opportunityId"],
            "clientId": outputs["upsert-client"]["clientId"],
            "projectId": outputs["create-project"]["projectId"],
            "engagementId": outputs["provision-engagement"]["engagementId"],
            "manager": team["manager"],
            "members": team["members"],
        },
    )


LEAD_TO_PROJECT = Flow(
    name="lead-to-project",
    owner="integration",
    title="Lead to project",
    description="A won CRM opportunity becomes an ERP client and project and a staffed PSA engagement.",
    steps=(
        Step(
            "validate-contract",
            validate_contract,
            SYSTEM_CALLS,
            description="CRM: read and check the contract",
        ),
        Step("upsert-client", upsert_client, SYSTEM_CALLS, description="ERP: create or update the client"),
        Step(
            "create-project",
            create_project,
            SYSTEM_CALLS,
            compensate=close_project,
            description="ERP: create the project (compensation closes it)",
        ),
        Step("provision-engagement", provision_engagement, SYSTEM_CALLS, description="PSA: provision"),
        Step("staff-engagement", staff_engagement, SYSTEM_CALLS, description="HCM to PSA: manager and roles"),
        Step(
            "mark-synced",
            mark_synced,
            SYSTEM_CALLS,
            description="CRM: mark synced; emit delivery.project.created",
        ),
    ),
    business_keys=("opportunityId", "clientId", "projectId", "engagementId"),
    sla_seconds=15 * 60,
    result=project_set_up,
    # A refused engagement (or an outage outlasting the retries) leaves no open project behind.
    compensate_on_failure=True,
    client_id=FLOWS_CLIENT,
)


# --- time-to-bill ------------------------------------------------------------------------------


async def read_approved_time(context: StepContext) -> dict[str, Any]:
    """Input: `client` and `period` of the request body. Output: the approved entries to bill.

    Refuses for good (422 `nothing-to-bill`) a month without approved time."""
    client, period = context.input.body["client"], context.input.body["period"]
    response = await context.client.get(
        "psa", 1, "/time-entries/approved", query={"client": client, "period": period}
    )
    response.raise_for_status()
    if not response.body:
        raise _refused("nothing-to-bill", "Nothing to bill", f"no approved time of {client} in {period}")
    entries = [
        {k: e[k] for k in ("id", "projectId", "date", "hours", "rate", "description") if k in e}
        for e in response.body
    ]
    return {"client": client, "period": period, "entries": entries}


def billing_line(entry: Mapping[str, Any]) -> dict[str, Any]:
    amount = Decimal(str(entry["hours"])) * Decimal(entry["rate"]["amount"])
    line = {
        "timeEntryId": entry["id"],
        "projectId": entry["projectId"],
        "date": entry["date"],
        "hours": entry["hours"],
        "rate": entry["rate"],
        "amount": {"amount": f"{amount:.2f}", "currency": entry["rate"]["currency"]},
    }
    if entry.get("description"):
        line["description"] = entry["description"]
    return line


async def post_billing_lines(context: StepContext) -> dict[str, Any]:
    """Input: the entries of `read-approved-time`. Output: `invoiced` (the month was billed before).

    The ERP bills a time entry once, so posting again adds nothing."""
    read = context.outputs["read-approved-time"]
    body = {
        "clientId": read["client"],
        "period": read["period"],
        "lines": [billing_line(e) for e in read["entries"]],
    }
    response = await context.client.post("erp", 1, "/billing-lines", json=body)
    if response.status == 409:  # invoiced by an earlier run: the next step answers that invoice
        return {"invoiced": True}
    response.raise_for_status()
    return {"invoiced": False, "lines": response.body["lines"]}


async def issue_invoice(context: StepContext) -> dict[str, Any]:
    """Input: client and period. Output: the `invoiceId` and its total; emits `finance.invoice.ready`.

    One invoice per client and month: when an earlier run issued it, this run answers it and
    emits nothing."""
    read = context.outputs["read-approved-time"]
    client, period = read["client"], read["period"]
    invoice = None
    if not context.outputs["post-billing-lines"]["invoiced"]:
        response = await context.client.post(
            "erp", 1, "/invoices", json={"clientId": client, "period": period}
        )
        if response.status != 409:
            response.raise_for_status()
            invoice = response.body
            context.emit(
                "finance.invoice.ready",
                {
                    "invoiceId": invoice["id"],
                    "client": client,
                    "period": period,
                    "lines": len(invoice["lines"]),
                    "total": invoice["total"],
                },
            )
    if invoice is None:
        found = await context.client.get("erp", 1, "/invoices", query={"clientId": client, "period": period})
        found.raise_for_status()
        if not found.body:
            raise StepFailed(f"the ERP reports {client} {period} invoiced but lists no invoice")
        invoice = found.body[0]
    return {
        "invoiceId": invoice["id"],
        "lines": len(invoice["lines"]),
        "hours": sum(line["hours"] for line in invoice["lines"]),
        "total": invoice["total"],
    }


def billing_run(flow_input: FlowInput, outputs: Mapping[str, Any]) -> Outcome:
    """The process API's 201: the time-to-bill contract's `BillingRun`."""
    return Outcome(status=201, body={**flow_input.body, **outputs["issue-invoice"]})


TIME_TO_BILL = Flow(
    name="time-to-bill",
    owner="finance",
    title="Time to bill",
    description="A client's approved time of one month becomes ERP billing lines and an invoice.",
    steps=(
        Step("read-approved-time", read_approved_time, SYSTEM_CALLS, description="PSA: approved time"),
        Step("post-billing-lines", post_billing_lines, SYSTEM_CALLS, description="ERP: billing lines"),
        Step(
            "issue-invoice",
            issue_invoice,
            SYSTEM_CALLS,
            description="ERP: invoice; emit finance.invoice.ready",
        ),
    ),
    business_keys=("client", "period", "invoiceId"),
    sla_seconds=30 * 60,
    result=billing_run,
    # An outage that outlasts the retries parks the run: an operator retries it once the ERP is back.
    compensate_on_failure=False,
    client_id=FLOWS_CLIENT,
)

FLOWS = (LEAD_TO_PROJECT, TIME_TO_BILL)
