"""Publishing a contract version: analyse, check, store whole, audit, announce."""

from __future__ import annotations

import functools

import anyio.to_thread
import msgspec
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import Issue
from contracts.kinds import Family
from contracts.loading import Document, LoadLimits
from contracts.strictness import Strictness
from contracts.submission import AnalyzedContract, analyze_bundle, analyze_document, with_declarations
from policies.auth import Principal
from registry import audit, canonical_models, catalog, compatibility, rulesets
from registry import scopes as ownership
from registry.access import WRITE, require_owner, require_read, require_scope
from registry.api.schemas import ApiIn
from registry.db.engine import begin_write
from registry.db.models import Api, ApiVersion, Layer, VersionFile, VersionState
from registry.errors import AlreadyExists, InvalidRequest, NotFound, VersionConflict
from registry.telemetry import UNOBSERVED, PublishTelemetry
from registry.versions import find_version, parse_semver, refresh_latest


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """What a publisher sent: one document, a zip bundle, or the files of a multipart upload."""

    media_type: str | None = None
    document: bytes | None = None
    zip_data: bytes | None = None
    files: dict[str, bytes] | None = None
    root: str | None = None


class PublishResult(msgspec.Struct, frozen=True):
    version: ApiVersion
    created: bool


async def publish_version(
    session: AsyncSession,
    principal: Principal | None,
    *,
    api_name: str,
    submission: Submission,
    version: str | None = None,
    owner: str | None = None,
    draft: bool = False,
    force: bool = False,
    limits: LoadLimits,
    telemetry: PublishTelemetry = UNOBSERVED,
    traceparent: str | None = None,
) -> PublishResult:
    """`telemetry`: the span of the publish (continuing `traceparent`), one child per phase (validate,
    lint, diff, store), their durations and the result."""
    with telemetry.publish(api_name, traceparent) as span:
        result = await _publish(
            session,
            principal,
            api_name=api_name,
            submission=submission,
            version=version,
            owner=owner,
            draft=draft,
            force=force,
            limits=limits,
            telemetry=telemetry,
        )
        telemetry.published(span, result.version.version, created=result.created)
        return result


async def _publish(
    session: AsyncSession,
    principal: Principal | None,
    *,
    api_name: str,
    submission: Submission,
    version: str | None,
    owner: str | None,
    draft: bool,
    force: bool,
    limits: LoadLimits,
    telemetry: PublishTelemetry,
) -> PublishResult:
    require_scope(principal, WRITE)
    # Read phase: who owns it and how strict it is, without holding the write lock.
    api = await _find_api(session, api_name)
    if api is not None:
        require_owner(principal, api.owner)
        strictness = Strictness(api.validity)
    else:
        if owner is None:
            raise NotFound(f"API {api_name!r} does not exist; create it first or pass `owner`")
        require_owner(principal, await catalog.get_team(session, owner))
        strictness = Strictness.FULL
    await session.rollback()

    # Parsing and validating a large contract takes a second of CPU: keep it off the event loop.
    with telemetry.phase("validate"), telemetry.measured("validate"):
        analyzed = await anyio.to_thread.run_sync(
            lambda: with_declarations(analyze_submission(submission, strictness, limits))
        )
    number = version or analyzed.declared_version
    if number is None:
        raise InvalidRequest(
            "the document has no info.version; pass ?version=",
            [Issue(pointer="/info/version", message="required when no version is given")],
        )
    parse_semver(number, pointer="/info/version" if version is None else "")
    with telemetry.phase("lint"):
        await _lint(session, api_name, owner, analyzed, submission, limits)
    with telemetry.phase("diff"):
        verdict = await _assess(session, api_name, number, analyzed, limits, telemetry)
    if verdict is not None and not verdict.compatible and not draft:
        api = await catalog.get_api(session, api_name)
        compatibility.refuse_unless_forced(principal, api, number, verdict, force=force)
    await session.rollback()
    with telemetry.phase("store"):
        return await _store(
            session,
            principal,
            api_name=api_name,
            number=number,
            owner=owner,
            submission=submission,
            analyzed=analyzed,
            verdict=verdict,
            draft=draft,
            force=force,
            limits=limits,
        )


