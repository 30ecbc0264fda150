"""HTTP routes for other tools: Backstage catalog entities, and whole-registry backups (admins)."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Annotated

import msgspec
import yaml
from litestar import Controller, Request, get, post
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import QueryParameter
from litestar.response import Stream

from registry import audit
from registry.access import ADMIN, require_read, require_scope
from registry.api.dependencies import Caller, Config, Egress, Secrets
from registry.api.problems import errors
from registry.api.security import ADMIN_SECURITY
from registry.db.engine import begin_write
from registry.errors import RegistryError
from registry.interop import backstage
from registry.interop.archive_reader import BackupLimits, BackupReader
from registry.interop.export import write_backup
from registry.interop.restore import ImportReport, check_targets, restore

YAML = "application/yaml"
JSON = "application/json"
ZIP = "application/zip"
CHUNK = 256 * 1024


class ImportTooLarge(RegistryError):
    status, slug, title = 413, "request-too-large", "Request body too large"


class NotAZip(RegistryError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


def _answered_as(operation: Operation, content: dict[str, OpenAPIMediaType]) -> None:
    """Name the media types of the 200 answer, which litestar cannot infer from a Stream."""
    ok = operation.responses.get("200") if operation.responses else None
    if ok is not None:
        ok.content = content  # type: ignore[union-attr]


BINARY = Schema(type=OpenAPIType.STRING, format="binary")  # type: ignore[arg-type]


@dataclass
class EntitiesOperation(Operation):
    """The answer is a JSON array of entities, or a YAML stream of them by Accept."""

    def __post_init__(self) -> None:
        entity = Schema(type=OpenAPIType.OBJECT, required=["apiVersion", "kind", "metadata", "spec"])
        _answered_as(
            self,
            {
                JSON: OpenAPIMediaType(schema=Schema(type=OpenAPIType.ARRAY, items=entity)),
                YAML: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
            },
        )


@dataclass
class ExportOperation(Operation):
    def __post_init__(self) -> None:
        _answered_as(self, {ZIP: OpenAPIMediaType(schema=BINARY)})


@dataclass
class ImportOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            description="A backup zip made by GET /api/v1/admin/export.",
            content={media: OpenAPIMediaType(schema=BINARY) for media in (ZIP, "application/octet-stream")},
        )


class BackstageController(Controller):
    path = "/api/v1/backstage"
    tags = ["backstage"]

    @get(
        "/entities",
        operation_class=EntitiesOperation,
        responses=errors(401, 403),
        summary="The catalog as Backstage entities (an API per API, a Group per team)",
    )
    async def entities(self, request: Request, principal: Caller, settings: Config) -> Stream:
        """A JSON array, or with `Accept: application/yaml` a YAML stream of documents, which a Backstage
        catalog location reads. Streamed in batches: the whole catalog is never held at once."""
        require_read(principal, anonymous_reads=settings.anonymous_reads)
        as_yaml = "yaml" in (request.accept.best_match([JSON, YAML, "text/yaml"], default=JSON) or JSON)
        sessionmaker = request.app.state.sessionmaker
        public_url = settings.public_url

        async def body() -> AsyncIterator[bytes]:
            # A session of its own: the stream outlives the handler and its injected session.
            async with sessionmaker() as session:
                first = True
                if not as_yaml:
                    yield b"["
                async for batch in backstage.entities(session, public_url):
                    if as_yaml:
                        yield yaml.dump_all(
                            batch,
                            Dumper=yaml.CSafeDumper,
                            sort_keys=False,
                            allow_unicode=True,
                            explicit_start=True,
                        ).encode()
                        continue
                    chunk = b",".join(msgspec.json.encode(entity) for entity in batch)
                    yield chunk if first else b"," + chunk
                    first = False
                if not as_yaml:
                    yield b"]"

        return Stream(body(), media_type=YAML if as_yaml else JSON)


class BackupController(Controller):
    path = "/api/v1/admin"
    tags = ["backups"]

    @get(
        "/export",
        operation_class=ExportOperation,
        responses=errors(401, 403),
        summary="The whole registry as a backup zip (admins)",
        security=ADMIN_SECURITY,
    )
    async def export(self, request: Request, principal: Caller) -> Stream:
        """Teams, APIs, versions with their files, consumers, clients (secret hashes), grants, rulesets,
        diff policies, webhooks (secrets sealed) and the audit log, with a manifest.json."""
        caller = require_scope(principal, ADMIN)
        from registry.app import VERSION

        async with request.app.state.sessionmaker() as session:
            spool, manifest = await write_backup(session, charter_version=VERSION)
        # Who took a copy of everything (client secret hashes and sealed secrets included) is on record.
        async with request.app.state.sessionmaker() as session:
            await begin_write(session)
            audit.record(
                session,
                actor=caller.subject,
                action="registry.exported",
                subject="registry",
                after={"created_at": manifest.created_at.isoformat(), "counts": manifest.counts},
            )
            await session.commit()
        size = spool.seek(0, 2)
        spool.seek(0)
        stamp = manifest.created_at.strftime("%Y%m%dT%H%M%SZ")
        return Stream(
            _chunks(spool),
            media_type=ZIP,
            headers={
                "Content-Length": str(size),
                "Content-Disposition": f'attachment; filename="charter-backup-{stamp}.zip"',
            },
        )

    @post(
        "/import",
        operation_class=ImportOperation,
        status_code=200,
        responses=errors(400, 401, 403, 413, 415, 422),
        summary="Import a backup zip (admins); stored APIs are refused unless merge",
        security=ADMIN_SECURITY,
        request_max_body_size=None,  # the import's own cap (CHARTER_IMPORT_MAX_BYTES) applies below
    )
    async def import_backup(
        self,
        request: Request,
        principal: Caller,
        settings: Config,
        secrets: Secrets,
        egress: Egress,
        merge: Annotated[
            bool,
            QueryParameter(description="add the versions a stored API lacks, instead of refusing it"),
        ] = False,
    ) -> ImportReport:
        """All of the import commits, or none of it (422 for a damaged or foreign file, or one naming a
        URL the egress policy refuses); an API already stored is refused (reported) unless `merge`, and
        a stored version is never overwritten."""
        caller = require_scope(principal, ADMIN)
        media_type = request.content_type[0].lower()
        if media_type not in (ZIP, "application/x-zip-compressed", "application/octet-stream"):
            raise NotAZip(f"send the backup as {ZIP}, not {media_type or 'a body without Content-Type'}")
        limits = BackupLimits(
            max_entries=settings.import_max_entries, max_unpacked_bytes=settings.import_max_unpacked_bytes
        )
        with await _spooled(request, settings.import_max_bytes) as upload:
            reader = BackupReader(upload, limits)
            try:
                await check_targets(reader, egress)
                async with request.app.state.sessionmaker() as session:
                    report = await restore(
                        session, reader, actor=caller.subject, secrets=secrets, merge=merge
                    )
                    await session.commit()
            finally:
                reader.close()
        # This replica routes the imported APIs now; the others when they hear `registry.imported`.
        await request.app.state.gateway.reload()
        await request.app.state.event_contracts.reload()
        return report


async def _spooled(request: Request, cap: int) -> IO[bytes]:
    """The request body in a temporary file, refused past `cap` bytes before it is all read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ImportTooLarge(f"the backup is {declared} bytes; imports take at most {cap}")
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - the caller closes it
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > cap:
                raise ImportTooLarge(f"the backup is larger than {cap} bytes, the import limit")
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def _chunks(spool: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := spool.read(CHUNK):
            yield chunk
    finally:
        spool.close()
