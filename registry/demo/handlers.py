"""Python handler adapters for the demo contracts: small in-memory PSA systems behind the gateway.

Registered in the `charter.adapters` entry-point group (pyproject.toml) as `demo-projects` and
`demo-time-entries`; the gateway has already validated each request against the contract. Like the
simulated systems they replay the first answer of a write that carries an `Idempotency-Key`.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from gateway.adapters.base import GatewayRequest, GatewayResponse
from registry.demo.systems.simulated import Handler, SimulatedSystem

_ids = itertools.count(2)  # p-1 is seeded
_projects: dict[str, dict[str, Any]] = {
    "p-1": {"id": "p-1", "name": "ERP rollout", "client": "acme", "status": "active", "budgetHours": 800},
}
_milestones: dict[str, list[dict[str, Any]]] = {
    "p-1": [{"id": "m-1", "name": "Go-live", "due": "2027-03-31", "billable": True}],
}
_entries: dict[str, dict[str, Any]] = {}


def _not_found(what: str) -> GatewayResponse:
    return GatewayResponse(
        status=404,
        media_type="application/problem+json",
        body={"type": "/problems/not-found", "title": "Not found", "status": 404, "detail": f"no {what}"},
    )


async def list_projects(request: GatewayRequest) -> list[dict[str, Any]]:
    client = (request.query.get("client") or [None])[-1]
    status = (request.query.get("status") or [None])[-1]
    return [
        p
        for p in reversed(list(_projects.values()))
        if (client is None or p["client"] == client) and (status is None or p["status"] == status)
    ]


async def create_project(request: GatewayRequest) -> GatewayResponse:
    project = {**request.json, "id": f"p-{next(_ids)}", "status": "planned"}
    _projects[project["id"]] = project
    return GatewayResponse(status=201, body=project)


async def get_project(request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
    project = _projects.get(request.path_params["projectId"])
    return project if project is not None else _not_found(f"project {request.path_params['projectId']}")


async def list_milestones(request: GatewayRequest) -> list[dict[str, Any]] | GatewayResponse:
    project_id = request.path_params["projectId"]
    if project_id not in _projects:
        return _not_found(f"project {project_id}")
    return _milestones.get(project_id, [])


async def list_time_entries(request: GatewayRequest) -> list[dict[str, Any]]:
    consultant = (request.query.get("consultant") or [None])[-1]
    return [e for e in _entries.values() if consultant is None or e["consultant"] == consultant]


async def book_time(request: GatewayRequest) -> GatewayResponse:
    entry = {**request.json, "id": f"t-{next(_ids)}", "state": "booked"}
    _entries[entry["id"]] = entry
    return GatewayResponse(status=201, body=entry)


async def approve_time_entry(request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
    entry = _entries.get(request.path_params["entryId"])
    if entry is None:
        return _not_found(f"time entry {request.path_params['entryId']}")
    entry["state"] = "approved"
    return entry


class _Psa(SimulatedSystem):
    """The handlers below with the simulated systems' call counts and idempotent writes."""

    name = "psa-handlers"

    def operations(self) -> Mapping[str, Handler]:
        return {
            "listProjects": list_projects,
            "createProject": create_project,
            "getProject": get_project,
            "listMilestones": list_milestones,
            "listTimeEntries": list_time_entries,
            "bookTime": book_time,
            "approveTimeEntry": approve_time_entry,
        }


_handlers = _Psa().handlers()
PROJECTS = {
    name: _handlers[name] for name in ("listProjects", "createProject", "getProject", "listMilestones")
}
TIME_ENTRIES = {name: _handlers[name] for name in ("listTimeEntries", "bookTime", "approveTimeEntry")}