async def _store(
    session: AsyncSession,
    principal: Principal | None,
    *,
    api_name: str,
    number: str,
    owner: str | None,
    submission: Submission,
    analyzed: AnalyzedContract,
    verdict: compatibility.Verdict | None,
    draft: bool,
    force: bool,
    limits: LoadLimits,
) -> PublishResult:
    """The write phase, under the API's lock: judged again if a version landed meanwhile, stored whole."""
    await begin_write(session)
    try:
        api = await catalog.lock_api(session, api_name)
    except NotFound:
        try:
            api = await _create_api_for(session, principal, api_name, owner or "", analyzed)
        except AlreadyExists:
            # A concurrent first publish created the API: carry on against the stored one.
            await session.rollback()
            await begin_write(session)
            api = await catalog.lock_api(session, api_name)
    actor = require_owner(principal, api.owner)

    existing = await find_version(session, api, number)
    if existing is not None:
        return _same_or_conflict(existing, analyzed)
    if api.kind is not None and analyzed.kind is not None and api.kind != analyzed.kind.family.value:
        raise InvalidRequest(f"API {api.name!r} holds {api.kind} contracts, not {analyzed.kind.family.value}")
    require_layer_fits(api, analyzed)
    if analyzed.kind is not None:
        verdict = await compatibility.current(
            session, api, number, analyzed.document, verdict, limits=limits, fingerprint=analyzed.fingerprint
        )
        if not draft:
            compatibility.refuse_unless_forced(principal, api, number, verdict, force=force)
    declared = ownership.declared(analyzed.document)
    if not draft:
        await ownership.require_unclaimed(session, api, declared)

    row = ApiVersion(
        api_id=api.id,
        version=number,
        state=(VersionState.DRAFT if draft else VersionState.PUBLISHED).value,
        kind=analyzed.kind.family.value if analyzed.kind else None,
        spec_version=analyzed.kind.spec_version if analyzed.kind else None,
        fingerprint=analyzed.fingerprint,
        media_type=_stored_media_type(submission),
        source=_root_source(submission, analyzed),
        canonical=analyzed.canonical,
        root_path=analyzed.root_path,
        size_bytes=_size(submission),
        search_text=catalog_text(analyzed.index.search_text()) if analyzed.index else "",
        published_by=actor.subject,
        files=[VersionFile(path=p, content=c) for p, c in sorted(analyzed.files.items())],
        **compatibility.change_columns(verdict),
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        # Another publish of this version won the race; tell this one what is stored.
        await session.rollback()
        existing = await find_version(session, await catalog.get_api(session, api_name), number)
        if existing is None:
            raise
        return _same_or_conflict(existing, analyzed)
    ownership.index_version(session, row, declared)
    canonical_models.index_declarations(session, row, analyzed.declarations)

    if api.kind is None and analyzed.kind is not None:
        api.kind = analyzed.kind.family.value
    if not api.description:
        # An API created without a description is described by its contract, as on a first publish.
        api.description = contract_description(analyzed.document)
    await refresh_latest(session, api)
    await catalog.reindex(session, api)
    summary = version_record(api, row)
    if verdict is not None and not verdict.compatible and not draft:
        summary |= {"forced": True, "offending": sorted({c.id for c in verdict.offending})}
    audit.record(
        session,
        actor=actor.subject,
        action="version.drafted" if draft else "version.published",
        subject=f"apis/{api.name}/versions/{number}",
        after=summary,
    )
    audit.emit(session, "contract.drafted" if draft else "contract.published", summary)
    report = verdict.report if verdict is not None else None
    if api.layer == Layer.CANONICAL and not draft and report is not None and report.breaking:
        assert verdict is not None
        base = verdict.base_version
        affected = await canonical_models.affected_dependents(session, api.name, base, number)
        canonical_models.announce_breaking(session, api.name, number, base, report.changes, affected)
    return PublishResult(row, created=True)


def require_layer_fits(api: Api, analyzed: AnalyzedContract) -> None:
    """A canonical model (JSON Schema) is published under a canonical API, and nothing else is."""
    if analyzed.kind is None:
        return
    model = analyzed.kind.family is Family.JSON_SCHEMA
    if model and api.layer != Layer.CANONICAL:
        raise InvalidRequest(
            f"a JSON Schema document is a canonical model: publish it under an API of layer `canonical`, "
            f"not {api.layer} API {api.name!r}"
        )
    if not model and api.layer == Layer.CANONICAL:
        raise InvalidRequest(
            f"API {api.name!r} is a canonical model: it holds JSON Schema documents, not {analyzed.kind}"
        )


class CandidateCheck(msgspec.Struct, frozen=True):
    api: Api
    version: str
    verdict: compatibility.Verdict
    document: Document


async def check_candidate(
    session: AsyncSession,
    principal: Principal | None,
    *,
    api_name: str,
    submission: Submission,
    version: str | None,
    limits: LoadLimits,
    anonymous_reads: bool,
) -> CandidateCheck:
    """What publishing this document would meet, without publishing it: a dry run for CI."""
    require_read(principal, anonymous_reads=anonymous_reads)
    api = await catalog.get_api(session, api_name)
    strictness = Strictness(api.validity)
    await session.rollback()
    analyzed = await anyio.to_thread.run_sync(
        functools.partial(analyze_submission, submission, strictness, limits)
    )
    number = version or analyzed.declared_version or ""
    parse_semver(number, pointer="/info/version" if version is None else "")
    if analyzed.kind is None:
        raise InvalidRequest("the document's kind is unknown, so it cannot be compared")
    api = await catalog.get_api(session, api_name)
    if api.kind not in (None, analyzed.kind.family.value):
        raise InvalidRequest(f"API {api.name!r} holds {api.kind} contracts, not {analyzed.kind.family.value}")
    require_layer_fits(api, analyzed)
    verdict = await compatibility.assess(session, api, number, analyzed.document, limits=limits)
    return CandidateCheck(api, number, verdict, analyzed.document)


async def _lint(
    session: AsyncSession,
    api_name: str,
    owner: str | None,
    analyzed: AnalyzedContract,
    submission: Submission,
    limits: LoadLimits,
) -> None:
    """The owning team's governance ruleset (or the global one) on the document; errors refuse it,
    each with its line and column when the document came as one text (a bundle's pointers are into
    the resolved document, not a file)."""
    if analyzed.kind is None:
        return
    api = await _find_api(session, api_name)
    if api is not None:
        ruleset, layer = await rulesets.applicable(session, api), api.layer
    else:
        ruleset, layer = await rulesets.for_team(session, owner or ""), _layer_for(analyzed)
    # The canonical rules run on every publish (the registry holds the models they need); a stored
    # ruleset sets their levels, or turns them off, as it does any rule's.
    context = await canonical_models.lint_context(
        session, layer, analyzed.declarations, max_comparisons=limits.max_schema_comparisons
    )
    single = submission.zip_data is None and not submission.files
    source = submission.document if single else None
    await anyio.to_thread.run_sync(
        functools.partial(rulesets.enforce, source=source, media_type=submission.media_type),
        analyzed.document,
        canonical_models.publish_ruleset(ruleset),
        context,
    )


async def _assess(
    session: AsyncSession,
    api_name: str,
    number: str,
    analyzed: AnalyzedContract,
    limits: LoadLimits,
    telemetry: PublishTelemetry = UNOBSERVED,
) -> compatibility.Verdict | None:
    """The candidate against its predecessor, before the write lock: a large diff takes CPU time."""
    api = await _find_api(session, api_name)
    if api is None or analyzed.kind is None or api.kind not in (None, analyzed.kind.family.value):
        return None
    if await find_version(session, api, number) is not None:
        return None  # a re-publish: the write phase answers it as stored or as a conflict
    with telemetry.measured("diff"):
        return await compatibility.assess(
            session, api, number, analyzed.document, limits=limits, fingerprint=analyzed.fingerprint
        )


def analyze_submission(
    submission: Submission, strictness: Strictness, limits: LoadLimits
) -> AnalyzedContract:
    if submission.zip_data is not None:
        return _storable(
            analyze_bundle(
                zip_data=submission.zip_data, root=submission.root, strictness=strictness, limits=limits
            )
        )
    if submission.files is not None and len(submission.files) > 1:
        return _storable(
            analyze_bundle(files=submission.files, root=submission.root, strictness=strictness, limits=limits)
        )
    document = submission.document
    if document is None and submission.files:
        document = next(iter(submission.files.values()))
    if document is None:
        raise InvalidRequest("no document was sent")
    return _storable(
        analyze_document(document, media_type=submission.media_type, strictness=strictness, limits=limits)
    )


# Lengths of VersionFile.path and ApiVersion.spec_version: PostgreSQL refuses longer values where
# SQLite would keep them, so both databases refuse them here.
MAX_PATH = 500
MAX_SPEC_VERSION = 20


def _storable(analyzed: AnalyzedContract) -> AnalyzedContract:
    """What the catalog keeps as identifiers must fit its columns: a bundle's file names (they name
    `.../files/{path}`, so NUL is refused too) and the `openapi`/`asyncapi` version, which a contract
    not validated (validity `none`) may write at any length."""
    if analyzed.kind is not None and len(analyzed.kind.spec_version) > MAX_SPEC_VERSION:
        field = next(f for f in ("openapi", "swagger", "asyncapi") if f in analyzed.document)
        raise InvalidRequest(
            f"the `{field}` version is longer than {MAX_SPEC_VERSION} characters",
            [Issue(pointer=f"/{field}", message=f"at most {MAX_SPEC_VERSION} characters")],
        )
    for path in analyzed.files:
        if "\x00" in path or len(path) > MAX_PATH:
            raise InvalidRequest(
                f"file name {path[:80]!r} in the bundle holds NUL or is longer than {MAX_PATH} characters",
                [Issue(pointer="", message="rename the file", file=path.replace("\x00", "")[:MAX_PATH])],
            )
    return analyzed


def _same_or_conflict(existing: ApiVersion, analyzed: AnalyzedContract) -> PublishResult:
    if existing.fingerprint == analyzed.fingerprint:
        return PublishResult(existing, created=False)
    raise VersionConflict(
        f"version {existing.version} is already stored with other content "
        f"({existing.fingerprint}); publish a new version instead"
    )


async def _find_api(session: AsyncSession, name: str) -> Api | None:
    try:
        return await catalog.get_api(session, name)
    except NotFound:
        return None


async def _create_api_for(
    session: AsyncSession, principal: Principal | None, name: str, owner: str, analyzed: AnalyzedContract
) -> Api:
    info = analyzed.document.get("info") if isinstance(analyzed.document.get("info"), dict) else {}
    title = catalog_text(str(info.get("title") or name))[:300] or name
    description = contract_description(analyzed.document)
    try:
        data = msgspec.convert(
            {
                "name": name,
                "owner": owner,
                "title": title,
                "layer": _layer_for(analyzed),
                "description": description,
            },
            ApiIn,
        )
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"cannot create API {name!r}: {exc}") from None
    return await catalog.create_api(session, principal, data)


