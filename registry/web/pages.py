"""The portal's pages: thin handlers that read through the same services as the REST API and render
templates (autoescaped: every value from the registry is untrusted text)."""

from __future__ import annotations

import shlex
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
import msgspec
import semver
from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter
from litestar.response import Template
from sqlalchemy import select

from contracts.diff import Bump, ChangeGroup, Level, actual_bump, bump_suffices, group_changes
from contracts.lint import Finding, lint
from contracts.lint.findings import in_report_order
from contracts.lint.ruleset import RECOMMENDED
from contracts.loading import Document
from policies.auth import Principal
from registry import canonical_models, catalog, compatibility, consumers, diff_policies, rulesets, search
from registry.api.dependencies import Config, Session
from registry.api.versions import JSON, YAML, document_bytes
from registry.db.models import Api, ApiVersion, Layer, LintRuleset, VersionState, utcnow
from registry.errors import InvalidRequest, NotFound
from registry.versions import get_version, list_versions
from registry.web import queries
from registry.web.access import (
    require_page_read,
)
from registry.web.asyncapi_docs import asyncapi_docs
from registry.web.model_docs import model_summary
from registry.web.usage_chart import daily_usage

PAGE_SIZE = 20
MAX_PAGE = 50_000  # offset 1,000,000 at most, as the search API
# The API page lists the changes of this many recent versions, each cut at this many changes (each
# one place that changed), naming this many of the operations a change reaches.
CHANGELOG_VERSIONS = 20
CHANGES_PER_VERSION = 50
CHANGELOG_OPERATIONS = 5
MAX_FINDINGS = 100
# A change to a shared schema reaches hundreds of operations: the diff page names this many of them.
OPERATIONS_PER_GROUP = 50
TEAM_APIS = 100
Name = Annotated[str, PathParameter(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
Version = Annotated[str, PathParameter(max_length=100, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")]
Text = Annotated[str | None, QueryParameter(max_length=200)]
KINDS = ("openapi", "asyncapi", "json-schema")


def page(
    request: Request, template: str, principal: Principal | None, status: int = 200, **context: Any
) -> Template:
    return Template(
        template_name=template,
        context={"user": principal.subject if principal else None, **context},
        status_code=status,
    )


class Pager(msgspec.Struct, frozen=True):
    number: int
    pages: int
    previous: str | None
    next: str | None


class PortalController(Controller):
    path = "/"
    include_in_schema = False

    @get("/", name="portal:catalog")
    async def catalog_page(
        self,
        request: Request,
        session: Session,
        settings: Config,
        facet_cache: NamedDependency[queries.FacetCache],
        q: Text = None,
        owner: Text = None,
        layer: Text = None,
        domain: Text = None,
        tag: Text = None,
        kind: Text = None,
        lifecycle: Text = None,
        page_number: Annotated[int, QueryParameter(name="page", ge=1, le=MAX_PAGE)] = 1,
    ) -> Template:
        principal = await require_page_read(request)
        chosen = {"q": q, "owner": owner, "layer": layer, "domain": domain, "tag": tag, "kind": kind}
        chosen["lifecycle"] = lifecycle
        chosen = {k: v.strip() for k, v in chosen.items() if v and v.strip()}
        for key, allowed in (
            ("layer", [x.value for x in Layer]),
            ("kind", KINDS),
            ("lifecycle", [x.value for x in VersionState]),
        ):
            if key in chosen and chosen[key] not in allowed:
                raise InvalidRequest(f"{key} must be one of {', '.join(allowed)}")
        query = search.SearchQuery(
            q=chosen.get("q"),
            owner=chosen.get("owner"),
            layer=chosen.get("layer"),
            domain=chosen.get("domain"),
            tag=chosen.get("tag"),
            kind=chosen.get("kind"),
            state=chosen.get("lifecycle"),
            limit=PAGE_SIZE,
            offset=(page_number - 1) * PAGE_SIZE,
        )
        rows, total = await search.search_apis(session, query)
        pages = max(1, -(-total // PAGE_SIZE))

        def link(number: int) -> str:
            return "/?" + urlencode({**chosen, "page": number})

        return page(
            request,
            "catalog.html",
            principal,
            results=rows,
            badges=await queries.badges(session, rows),
            total=total,
            chosen=chosen,
            facets=await facet_cache.get(session),
            layers=[x.value for x in Layer],
            kinds=KINDS,
            states=[x.value for x in VersionState],
            pager=Pager(
                number=page_number,
                pages=pages,
                previous=link(page_number - 1) if page_number > 1 else None,
                next=link(page_number + 1) if page_number < pages else None,
            ),
            remove={key: "/?" + urlencode({k: v for k, v in chosen.items() if k != key}) for key in chosen},
        )

    @get("/apis/{name:str}", name="portal:api")
    async def api_page(self, request: Request, session: Session, settings: Config, name: Name) -> Template:
        principal = await require_page_read(request)
        api = await catalog.get_api(session, name)
        versions = await list_versions(session, api)
        newest_first = list(reversed(versions))
        shown = _shown_version(api, versions)
        document = await compatibility.stored_document(session, shown) if shown else None
        findings: list[Finding] = []
        if document is not None:
            ruleset = await rulesets.applicable(session, api) or RECOMMENDED
            findings = in_report_order(await anyio.to_thread.run_sync(lint, document, ruleset))
        usage, calls_by_version = await queries.usage_by_version(session, api)
        chart = await daily_usage(session, api.name, utcnow().date())
        changelog = await anyio.to_thread.run_sync(_changelog, newest_first[:CHANGELOG_VERSIONS])
        return page(
            request,
            "api.html",
            principal,
            api=api,
            versions=newest_first,
            shown=shown,
            curl=_curl_example(settings.public_url, api, shown, document),
            changelog=changelog,
            changes_per_version=CHANGES_PER_VERSION,
            changelog_operations=CHANGELOG_OPERATIONS,
            findings=findings[:MAX_FINDINGS],
            finding_count=len(findings),
            api_url=f"{settings.public_url}/api/v1/apis/{api.name}",
            consumers=await consumers.list_consumers(session, api),
            usage=usage,
            chart=chart,
            gateway_url=f"{settings.public_url}/gw/{api.name}/",
            calls_by_version=calls_by_version,
            most_calls=max(calls_by_version.values(), default=0),
        )

    @get("/apis/{name:str}/versions/{version:str}", name="portal:version")
    async def version_page(
        self, request: Request, session: Session, name: Name, version: Version
    ) -> Template:
        principal = await require_page_read(request)
        api = await catalog.get_api(session, name)
        row = await get_version(session, api, version)
        if row.kind == "asyncapi":
            document = await compatibility.stored_document(session, row)
            docs = await anyio.to_thread.run_sync(asyncapi_docs, document)
            return page(request, "version_asyncapi.html", principal, api=api, row=row, docs=docs)
        if row.kind == "json-schema":
            document = await compatibility.stored_document(session, row)
            dependents = await canonical_models.dependents(session, api.name)
            model = model_summary(document)
            return page(
                request, "version_model.html", principal, api=api, row=row, model=model, dependents=dependents
            )
        return page(request, "version_openapi.html", principal, api=api, row=row)

    @get("/apis/{name:str}/versions/{version:str}/document.json", name="portal:document-json")
    async def document_json(
        self, request: Request, session: Session, name: Name, version: Version
    ) -> Response[bytes]:
        return await self._document(request, session, name, version, as_yaml=False)

    @get("/apis/{name:str}/versions/{version:str}/document.yaml", name="portal:document-yaml")
    async def document_yaml(
        self, request: Request, session: Session, name: Name, version: Version
    ) -> Response[bytes]:
        return await self._document(request, session, name, version, as_yaml=True)

    async def _document(
        self, request: Request, session: Session, name: str, version: str, *, as_yaml: bool
    ) -> Response[bytes]:
        await require_page_read(request)
        api = await catalog.get_api(session, name)
        row = await get_version(session, api, version)
        headers = {"ETag": f'"{row.fingerprint}"', "X-Content-Type-Options": "nosniff"}
        if request.query_params.get("download"):
            extension = "yaml" if as_yaml else "json"
            headers["Content-Disposition"] = f'attachment; filename="{api.name}-{row.version}.{extension}"'
        return Response(
            document_bytes(row, as_yaml=as_yaml), media_type=YAML if as_yaml else JSON, headers=headers
        )

    @get("/apis/{name:str}/diff", name="portal:diff")
    async def diff_page(
        self,
        request: Request,
        session: Session,
        settings: Config,
        name: Name,
        from_version: Annotated[str | None, QueryParameter(name="from", max_length=100)] = None,
        to_version: Annotated[str | None, QueryParameter(name="to", max_length=100)] = None,
    ) -> Template:
        principal = await require_page_read(request)
        api = await catalog.get_api(session, name)
        versions = await list_versions(session, api)
        to_name = to_version or api.latest_version or (versions[-1].version if versions else None)
        from_name = from_version or (queries.previous_version(versions, to_name) if to_name else None)
        context: dict[str, Any] = {"api": api, "versions": list(reversed(versions)), "report": None}
        context.update(from_name=from_name, to_name=to_name)
        if from_name is None or to_name is None:
            return page(request, "diff.html", principal, **context)
        base = await get_version(session, api, from_name)
        revision = await get_version(session, api, to_name)
        if base.version == revision.version:
            raise InvalidRequest("Choose two different versions to compare.")
        policy = await diff_policies.applicable(session, api)
        report = await compatibility.diff_versions(
            session, base, revision, limits=settings.load_limits(), policy=policy
        )
        groups = await anyio.to_thread.run_sync(group_changes, report.changes)
        actual = actual_bump(base.version, revision.version)
        enough = report.required_bump is Bump.NONE or bump_suffices(
            report.required_bump, base.version, revision.version
        )
        context.update(
            report=report,
            groups=groups,
            operations_shown=OPERATIONS_PER_GROUP,
            actual=actual,
            enough=enough,
            backwards=semver.Version.parse(revision.version) < semver.Version.parse(base.version),
            counts={level.value: sum(g.level is level for g in groups) for level in Level},
        )
        context.update(from_name=base.version, to_name=revision.version)
        return page(request, "diff.html", principal, **context)

    @get("/teams/{team:str}", name="portal:team")
    async def team_page(self, request: Request, session: Session, team: Name) -> Template:
        principal = await require_page_read(request)
        row = await catalog.get_team(session, team)
        apis, total = await search.search_apis(session, search.SearchQuery(owner=row.name, limit=TEAM_APIS))
        ruleset = await session.scalar(
            select(LintRuleset).where(LintRuleset.scope == rulesets.team_scope(row.name))
        )
        return page(
            request,
            "team.html",
            principal,
            team=row,
            apis=apis,
            total=total,
            badges=await queries.badges(session, apis),
            ruleset=ruleset,
        )


def _shown_version(api: Api, versions: list[ApiVersion]) -> ApiVersion | None:
    """The version the overview describes: the latest released one, else the newest at all."""
    for row in reversed(versions):
        if row.version == api.latest_version:
            return row
    return versions[-1] if versions else None


def _changelog(rows: list[ApiVersion]) -> list[tuple[ApiVersion, list[ChangeGroup], int]]:
    """Each version's stored changes, once per place that changed (breaking first), and the number of
    findings they group. Off the event loop: a shared schema's change is a finding per operation."""
    changelog = []
    for row in rows:
        if row.base_version is None:
            continue
        changes = compatibility.stored_changes(row)
        changelog.append((row, group_changes(changes), len(changes)))
    return changelog


def _curl_example(public_url: str, api: Api, row: ApiVersion | None, document: Document | None) -> str | None:
    """A call through the gateway to the first GET of the contract (OpenAPI only: events have no URL)."""
    if row is None or document is None or row.kind != "openapi":
        return None
    paths = document.get("paths") if isinstance(document.get("paths"), dict) else {}
    candidates = [p for p, item in paths.items() if isinstance(item, dict) and "get" in item]
    path = next((p for p in candidates if "{" not in p), candidates[0] if candidates else "/")
    major = semver.Version.parse(row.version).major
    url = f"{public_url}/gw/{api.name}/v{major}{path}"
    return f'curl -H "Authorization: Bearer $TOKEN" {shlex.quote(url)}'


__all__ = ["NotFound", "PortalController"]
