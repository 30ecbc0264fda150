"""HTTP routes of the demo's simulated systems: call counts, and faults an admin injects.

Mounted only when the demo runs (CHARTER_DEMO): a person watches a flow retry a failing system,
park its run when the retries run out, finish after the fault is cleared, or compensate.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, put
from litestar.params import Body, PathParameter

from registry import audit
from registry.access import ADMIN, require_scope
from registry.api.dependencies import Caller, Session
from registry.api.problems import errors
from registry.api.schemas import DemoFault, DemoSystemOut
from registry.api.security import ADMIN_SECURITY
from registry.demo.systems import DemoSystems, Fault, SimulatedSystem

SystemName = Annotated[str, PathParameter(description="crm, erp, psa or hcm", pattern=r"^[a-z]{1,20}$")]


class DemoController(Controller):
    path = "/api/v1/demo/systems"
    tags = ["demo"]
    security = ADMIN_SECURITY

    @get(responses=errors(400, 401, 403), summary="Calls and faults of every demo system")
    async def list_systems(self, request: Request, principal: Caller) -> list[DemoSystemOut]:
        """For admins: the simulated CRM, ERP, PSA and HCM, each with its call counts and fault."""
        require_scope(principal, ADMIN)
        return [_system_out(system) for system in _systems(request).by_name.values()]

    @get("/{system:str}", responses=errors(400, 401, 403, 404), summary="Calls and faults of a demo system")
    async def get_system(self, request: Request, principal: Caller, system: SystemName) -> DemoSystemOut:
        """For admins: how often each operation of the simulated system was called, and its fault."""
        require_scope(principal, ADMIN)
        return _system_out(_systems(request).system(system))

    @put(
        "/{system:str}/faults",
        responses=errors(400, 401, 403, 404),
        summary="Inject a fault into a demo system",
    )
    async def put_faults(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        system: SystemName,
        data: Annotated[DemoFault, Body()],
    ) -> DemoSystemOut:
        """For admins: the next `fail_next` calls answer `status` (problem+json), and every call waits
        `delay_ms` first, until another PUT (zeros clear the fault). Audited."""
        actor = require_scope(principal, ADMIN)
        simulated = _systems(request).system(system)
        before = msgspec.to_builtins(simulated.fault)
        simulated.set_fault(msgspec.convert(msgspec.to_builtins(data), Fault))
        audit.record(
            session,
            actor=actor.subject,
            action="demo.fault.set",
            subject=f"demo/systems/{system}",
            before=before,
            after=msgspec.to_builtins(data),
        )
        await session.commit()
        return _system_out(simulated)


def _systems(request: Request) -> DemoSystems:
    return request.app.state.demo_systems


def _system_out(system: SimulatedSystem) -> DemoSystemOut:
    fault = system.fault
    return DemoSystemOut(
        name=system.name,
        calls=dict(system.calls),
        faults=DemoFault(fail_next=fault.fail_next, status=fault.status, delay_ms=fault.delay_ms),
    )
