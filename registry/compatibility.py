"""Compatibility on publish: diff a candidate against what was released, and hold it to semver."""

from __future__ import annotations

import functools
import zlib
from typing import Any

import anyio.to_thread
import msgspec
import semver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.bundle import bundle_from_files, resolve_bundle
from contracts.diff import (
    RULES,
    Bump,
    Change,
    DiffReport,
    Level,
    SeverityPolicy,
    bump_suffices,
    diff_documents,
)
from contracts.errors import Issue
from contracts.loading import Document, LoadLimits
from policies.auth import Principal
from registry import diff_policies
from registry.access import ADMIN, require_scope
from registry.db.models import Api, ApiVersion, Compatibility, VersionFile, VersionState
from registry.errors import RegistryError

# The versions a candidate is judged against: every one ever released, retired included (retiring does
# not rewrite what consumers were promised), never a draft (which promised nothing).
EVER_RELEASED = ApiVersion.state != VersionState.DRAFT.value


class IncompatibleChange(RegistryError):
    """The candidate breaks (or adds to) its predecessor more than its version number admits."""

    status, slug, title = 422, "incompatible-change", "Incompatible change"

    def __init__(self, detail: str, verdict: Verdict) -> None:
        super().__init__(detail, [_issue(c) for c in verdict.offending])
        self.verdict = verdict


class Verdict(msgspec.Struct, frozen=True):
    """What publishing a candidate would mean, against the version it succeeds."""

    base_version: str | None  # the highest earlier non-draft version, retired or not; None for a first one
    report: DiffReport | None  # the candidate's changes against base_version
    offending: list[Change]  # changes the candidate's version number does not admit
    required_bump: Bump
    compatible: bool
    judged: tuple[str, ...] = ()  # the earlier versions it was judged against, in semver order


async def stored_document(session: AsyncSession, row: ApiVersion) -> Document:
    """A stored version as one document: a bundle's cross-file references inlined, as on publish."""
    if row.root_path is None:
        return msgspec.json.decode(row.canonical)
    files = await session.execute(
        select(VersionFile.path, VersionFile.content).where(VersionFile.version_id == row.id)
    )
    bundle = bundle_from_files({path: content for path, content in files}, root=row.root_path)
    return resolve_bundle(bundle)


def stored_changes(row: ApiVersion) -> list[Change]:
    return msgspec.json.decode(zlib.decompress(row.changes), type=list[Change]) if row.changes else []


async def diff_versions(
    session: AsyncSession,
    base: ApiVersion,
    revision: ApiVersion,
    *,
    limits: LoadLimits,
    policy: SeverityPolicy | None = None,
) -> DiffReport:
    base_doc = await stored_document(session, base)
    revision_doc = await stored_document(session, revision)
    return await diff_document(base_doc, revision_doc, limits=limits, policy=policy)


async def assess(
    session: AsyncSession,
    api: Api,
    candidate: str,
    document: Document,
    *,
    limits: LoadLimits,
    fingerprint: str | None = None,
) -> Verdict:
    """Diff the candidate against the version it succeeds, as the API's compatibility mode says.

    The versions that count are every earlier one that was ever released: retiring a version does not
    rewrite what consumers were promised (else retiring them all would skip the check), while a draft
    promised nothing. BACKWARD checks the bump against the highest of them; BACKWARD_TRANSITIVE also
    refuses, within the candidate's major version, any breaking change against each of them; NONE
    records the changes and checks nothing.
    """
    number = semver.Version.parse(candidate)
    earlier = await _earlier(session, api, number)
    if not earlier:
        return Verdict(None, None, [], Bump.NONE, compatible=True)
    base = earlier[-1]
    policy = await diff_policies.applicable(session, api)
    if fingerprint is not None and fingerprint == base.fingerprint:
        report = DiffReport(breaking=False, required_bump=Bump.NONE, changes=[])  # same content
    else:
        report = await diff_document(
            await stored_document(session, base), document, limits=limits, policy=policy
        )
    offending: list[Change] = []
    if api.compatibility != Compatibility.NONE and not bump_suffices(
        report.required_bump, base.version, candidate
    ):
        offending = [c for c in report.changes if _drives(c, report.required_bump)]
    if api.compatibility == Compatibility.BACKWARD_TRANSITIVE:
        for older in earlier[:-1]:
            if semver.Version.parse(older.version).major != number.major:
                continue
            against = await diff_document(
                await stored_document(session, older), document, limits=limits, policy=policy
            )
            offending += [
                msgspec.structs.replace(c, message=f"against {older.version}: {c.message}")
                for c in against.changes
                if c.level is Level.ERROR
            ]
    judged = tuple(row.version for row in earlier)
    return Verdict(base.version, report, offending, report.required_bump, not offending, judged)


