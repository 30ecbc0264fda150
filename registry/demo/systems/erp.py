"""The simulated ERP: clients, projects, billing lines and invoices."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from gateway.adapters.base import GatewayRequest, GatewayResponse
from registry.demo.systems.simulated import (
    Handler,
    SimulatedSystem,
    admit,
    not_found,
    problem,
    query_value,
)

SEED_CLIENTS = ({"id": "acme", "name": "Acme Corporation", "country": "DE", "vatId": "DE123456789"},)
# The project whose approved time the demo bills (the PSA books time against it).
SEED_PROJECTS = (
    {
        "id": "PRJ-1000",
        "clientId": "acme",
        "name": "Acme data platform",
        "opportunityId": None,
        "contractValue": {"amount": "180000.00", "currency": "EUR"},
        "startDate": "2026-09-01",
        "status": "open",
        "closeReason": None,
    },
)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Erp(SimulatedSystem):
    name = "erp"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1001)
        self.clients = {c["id"]: dict(c) for c in SEED_CLIENTS}
        self.projects = {p["id"]: dict(p) for p in SEED_PROJECTS}
        # (client, period) -> time entry id -> billing line: a time entry is billed once.
        self.billing_lines: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}

    def operations(self) -> Mapping[str, Handler]:
        return {
            "upsertClient": self.upsert_client,
            "createProject": self.create_project,
            "getProject": self.get_project,
            "closeProject": self.close_project,
            "postBillingLines": self.post_billing_lines,
            "listInvoices": self.list_invoices,
            "issueInvoice": self.issue_invoice,
            "getInvoice": self.get_invoice,
        }

    async def upsert_client(self, request: GatewayRequest) -> GatewayResponse:
        client_id = request.path_params["clientId"]
        created = client_id not in self.clients
        if created:
            admit(self.clients, "clients")
        self.clients[client_id] = {**request.json, "id": client_id}
        return GatewayResponse(status=201 if created else 200, body=self.clients[client_id])

    async def create_project(self, request: GatewayRequest) -> GatewayResponse:
        data = request.json
        if data["clientId"] not in self.clients:
            return problem(
                422, "unknown-client", "Unknown client", f"no client {data['clientId']} in the ERP"
            )
        admit(self.projects, "projects")
        project = {
            "opportunityId": None,
            **data,
            "id": f"PRJ-{next(self._ids)}",
            "status": "open",
            "closeReason": None,
        }
        self.projects[project["id"]] = project
        return GatewayResponse(status=201, body=project)

    async def get_project(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        project_id = request.path_params["projectId"]
        project = self.projects.get(project_id)
        return project if project is not None else not_found(f"project {project_id}")

    async def close_project(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        project_id = request.path_params["projectId"]
        project = self.projects.get(project_id)
        if project is None:
            return not_found(f"project {project_id}")
        if project["status"] != "closed":  # closing twice changes nothing
            project.update(status="closed", closeReason=request.json["reason"])
        return project

    async def post_billing_lines(self, request: GatewayRequest) -> GatewayResponse:
        data = request.json
        client_id, period = data["clientId"], data["period"]
        if client_id not in self.clients:
            return problem(422, "unknown-client", "Unknown client", f"no client {client_id} in the ERP")
        for line in data["lines"]:
            project = self.projects.get(line["projectId"])
            if project is None or project["clientId"] != client_id:
                return problem(
                    422,
                    "unknown-project",
                    "Unknown project",
                    f"no project {line['projectId']} of {client_id}",
                )
        if any(i["clientId"] == client_id and i["period"] == period for i in self.invoices.values()):
            return problem(
                409, "period-invoiced", "Period invoiced", f"{client_id} {period} is invoiced already"
            )
        lines = self.billing_lines.setdefault((client_id, period), {})
        accepted = 0
        for line in data["lines"]:
            if line["timeEntryId"] not in lines:
                admit(lines, "billing lines of one client and period")
                lines[line["timeEntryId"]] = line
                accepted += 1
        body = {"clientId": client_id, "period": period, "accepted": accepted, "lines": len(lines)}
        return GatewayResponse(status=201, body=body)

    async def list_invoices(self, request: GatewayRequest) -> list[dict[str, Any]]:
        client_id, period = query_value(request, "clientId"), query_value(request, "period")
        return [
            i
            for i in self.invoices.values()
            if i["clientId"] == client_id and (period is None or i["period"] == period)
        ]

    async def issue_invoice(self, request: GatewayRequest) -> GatewayResponse:
        client_id, period = request.json["clientId"], request.json["period"]
        issued = next(
            (i for i in self.invoices.values() if i["clientId"] == client_id and i["period"] == period), None
        )
        if issued is not None:
            return problem(
                409,
                "period-invoiced",
                "Period invoiced",
                f"{client_id} {period} is invoiced as {issued['id']}",
            )
        lines = list(self.billing_lines.get((client_id, period), {}).values())
        if not lines:
            return problem(
                422, "nothing-to-bill", "Nothing to bill", f"no billing lines for {client_id} {period}"
            )
        currencies = {line["amount"]["currency"] for line in lines}
        if len(currencies) > 1:
            return problem(
                422, "mixed-currencies", "Mixed currencies", f"lines in {', '.join(sorted(currencies))}"
            )
        admit(self.invoices, "invoices")
        total = sum((Decimal(line["amount"]["amount"]) for line in lines), Decimal("0"))
        invoice = {
            "id": f"INV-{next(self._ids)}",
            "clientId": client_id,
            "period": period,
            "status": "issued",
            "lines": lines,
            "total": {"amount": f"{total:.2f}", "currency": currencies.pop()},
            "issuedAt": _now(),
        }
        self.invoices[invoice["id"]] = invoice
        return GatewayResponse(status=201, body=invoice)

    async def get_invoice(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        invoice_id = request.path_params["invoiceId"]
        invoice = self.invoices.get(invoice_id)
        return invoice if invoice is not None else not_found(f"invoice {invoice_id}")
