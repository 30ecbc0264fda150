"""Which version of an API a request means, and how a deprecated version announces itself.

Deprecation follows RFC 9745 (`Deprecation: @<unix seconds>`, a structured-field date: the obsolete
`Deprecation: true` is wrong), the sunset RFC 8594 (`Sunset: <HTTP-date>`, never earlier than the
deprecation) and the successor a `Link` with `rel="successor-version"` (RFC 5829).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from email.utils import format_datetime

import msgspec
import semver


class VersionState(enum.StrEnum):
    PUBLISHED = "published"
    DEPRECATED = "deprecated"
    RETIRED = "retired"


class VersionInfo(msgspec.Struct, frozen=True):
    version: str
    state: VersionState
    deprecated_at: dt.datetime | None = None
    sunset: dt.date | None = None
    replacement: str | None = None

    @property
    def semver(self) -> semver.Version:
        return semver.Version.parse(self.version)


class UnknownVersion(Exception):
    """No version of the API matches what the request asked for."""


def resolve_version(
    versions: Sequence[VersionInfo], *, major: int | None = None, requested: str | None = None
) -> VersionInfo:
    """The version a request means: by `v{major}` in the path, an `API-Version` header (a major or a
    full semantic version), or else the latest published one.

    A major or version whose every release is retired resolves to the retired one, so that the
    caller can answer 410 and name the replacement instead of a bare 404.
    """
    if requested is not None:
        requested = requested.strip().removeprefix("v")
        if requested.isdigit():
            major = int(requested)
        else:
            for info in versions:
                if info.version == requested:
                    return info
            raise UnknownVersion(f"no version {requested}")
    candidates = [v for v in versions if major is None or v.semver.major == major]
    live = [v for v in candidates if v.state is not VersionState.RETIRED]
    pool = live or candidates
    if not pool:
        raise UnknownVersion("no such major version" if major is not None else "no published version")
    if major is None:
        published = [v for v in pool if v.state is VersionState.PUBLISHED]
        pool = published or pool
    return max(pool, key=lambda v: v.semver)


def successor(versions: Sequence[VersionInfo], info: VersionInfo) -> VersionInfo | None:
    """The live version that callers of `info` should move to, or None when there is none.

    The replacement its owners named, followed while that one is itself retired (a chain that loops
    or names an unknown version ends the walk); failing that, the highest live version above `info`
    in its own major line, else the highest live version of a later major. Never an earlier version
    unless its owners named one: moving back would take away what callers use.
    """
    by_number = {v.version: v for v in versions}
    seen = {info.version}
    step = by_number.get(info.replacement) if info.replacement else None
    while step is not None and step.version not in seen:
        if step.state is not VersionState.RETIRED:
            return step
        seen.add(step.version)
        step = by_number.get(step.replacement) if step.replacement else None
    current = info.semver
    later = [v for v in versions if v.state is not VersionState.RETIRED and v.semver > current]
    pool = [v for v in later if v.semver.major == current.major] or later
    return max(pool, key=lambda v: v.semver) if pool else None


def deprecation_headers(info: VersionInfo, successor_url: str | None = None) -> dict[str, str]:
    if info.state is not VersionState.DEPRECATED:
        return {}
    headers = {}
    deprecated_at = info.deprecated_at or dt.datetime.now(dt.UTC)
    headers["Deprecation"] = f"@{int(deprecated_at.timestamp())}"
    if info.sunset is not None:
        sunset = dt.datetime.combine(info.sunset, dt.time(), tzinfo=dt.UTC)
        headers["Sunset"] = format_datetime(max(sunset, deprecated_at.astimezone(dt.UTC)), usegmt=True)
    if successor_url is not None:
        headers["Link"] = f'<{successor_url}>; rel="successor-version"'
    return headers