def _layer_for(analyzed: AnalyzedContract) -> str:
    """The layer of an API a first publish creates: a JSON Schema is a canonical model."""
    model = analyzed.kind is not None and analyzed.kind.family is Family.JSON_SCHEMA
    return Layer.CANONICAL.value if model else Layer.SYSTEM.value


def contract_description(document: Document) -> str | None:
    """The contract's `info.description`, as catalog text; None when it has none."""
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    described = info.get("description")
    return (catalog_text(str(described)) or None) if described is not None else None


def catalog_text(value: str) -> str:
    """Text the catalog takes from a document, without NUL.

    A contract may hold NUL in its strings (`"\\u0000"` in a pattern or an example): it is stored
    whole, as bytes, on every database. The catalog's text columns cannot hold NUL on PostgreSQL,
    so the title, description and search words drop it, alike on SQLite.
    """
    return value.replace("\x00", "")


def _stored_media_type(submission: Submission) -> str:
    if submission.zip_data is not None or (submission.files and len(submission.files) > 1):
        return "application/zip"
    media = (submission.media_type or "").split(";")[0].strip().lower()
    if "yaml" in media:
        return "application/yaml"
    if "json" in media:
        return "application/json"
    source = submission.document or b""
    return "application/json" if source.lstrip()[:1] in (b"{", b"[") else "application/yaml"


def _root_source(submission: Submission, analyzed: AnalyzedContract) -> bytes:
    if analyzed.root_path is not None:
        return analyzed.files[analyzed.root_path]
    if submission.document is not None:
        return submission.document
    return next(iter((submission.files or {}).values()), b"")


def _size(submission: Submission) -> int:
    if submission.zip_data is not None:
        return len(submission.zip_data)
    if submission.files:
        return sum(len(c) for c in submission.files.values())
    return len(submission.document or b"")


def version_record(api: Api, row: ApiVersion) -> dict:
    return {
        "api": api.name,
        "version": row.version,
        "state": row.state,
        "kind": row.kind,
        "spec_version": row.spec_version,
        "fingerprint": row.fingerprint,
        "sunset": row.sunset.isoformat() if row.sunset else None,
        "replacement": row.replacement,
        "reason": row.deprecation_reason,
        "base_version": row.base_version,
        "required_bump": row.required_bump,
        "breaking": row.breaking,
    }