async def current(
    session: AsyncSession,
    api: Api,
    candidate: str,
    document: Document,
    verdict: Verdict | None,
    *,
    limits: LoadLimits,
    fingerprint: str | None = None,
) -> Verdict:
    """`verdict` if the versions it was judged against are still all those below the candidate, else
    the candidate judged again. Called under the API's lock: a verdict is reached before it (a diff
    costs CPU), and two concurrent publishes would otherwise each be judged without the other."""
    number = semver.Version.parse(candidate)
    query = select(ApiVersion.version).where(ApiVersion.api_id == api.id, EVER_RELEASED)
    stored = await session.scalars(query)
    earlier = sorted((v for v in stored.all() if semver.Version.parse(v) < number), key=semver.Version.parse)
    if verdict is not None and verdict.judged == tuple(earlier):
        return verdict
    return await assess(session, api, candidate, document, limits=limits, fingerprint=fingerprint)


def change_columns(verdict: Verdict | None) -> dict[str, Any]:
    """The ApiVersion columns that keep a version's changes against its predecessor."""
    if verdict is None or verdict.report is None:
        return {}
    report = verdict.report
    return {
        "base_version": verdict.base_version,
        "required_bump": report.required_bump.value,
        "breaking": report.breaking,
        "change_count": len(report.changes),
        "changes": zlib.compress(msgspec.json.encode(report.changes), 1),  # level 1: 12 MB in 22 ms
        "suppressed": report.suppressed or None,
    }


def refuse_unless_forced(
    principal: Principal | None, api: Api, candidate: str, verdict: Verdict, *, force: bool
) -> None:
    """An incompatible candidate is refused, unless an admin forces it (the audit log says so)."""
    if verdict.compatible:
        return
    if not force:
        raise refusal(api, candidate, verdict)
    require_scope(principal, ADMIN)


def refusal(api: Api, candidate: str, verdict: Verdict) -> IncompatibleChange:
    count = len(verdict.offending)
    changes = "1 change that needs" if count == 1 else f"{count} changes that need"
    return IncompatibleChange(
        f"{api.name} {candidate} has {changes} a {verdict.required_bump} version "
        f"after {verdict.base_version} (compatibility {api.compatibility}); bump the version, or an "
        "admin may force the publish",
        verdict,
    )


def _drives(item: Change, required: Bump) -> bool:
    if required is Bump.MAJOR:
        return item.level is Level.ERROR
    if required is Bump.MINOR:
        return RULES[item.id].addition
    return True


def _issue(item: Change) -> Issue:
    pointer = item.revision_pointer or item.base_pointer or ""
    return Issue(pointer=pointer, message=f"{item.id}: {item.message}")


async def _earlier(session: AsyncSession, api: Api, candidate: semver.Version) -> list[ApiVersion]:
    """The versions below the candidate that were ever released, in semver order."""
    rows = await session.scalars(select(ApiVersion).where(ApiVersion.api_id == api.id, EVER_RELEASED))
    earlier = [row for row in rows.all() if semver.Version.parse(row.version) < candidate]
    return sorted(earlier, key=lambda row: semver.Version.parse(row.version))


async def diff_document(
    base: Document, revision: Document, *, limits: LoadLimits, policy: SeverityPolicy | None = None
) -> DiffReport:
    # A large contract takes a few hundred milliseconds of CPU to diff: keep it off the event loop.
    return await anyio.to_thread.run_sync(
        functools.partial(diff_documents, base, revision, limits=limits, policy=policy)
    )
