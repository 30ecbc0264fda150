"""HTTP routes for canonical models: the API versions whose contracts declare one."""

from __future__ import annotations

from litestar import Controller, get

from registry import canonical_models, catalog
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import DependentList
from registry.db.models import Layer


class CanonicalController(Controller):
    path = "/api/v1/apis/{name:str}"
    tags = ["canonical models"]

    @get(
        "/dependents",
        responses=errors(400, 401, 403, 404),
        summary="The released API versions whose contracts declare this canonical model (`x-canonical`)",
    )
    async def dependents(
        self, session: Session, principal: Caller, settings: Config, name: ApiName
    ) -> DependentList:
        """One item per API version and declared range, with the pointers of the declaring schemas;
        at most a thousand declarations, read from the index publishing keeps (no contract is parsed).
        An API of another layer has none: publishing refuses a declaration of a name no canonical
        model bears."""
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        if api.layer != Layer.CANONICAL:
            return DependentList(canonical=api.name, items=[])
        return DependentList(canonical=api.name, items=await canonical_models.dependents(session, api.name))
