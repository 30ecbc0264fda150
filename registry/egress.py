"""Bind-time checks of the URLs teams give the registry to call (HTTP upstreams, webhooks).

The gateway and the webhook notifier check again when they connect; this check gives the team a
clear 422 now instead of failed calls later.
"""

from __future__ import annotations

from collections.abc import Sequence

from contracts.errors import Issue
from gateway.egress import TargetRefused, check_targets
from policies.egress import EgressPolicy
from registry.errors import InvalidRequest


async def require_allowed_target(policy: EgressPolicy, url: str, *, pointer: str) -> None:
    await require_allowed_targets(policy, [(pointer, url)])


async def require_allowed_targets(policy: EgressPolicy, targets: Sequence[tuple[str, str]]) -> None:
    """Every `(pointer, url)` checked together: one resolution deadline for them all."""
    try:
        await check_targets(policy, [url for _, url in targets])
    except TargetRefused as exc:
        pointer = next(pointer for pointer, url in targets if url == exc.url)
        raise InvalidRequest(
            f"the server will not call {exc.url}: {exc}", [Issue(pointer=pointer, message=str(exc))]
        ) from None
