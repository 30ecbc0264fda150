"""RFC 6750 section 3: the WWW-Authenticate challenge of a bearer-token resource server."""

from __future__ import annotations

from collections.abc import Iterable


def _quoted(value: str) -> str:
    # auth-param values are quoted-strings: escape backslash and double quote, drop control chars.
    cleaned = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'


def challenge(
    *,
    realm: str = "charter",
    error: str | None = None,
    description: str | None = None,
    scope: Iterable[str] | None = None,
) -> str:
    params = [f"realm={_quoted(realm)}"]
    if error:
        params.append(f"error={_quoted(error)}")
    if description:
        params.append(f"error_description={_quoted(description)}")
    if scope is not None:
        params.append(f"scope={_quoted(' '.join(scope))}")
    return "Bearer " + ", ".join(params)
