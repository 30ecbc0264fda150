"""Bind-time checks of the URLs teams give the registry to call (HTTP upstreams, webhooks).

The gateway and the webhook notifier check again when they connect; this check gives the team a
clear 422 now instead of failed calls later.
"""

from __future__ import annotations

from contracts.errors import Issue
from gateway.egress import check_target
from policies.egress import EgressPolicy, EgressRefused
from registry.errors import InvalidRequest


async def require_allowed_target(policy: EgressPolicy, url: str, *, pointer: str) -> None:
    try:
        await check_target(policy, url)
    except EgressRefused as exc:
        raise InvalidRequest(
            f"the server will not call {url}: {exc}", [Issue(pointer=pointer, message=str(exc))]
        ) from None
