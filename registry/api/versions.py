"""HTTP routes for contract versions: publish, read (JSON or YAML by Accept), lifecycle."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Annotated

import msgspec
import yaml
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Body, PathParameter, QueryParameter

from registry import catalog, lifecycle, publishing
from registry.access import require_read
from registry.api.catalog import ApiName
from registry.api.dependencies import Caller, Config, Session
from registry.api.problems import errors
from registry.api.schemas import NO_NUL, ConformanceRun, DeprecateIn, RetireIn, VersionList, VersionOut
from registry.api.security import WRITE_SECURITY
from registry.api.views import version_out
from registry.db.models import Api, ApiVersion
from registry.errors import RegistryError
from registry.versions import file_paths, get_file, get_version, list_versions

YAML = "application/yaml"
JSON = "application/json"
ZIP = "application/zip"
_DOCUMENT_TYPES = (JSON, YAML, "application/x-yaml", "text/yaml", "application/vnd.oai.openapi+json")
VersionName = Annotated[
    str,
    PathParameter(
        description="semantic version, or `latest`", max_length=100, pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$"
    ),
]


class UnsupportedMediaType(RegistryError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


@dataclass
class PublishOperation(Operation):
    """The publish body is the contract itself in one of several encodings, not a JSON struct."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="The contract: JSON or YAML, a zip bundle, or a multipart upload of its files.",
            content={
                JSON: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                # A YAML document is a mapping at its root, as a JSON one is an object.
                YAML: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                ZIP: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format="binary")),  # type: ignore[arg-type]
                "multipart/form-data": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        description="One `file` part is the document; several file parts are a bundle.",
                        properties={
                            "file": Schema(type=OpenAPIType.STRING, format="binary"),  # type: ignore[arg-type]
                            "root": Schema(type=OpenAPIType.STRING, pattern=NO_NUL, max_length=500),
                        },
                        required=["file"],
                    )
                ),
            },
        )


@dataclass
class DocumentOperation(Operation):
    def __post_init__(self) -> None:
        ok = self.responses.get("200") if self.responses else None
        if ok is not None and not isinstance(ok, type(None)):
            ok.content = {  # type: ignore[union-attr]
                JSON: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
                YAML: OpenAPIMediaType(schema=Schema(type=OpenAPIType.OBJECT)),
            }


