"""Reading versions: one, all of an API, the latest; and keeping `Api.latest_version` true."""

from __future__ import annotations

from collections.abc import Sequence

import semver
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.models import Api, ApiVersion, VersionFile, VersionState
from registry.errors import InvalidRequest, NotFound

# Versions a consumer can call: drafts are not released yet, retired ones are gone.
RELEASED = (VersionState.PUBLISHED.value, VersionState.DEPRECATED.value)


# The length of ApiVersion.version; PostgreSQL refuses longer values where SQLite would keep them.
MAX_VERSION = 100


def parse_semver(value: str, *, pointer: str = "/info/version") -> semver.Version:
    from contracts.errors import Issue

    if len(value) > MAX_VERSION:
        raise InvalidRequest(
            f"version {value[:40]!r}... is longer than {MAX_VERSION} characters",
            [Issue(pointer=pointer, message=f"at most {MAX_VERSION} characters")],
        )
    try:
        return semver.Version.parse(value)
    except (ValueError, TypeError):
        raise InvalidRequest(
            f"version {value!r} is not a semantic version (MAJOR.MINOR.PATCH)",
            [Issue(pointer=pointer, message="must be a semantic version such as 1.4.0")],
        ) from None


async def list_versions(session: AsyncSession, api: Api) -> list[ApiVersion]:
    rows = (await session.scalars(select(ApiVersion).where(ApiVersion.api_id == api.id))).all()
    return sorted(rows, key=lambda v: semver.Version.parse(v.version))


async def find_version(session: AsyncSession, api: Api, version: str) -> ApiVersion | None:
    return await session.scalar(
        select(ApiVersion).where(ApiVersion.api_id == api.id, ApiVersion.version == version)
    )


async def get_version(session: AsyncSession, api: Api, version: str) -> ApiVersion:
    """`latest` names the highest published or deprecated version (never a draft)."""
    if version == "latest":
        if api.latest_version is None:
            raise NotFound(f"API {api.name!r} has no published version")
        version = api.latest_version
    row = await find_version(session, api, version)
    if row is None:
        raise NotFound(f"API {api.name!r} has no version {version!r}")
    return row


async def file_paths(session: AsyncSession, version: ApiVersion) -> list[str]:
    return list(
        (
            await session.scalars(
                select(VersionFile.path)
                .where(VersionFile.version_id == version.id)
                .order_by(VersionFile.path)
            )
        ).all()
    )


async def get_file(session: AsyncSession, version: ApiVersion, path: str) -> bytes:
    content = await session.scalar(
        select(VersionFile.content).where(VersionFile.version_id == version.id, VersionFile.path == path)
    )
    if content is None:
        raise NotFound(f"version {version.version} has no file {path!r}")
    return content


async def refresh_latest(session: AsyncSession, api: Api) -> None:
    released: Sequence[str] = (
        await session.scalars(
            select(ApiVersion.version).where(ApiVersion.api_id == api.id, ApiVersion.state.in_(RELEASED))
        )
    ).all()
    api.latest_version = max(released, key=semver.Version.parse) if released else None
