"""The simulated HCM: employees, their managers and their roles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.adapters.base import GatewayRequest, GatewayResponse
from registry.demo.systems.simulated import Handler, SimulatedSystem, not_found, query_value

SEED: tuple[dict[str, Any], ...] = (
    {
        "id": "e-001",
        "name": "Clara Brandt",
        "email": "clara.brandt@example.com",
        "role": "director",
        "managerId": None,
    },
    {
        "id": "e-100",
        "name": "Maria Keller",
        "email": "maria.keller@example.com",
        "role": "project-manager",
        "managerId": "e-001",
    },
    {
        "id": "e-201",
        "name": "Jonas Weber",
        "email": "jonas.weber@example.com",
        "role": "consultant",
        "managerId": "e-100",
    },
    {
        "id": "e-202",
        "name": "Aylin Demir",
        "email": "aylin.demir@example.com",
        "role": "consultant",
        "managerId": "e-100",
    },
    {
        "id": "e-301",
        "name": "Tom Fischer",
        "email": "tom.fischer@example.com",
        "role": "architect",
        "managerId": "e-100",
    },
    {
        "id": "e-401",
        "name": "Lena Vogel",
        "email": "lena.vogel@example.com",
        "role": "analyst",
        "managerId": "e-100",
    },
)


class Hcm(SimulatedSystem):
    name = "hcm"

    def __init__(self) -> None:
        super().__init__()
        self.employees = {e["id"]: dict(e) for e in SEED}

    def operations(self) -> Mapping[str, Handler]:
        return {"getEmployee": self.get_employee, "listPeopleByRole": self.list_people_by_role}

    async def get_employee(self, request: GatewayRequest) -> dict[str, Any] | GatewayResponse:
        employee_id = request.path_params["employeeId"]
        employee = self.employees.get(employee_id)
        return employee if employee is not None else not_found(f"employee {employee_id}")

    async def list_people_by_role(self, request: GatewayRequest) -> list[dict[str, Any]]:
        role = query_value(request, "role")
        return [e for e in self.employees.values() if e["role"] == role]