class VersionController(Controller):
    path = "/api/v1/apis/{name:str}/versions"
    tags = ["versions"]

    @post(
        operation_class=PublishOperation,
        responses={
            200: ResponseSpec(VersionOut, description="This version with this content was already stored"),
            **errors(400, 401, 403, 404, 409, 413, 415, 422),
        },
        status_code=201,
        summary="Publish a contract version",
        security=WRITE_SECURITY,
    )
    async def publish(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: Annotated[str | None, QueryParameter(name="version", max_length=100, pattern=NO_NUL)] = None,
        owner: Annotated[str | None, QueryParameter(name="owner", max_length=100, pattern=NO_NUL)] = None,
        draft: Annotated[bool, QueryParameter(name="draft")] = False,
        force: Annotated[
            bool,
            QueryParameter(name="force", description="admins only: publish despite incompatible changes"),
        ] = False,
        root: Annotated[str | None, QueryParameter(name="root", max_length=500, pattern=NO_NUL)] = None,
    ) -> Response[VersionOut]:
        submission = await read_submission(request, root)
        result = await publishing.publish_version(
            session,
            principal,
            api_name=name,
            submission=submission,
            version=version,
            owner=owner,
            draft=draft,
            force=force,
            limits=settings.load_limits(),
            telemetry=request.app.state.publish_telemetry,
            traceparent=request.headers.get("traceparent"),
        )
        await session.commit()
        api = await catalog.get_api(session, name)
        body = version_out(api, result.version, await file_paths(session, result.version))
        return Response(body, status_code=201 if result.created else 200)

    @get(responses=errors(400, 401, 403, 404), summary="List the versions of an API")
    async def list_versions(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
    ) -> VersionList:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        rows = await list_versions(session, api)
        return VersionList(items=[version_out(api, row, []) for row in rows])

    @get(
        "/{version:str}",
        operation_class=DocumentOperation,
        responses=errors(400, 401, 403, 404),
        summary="The contract document, as JSON or YAML by Accept",
    )
    async def get_document(
        self,
        request: Request,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: VersionName,
    ) -> Response[bytes]:
        _, row = await self._version(session, principal, settings, name, version)
        wanted = request.accept.best_match(list(_DOCUMENT_TYPES), default=JSON) or JSON
        as_yaml = "yaml" in wanted
        return Response(
            document_bytes(row, as_yaml=as_yaml),
            media_type=YAML if as_yaml else JSON,
            headers={"ETag": f'"{row.fingerprint}"', "Charter-Version-State": row.state},
        )

    @get("/{version:str}/metadata", responses=errors(400, 401, 403, 404), summary="A version's metadata")
    async def get_metadata(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: VersionName,
    ) -> VersionOut:
        api, row = await self._version(session, principal, settings, name, version)
        return version_out(api, row, await file_paths(session, row))

    @get(
        "/{version:str}/files/{path:path}",
        responses=errors(400, 401, 403, 404),
        summary="One file of a multi-file contract, as stored",
        media_type="application/octet-stream",
    )
    async def get_bundle_file(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: VersionName,
        path: Annotated[str, PathParameter(description="file path inside the bundle", pattern=NO_NUL)],
    ) -> Response[bytes]:
        _, row = await self._version(session, principal, settings, name, version)
        content = await get_file(session, row, path.lstrip("/"))
        media = mimetypes.guess_type(path)[0] or (
            "application/yaml" if path.endswith((".yaml", ".yml")) else None
        )
        return Response(content, media_type=media or "application/octet-stream")

    @post(
        "/{version:str}/deprecate",
        status_code=200,
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Deprecate a version, with a sunset date and a replacement",
        security=WRITE_SECURITY,
    )
    async def deprecate(
        self,
        session: Session,
        principal: Caller,
        name: ApiName,
        version: VersionName,
        data: Annotated[DeprecateIn, Body()],
    ) -> VersionOut:
        row = await lifecycle.deprecate(session, principal, name, version, data)
        return await self._done(session, name, row)

    @post(
        "/{version:str}/retire",
        status_code=200,
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Retire a deprecated version (or, admins only, a published one in an emergency)",
        security=WRITE_SECURITY,
    )
    async def retire(
        self,
        session: Session,
        principal: Caller,
        name: ApiName,
        version: VersionName,
        data: Annotated[RetireIn | None, Body()] = None,
    ) -> VersionOut:
        row = await lifecycle.retire(session, principal, name, version, data or RetireIn())
        return await self._done(session, name, row)

    @post(
        "/{version:str}/release",
        status_code=200,
        responses=errors(400, 401, 403, 404, 409, 422),
        summary="Release a draft version",
        security=WRITE_SECURITY,
    )
    async def release(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: ApiName,
        version: VersionName,
        force: Annotated[
            bool,
            QueryParameter(name="force", description="admins only: release despite incompatible changes"),
        ] = False,
    ) -> VersionOut:
        row = await lifecycle.release(
            session, principal, name, version, limits=settings.load_limits(), force=force
        )
        return await self._done(session, name, row)

    @post(
        "/{version:str}/conformance",
        status_code=200,
        responses=errors(400, 401, 403, 404),
        summary="Record a conformance run of the version against a live deployment",
        security=WRITE_SECURITY,
    )
    async def conformance(
        self,
        session: Session,
        principal: Caller,
        name: ApiName,
        version: VersionName,
        data: Annotated[ConformanceRun, Body()],
    ) -> VersionOut:
        row = await lifecycle.record_conformance(session, principal, name, version, data)
        return await self._done(session, name, row)

    async def _version(
        self,
        session: Session,
        principal: Caller,
        settings: Config,
        name: str,
        version: str,
    ) -> tuple[Api, ApiVersion]:
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        api = await catalog.get_api(session, name)
        return api, await get_version(session, api, version)

    async def _done(self, session: Session, name: str, row: ApiVersion) -> VersionOut:
        await session.commit()
        api = await catalog.get_api(session, name)
        return version_out(api, row, await file_paths(session, row))


async def read_submission(request: Request, root: str | None) -> publishing.Submission:
    media_type = request.content_type[0].lower()
    if media_type == "multipart/form-data":
        form = await request.form()
        files: dict[str, bytes] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[value.filename or key] = await value.read()
            elif key == "root" and isinstance(value, str) and root is None:
                root = value
        if not files:
            raise UnsupportedMediaType("the multipart upload holds no file")
        return publishing.Submission(files=files, root=root)
    if media_type in (ZIP, "application/x-zip-compressed"):
        return publishing.Submission(zip_data=await request.body(), root=root)
    if (
        media_type in _DOCUMENT_TYPES
        or media_type.endswith(("+json", "+yaml"))
        or media_type
        in (
            "text/plain",
            "application/octet-stream",
        )
    ):
        return publishing.Submission(document=await request.body(), media_type=media_type)
    raise UnsupportedMediaType(
        f"cannot publish {media_type or 'a body without Content-Type'}: send JSON, YAML, a zip or multipart"
    )


def document_bytes(row: ApiVersion, *, as_yaml: bool) -> bytes:
    source_is_yaml = row.media_type == YAML
    if as_yaml:
        if source_is_yaml:
            return row.source
        document = msgspec.json.decode(row.canonical)
        return yaml.dump(document, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True).encode()
    if row.media_type == JSON:
        return row.source
    return row.canonical
