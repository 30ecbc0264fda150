"""HTTP routes for the compatibility engine: a version's changes, and a candidate's verdict."""

from __future__ import annotations

from typing import Annotated

import semver
from litestar import Controller, Request, get, post
from litestar.params import QueryParameter

from registry import catalog, compatibility, publishing
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import NO_NUL, ChangesOut, CompatibilityOut
from registry.api.versions import PublishOperation, VersionName, read_submission
from registry.errors import InvalidRequest
from registry.versions import get_version

FromVersion = Annotated[
    str | None,
    QueryParameter(
        name="from",
        max_length=100,
        pattern=NO_NUL,
        description="diff from this version instead of the stored base",
    ),
]


class CompatibilityController(Controller):
    path = "/api/v1/apis/{name:str}"
    tags = ["compatibility"]

    @get(
        "/versions/{version:str}/changes",
        responses=errors(400, 401, 403, 404, 422),
        summary="A version's changes against its predecessor, or against `from`",
    )
    async def changes(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: VersionName,
        from_version: FromVersion = None,
    ) -> ChangesOut:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        row = await get_version(session, api, version)
        if from_version is None:
            changes = compatibility.stored_changes(row)
            return ChangesOut(
                api=api.name,
                version=row.version,
                base_version=row.base_version,
                breaking=bool(row.breaking),
                required_bump=row.required_bump or "none",  # type: ignore[arg-type]
                changes=changes,
            )
        base = await get_version(session, api, from_version)
        if semver.Version.parse(base.version) == semver.Version.parse(row.version):
            raise InvalidRequest("`from` names the version itself")
        report = await compatibility.diff_versions(session, base, row, limits=settings.load_limits())
        return ChangesOut(
            api=api.name,
            version=row.version,
            base_version=base.version,
            breaking=report.breaking,
            required_bump=report.required_bump.value,
            changes=report.changes,
        )

    @post(
        "/compatibility",
        operation_class=PublishOperation,
        status_code=200,
        responses=errors(400, 401, 403, 404, 413, 415, 422),
        summary="Test a candidate document against the registry without publishing it",
    )
    async def check(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: Annotated[str | None, QueryParameter(name="version", max_length=100, pattern=NO_NUL)] = None,
        root: Annotated[str | None, QueryParameter(name="root", max_length=500, pattern=NO_NUL)] = None,
    ) -> CompatibilityOut:
        submission = await read_submission(request, root)
        checked = await publishing.check_candidate(
            session,
            principal,
            api_name=name,
            submission=submission,
            version=version,
            limits=settings.load_limits(),
            anonymous_reads=settings.anonymous_reads,
        )
        verdict = checked.verdict
        report = verdict.report
        return CompatibilityOut(
            api=checked.api.name,
            version=checked.version,
            compatibility=checked.api.compatibility,
            base_version=verdict.base_version,
            verdict="compatible" if verdict.compatible else "incompatible",
            breaking=report.breaking if report else False,
            required_bump=verdict.required_bump.value,
            changes=report.changes if report else [],
            offending=verdict.offending,
        )
