"""The simulated CRM: won opportunities with their client and contract attributes."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Mapping
from typing import Any

from gateway.adapters.base import GatewayRequest, GatewayResponse
from registry.demo.systems.simulated import Handler, SimulatedSystem, not_found

# Four opportunities that show the four ways lead-to-project ends: a project (opp-1001), refused
# contract attributes (opp-1002: no value, no manager), an engagement the PSA refuses for good so the
# ERP project is closed again (opp-1003: a billing model the PSA does not offer), not won (opp-1004).
SEED: tuple[dict[str, Any], ...] = (
    {
        "id": "opp-1001",
        "name": "Acme ERP rollout",
        "stage": "won",
        "client": {"id": "acme", "name": "Acme Corporation", "country": "DE", "vatId": "DE123456789"},
        "contract": {
            "value": {"amount": "240000.00", "currency": "EUR"},
            "startDate": "2027-01-04",
            "billingModel": "time-and-materials",
            "managerId": "e-100",
            "roles": [{"role": "consultant", "hours": 800}, {"role": "architect", "hours": 120}],
        },
    },
    {
        "id": "opp-1002",
        "name": "Globex data migration",
        "stage": "won",
        "client": {"id": "globex", "name": "Globex Ltd", "country": "GB"},
        "contract": {
            "value": {"amount": "0.00", "currency": "GBP"},
            "startDate": "2027-02-01",
            "billingModel": "fixed-price",
            "managerId": None,
            "roles": [],
        },
    },
    {
        "id": "opp-1003",
        "name": "Initech support retainer",
        "stage": "won",
        "client": {"id": "initech", "name": "Initech Inc", "country": "US"},
        "contract": {
            "value": {"amount": "60000.00", "currency": "USD"},
            "startDate": "2027-01-11",
            "billingModel": "retainer",
            "managerId": "e-100",
            "roles": [{"role": "consultant", "hours": 300}],
        },
    },
    {
        "id": "opp-1004",
        "name": "Umbrella security audit",
        "stage": "negotiation",
        "client": {"id": "umbrella", "name": "Umbrella plc", "country": "FR"},
        "contract": {
            "value": {"amount": "45000.00", "currency": "EUR"},
            "startDate": "2027-03-01",
            "billingModel": "fixed-price",
            "managerId": "e-100",
            "roles": [{"role": "analyst", "hours": 200}],
        },
    },
)


class Crm(SimulatedSystem):
    name = "crm"

    def __init__(self) -> None:
        super().__init__()
        self.opportunities = {o["id"]: {**copy.deepcopy(o), "sync": None} for o in SEED}

    def operations(self) -> Mapping[str, Handler]:
        return {"getOpportunity": self.get_opportunity, "markOpportunitySynced": self.mark_synced}

    async def get_opportunity(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        opportunity_id = request.path_params["opportunityId"]
        opportunity = self.opportunities.get(opportunity_id)
        return opportunity if opportunity is not None else not_found(f"opportunity {opportunity_id}")

    async def mark_synced(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        opportunity_id = request.path_params["opportunityId"]
        opportunity = self.opportunities.get(opportunity_id)
        if opportunity is None:
            return not_found(f"opportunity {opportunity_id}")
        opportunity["sync"] = {
            "projectId": request.json["projectId"],
            "engagementId": request.json["engagementId"],
            "syncedAt": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        }
        return opportunity
