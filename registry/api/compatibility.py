"""HTTP routes for the compatibility engine: a version's changes, and a candidate's verdict."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
import semver
from litestar import Controller, Request, get, post
from litestar.params import QueryParameter

from contracts.diff import Level, group_changes
from registry import canonical_models, catalog, compatibility, diff_policies, publishing
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import NO_NUL, ChangesOut, CompatibilityOut
from registry.api.versions import PublishOperation, VersionName, read_submission
from registry.db.models import Layer
from registry.errors import InvalidRequest
from registry.versions import get_version

MAX_GROUPS = 200
FromVersion = Annotated[
    str | None,
    QueryParameter(
        name="from",
        max_length=100,
        pattern=NO_NUL,
        description="diff from this version instead of the stored base",
    ),
]


GroupLimit = Annotated[int, QueryParameter(name="limit", ge=1, le=MAX_GROUPS, description="groups per page")]
Cursor = Annotated[
    str | None,
    QueryParameter(name="cursor", pattern=r"^[0-9]{1,7}$", description="`next_cursor` of the previous page"),
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
        limit: GroupLimit = 50,
        cursor: Cursor = None,
    ) -> ChangesOut:
        """Stored changes are as publishing judged them; against `from`, the API's severity policy
        of today judges them. Each page groups the whole diff again (tens of milliseconds for
        thirty thousand findings) rather than keep a server-side cursor."""
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        row = await get_version(session, api, version)
        if from_version is None:
            changes = compatibility.stored_changes(row)
            base_version, breaking = row.base_version, bool(row.breaking)
            required_bump: str = row.required_bump or "none"
            suppressed = row.suppressed or {}
        else:
            base = await get_version(session, api, from_version)
            if semver.Version.parse(base.version) == semver.Version.parse(row.version):
                raise InvalidRequest("`from` names the version itself")
            policy = await diff_policies.applicable(session, api)
            report = await compatibility.diff_versions(
                session, base, row, limits=settings.load_limits(), policy=policy
            )
            changes, base_version, breaking = report.changes, base.version, report.breaking
            required_bump = report.required_bump.value
            suppressed = report.suppressed
        groups = await anyio.to_thread.run_sync(group_changes, changes)
        start = int(cursor or 0)
        end = start + limit
        return ChangesOut(
            api=api.name,
            version=row.version,
            base_version=base_version,
            breaking=breaking,
            required_bump=required_bump,  # type: ignore[arg-type]
            groups=groups[start:end],
            total_groups=len(groups),
            total_findings=len(changes),
            counts={level.value: sum(g.level is level for g in groups) for level in Level},
            next_cursor=str(end) if end < len(groups) else None,
            suppressed=suppressed,
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
        groups = await anyio.to_thread.run_sync(group_changes, report.changes) if report else []
        dependents = []
        if checked.api.layer == Layer.CANONICAL and report is not None and report.breaking:
            dependents = await canonical_models.affected_dependents(
                session, checked.api.name, verdict.base_version, checked.version
            )
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
            groups=groups,
            suppressed=report.suppressed if report else {},
            dependents=dependents,
        )
