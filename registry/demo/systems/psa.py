"""The simulated PSA: engagements, their team, and the time consultants book and have approved."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from gateway.adapters.base import GatewayRequest, GatewayResponse
from registry.demo.systems.simulated import Handler, SimulatedSystem, admit, not_found, problem, query_value

# The PSA's own rules, beyond the contract's schema: a request that breaks them is refused for good
# (422), whatever a retry does; this is how the demo shows compensation.
BILLING_MODELS = ("time-and-materials", "fixed-price")
ROLES = ("project-manager", "consultant", "architect", "analyst", "developer")

SEED_ENGAGEMENTS = (
    {
        "id": "ENG-1000",
        "projectId": "PRJ-1000",
        "clientId": "acme",
        "opportunityId": None,
        "billingModel": "time-and-materials",
        "startDate": "2026-09-01",
        "managerId": "e-100",
        "roles": [{"role": "consultant", "hours": 600}],
        "status": "active",
        "team": {"manager": {"personId": "e-100", "name": "Maria Keller"}, "members": []},
    },
)


def _entry(entry_id: str, person: str, date: str, hours: float, state: str = "approved") -> dict[str, Any]:
    return {
        "id": entry_id,
        "clientId": "acme",
        "projectId": "PRJ-1000",
        "engagementId": "ENG-1000",
        "personId": person,
        "date": date,
        "hours": hours,
        "rate": {"amount": "150.00", "currency": "EUR"},
        "description": "Data platform build",
        "state": state,
    }


SEED_TIME_ENTRIES = (
    _entry("te-5001", "e-201", "2026-10-06", 8),
    _entry("te-5002", "e-202", "2026-10-07", 6.5),
    _entry("te-5003", "e-201", "2026-11-03", 8),
    _entry("te-5004", "e-202", "2026-11-04", 7.5),
    _entry("te-5005", "e-201", "2026-11-05", 4),
    _entry("te-5006", "e-202", "2026-11-06", 8, state="submitted"),  # not approved: never billed
)


class Psa(SimulatedSystem):
    name = "psa"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1001)
        self.engagements = {e["id"]: dict(e) for e in SEED_ENGAGEMENTS}
        self.time_entries = {e["id"]: dict(e) for e in SEED_TIME_ENTRIES}

    def operations(self) -> Mapping[str, Handler]:
        return {
            "createEngagement": self.create_engagement,
            "getEngagement": self.get_engagement,
            "assignEngagementTeam": self.assign_team,
            "listApprovedTimeEntries": self.list_approved_time_entries,
        }

    async def create_engagement(self, request: GatewayRequest) -> GatewayResponse:
        data = request.json
        if data["billingModel"] not in BILLING_MODELS:
            return problem(
                422,
                "unsupported-billing-model",
                "Unsupported billing model",
                f"the PSA offers {', '.join(BILLING_MODELS)}, not {data['billingModel']}",
            )
        unknown = sorted({r["role"] for r in data["roles"]} - set(ROLES))
        if unknown:
            return problem(422, "unknown-role", "Unknown role", f"the PSA has no role {', '.join(unknown)}")
        admit(self.engagements, "engagements")
        engagement = {
            "opportunityId": None,
            **data,
            "id": f"ENG-{next(self._ids)}",
            "status": "provisioned",
            "team": None,
        }
        self.engagements[engagement["id"]] = engagement
        return GatewayResponse(status=201, body=engagement)

    async def get_engagement(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        engagement_id = request.path_params["engagementId"]
        engagement = self.engagements.get(engagement_id)
        return engagement if engagement is not None else not_found(f"engagement {engagement_id}")

    async def assign_team(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        engagement_id = request.path_params["engagementId"]
        engagement = self.engagements.get(engagement_id)
        if engagement is None:
            return not_found(f"engagement {engagement_id}")
        unknown = sorted({m["role"] for m in request.json["members"]} - set(ROLES))
        if unknown:
            return problem(422, "unknown-role", "Unknown role", f"the PSA has no role {', '.join(unknown)}")
        engagement.update(team=request.json, status="staffed")
        return engagement

    async def list_approved_time_entries(self, request: GatewayRequest) -> list[dict[str, Any]]:
        client, period = query_value(request, "client"), query_value(request, "period") or ""
        return [
            e
            for e in self.time_entries.values()
            if e["state"] == "approved" and e["clientId"] == client and e["date"].startswith(period + "-")
        ]
