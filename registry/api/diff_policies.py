"""HTTP routes for the diff's severity policies: the global one (admins) and each API's (its team)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, delete, get, put
from litestar.params import Body

from contracts.diff import SeverityPolicy
from registry import catalog, diff_policies
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import DiffPolicyOut, EffectiveDiffPolicyOut
from registry.api.security import ADMIN_SECURITY, WRITE_SECURITY
from registry.db.models import DiffPolicy
from registry.errors import RegistryError

PolicyBody = Annotated[
    SeverityPolicy,
    Body(
        description="`severity`: rule id to error, warning, info or off (ids in docs/changes.md);"
        " `open_enums` and `open_unions`: new enum values, union members and channel messages break no reader"
    ),
]


class DiffPolicyController(Controller):
    path = "/api/v1"
    tags = ["diff-policies"]

    @put(
        "/diff-policies/global",
        status_code=200,
        responses=errors(400, 401, 403, 422),
        summary="Set the global severity policy of the diff (admins)",
        security=ADMIN_SECURITY,
    )
    async def put_global(
        self, request: Request, session: Session, principal: Caller, data: PolicyBody
    ) -> DiffPolicyOut:
        policy = await _strictly(request)
        row = await diff_policies.put_policy(session, principal, diff_policies.GLOBAL, policy)
        await session.commit()
        return _out(row)

    @get(
        "/diff-policies/global",
        responses=errors(400, 401, 403),
        summary="The global severity policy (empty when none is stored)",
    )
    async def get_global(self, session: Session, principal: Caller, settings: Config) -> DiffPolicyOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        scope = diff_policies.GLOBAL
        return _stored_or_empty(await diff_policies.stored_policy(session, scope), scope)

    @delete(
        "/diff-policies/global",
        responses=errors(400, 401, 403),
        summary="Remove the global severity policy (admins)",
        security=ADMIN_SECURITY,
    )
    async def delete_global(self, session: Session, principal: Caller) -> None:
        await diff_policies.delete_policy(session, principal, diff_policies.GLOBAL)
        await session.commit()

    @put(
        "/apis/{name:str}/diff-policy",
        status_code=200,
        responses=errors(400, 401, 403, 404, 422),
        summary="Set an API's severity policy (its team or admins); it refines the global one",
        security=WRITE_SECURITY,
    )
    async def put_api(
        self, request: Request, session: Session, principal: Caller, name: ApiName, data: PolicyBody
    ) -> DiffPolicyOut:
        policy = await _strictly(request)
        row = await diff_policies.put_policy(session, principal, diff_policies.api_scope(name), policy)
        await session.commit()
        return _out(row)

    @get(
        "/apis/{name:str}/diff-policy",
        responses=errors(400, 401, 403, 404),
        summary="An API's own severity policy (empty when none is stored)",
    )
    async def get_api(
        self, session: Session, principal: Caller, settings: Config, name: ApiName
    ) -> DiffPolicyOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        await catalog.get_api(session, name)
        scope = diff_policies.api_scope(name)
        return _stored_or_empty(await diff_policies.stored_policy(session, scope), scope)

    @delete(
        "/apis/{name:str}/diff-policy",
        responses=errors(400, 401, 403, 404),
        summary="Remove an API's severity policy (its team or admins)",
        security=WRITE_SECURITY,
    )
    async def delete_api(self, session: Session, principal: Caller, name: ApiName) -> None:
        await diff_policies.delete_policy(session, principal, diff_policies.api_scope(name))
        await session.commit()

    @get(
        "/apis/{name:str}/diff-policy/effective",
        responses=errors(400, 401, 403, 404),
        summary="The policy the registry judges an API's changes with: its own over the global one",
    )
    async def get_effective(
        self, session: Session, principal: Caller, settings: Config, name: ApiName
    ) -> EffectiveDiffPolicyOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        policy, scopes = await diff_policies.effective(session, api)
        return EffectiveDiffPolicyOut(api=api.name, policy=policy or SeverityPolicy(), scopes=scopes)


async def _strictly(request: Request) -> SeverityPolicy:
    """The body decoded as strictly as the schema says. Litestar has decoded it into `data` already,
    which documents the body, but leniently: `0` would pass for `false`."""
    try:
        return msgspec.json.decode(await request.body(), type=SeverityPolicy)
    except msgspec.ValidationError as exc:
        raise RegistryError(f"the policy is invalid: {exc}") from None


def _stored_or_empty(row: DiffPolicy | None, scope: str) -> DiffPolicyOut:
    """A scope without a stored policy has an empty one: nothing is refined there (not a 404: the
    API exists, and so does its policy, empty until someone sets it)."""
    if row is None:
        return DiffPolicyOut(scope=scope, policy=SeverityPolicy(), stored=False)
    return _out(row)


def _out(row: DiffPolicy) -> DiffPolicyOut:
    return DiffPolicyOut(
        scope=row.scope,
        policy=diff_policies.policy_of(row),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
