"""The simulated CRM, ERP, PSA and HCM of the demo: in-memory systems behind the gateway.

One `DemoSystems` per application: the composition root hands their handlers to the gateway (under
the adapter names the demo manifest binds, `demo-crm` ...), and the demo's admin endpoints read
their call counts and inject faults into the same objects.
"""

from __future__ import annotations

from gateway.adapters.python import Handler
from registry.demo.systems.crm import Crm
from registry.demo.systems.erp import Erp
from registry.demo.systems.hcm import Hcm
from registry.demo.systems.psa import Psa
from registry.demo.systems.simulated import Fault, SimulatedSystem
from registry.errors import NotFound

__all__ = ["DemoSystems", "Fault", "SimulatedSystem"]


class DemoSystems:
    def __init__(self) -> None:
        self.crm, self.erp, self.psa, self.hcm = Crm(), Erp(), Psa(), Hcm()
        self.by_name: dict[str, SimulatedSystem] = {
            s.name: s for s in (self.crm, self.erp, self.psa, self.hcm)
        }

    def adapters(self) -> dict[str, dict[str, Handler]]:
        """Handlers by the adapter name the demo manifest binds each system API to."""
        return {f"demo-{name}": system.handlers() for name, system in self.by_name.items()}

    def system(self, name: str) -> SimulatedSystem:
        found = self.by_name.get(name)
        if found is None:
            raise NotFound(f"no demo system {name!r} (there are {', '.join(sorted(self.by_name))})")
        return found
