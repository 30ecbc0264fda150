"""Teams' webhook subscriptions: which events reach which URL, and the log of their deliveries.

Who may do what: a subscription belongs to a team. Its members (and admins) list it, read it and
its deliveries (`registry:read`); they create, delete and redeliver (`registry:write`). Nobody else
learns it exists. What it may hear: events about APIs (every holder of `registry:read` may read
every API), and the flow events (`flow.run.*` and business events) of flows its team owns; never
the registry's events about clients and grants (`client.*`, `access.*`), which are refused here.
"""

from __future__ import annotations

import re
import secrets as random_secrets
from collections.abc import Sequence

import nodesemver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.errors import Issue
from policies.auth import Principal
from policies.egress import EgressPolicy
from registry import audit, catalog
from registry.access import ADMIN, READ, is_member, require_owner, require_scope
from registry.db.engine import begin_write
from registry.db.models import DeliveryState, Team, WebhookDelivery, WebhookSubscription, utcnow
from registry.egress import require_allowed_target
from registry.errors import Forbidden, InvalidRequest, NotFound
from registry.secret_box import SecretBox
from registry.webhooks import PRIVATE_TOPICS

# A topic name (`contract.deprecated`, `delivery.project.created`) or a prefix of names (`flow.run.*`).
TOPIC = re.compile(r"^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*(\.\*)?$")
MAX_PER_TEAM = 50  # each event is matched against every subscription


async def create_subscription(
    session: AsyncSession,
    principal: Principal | None,
    team_name: str,
    *,
    url: str,
    topics: Sequence[str],
    apis: Sequence[str],
    flows: Sequence[str],
    versions: str | None,
    breaking_only: bool = False,
    egress: EgressPolicy,
    secrets: SecretBox,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its signing secret, which is shown this once and stored sealed."""
    require_scope(principal, READ)
    require_owner(principal, await catalog.get_team(session, team_name))
    await session.rollback()
    _check_filters(topics, versions)
    # Resolving the host may take seconds: not while holding the write lock.
    await require_allowed_target(egress, url, pointer="/url")
    await begin_write(session)
    team = await catalog.get_team(session, team_name)
    actor = require_owner(principal, team)
    count = await session.scalar(
        select(func.count(WebhookSubscription.id)).where(WebhookSubscription.team_id == team.id)
    )
    if (count or 0) >= MAX_PER_TEAM:
        raise InvalidRequest(f"team {team.name} has {MAX_PER_TEAM} webhook subscriptions, the most allowed")
    secret = random_secrets.token_urlsafe(32)
    row = WebhookSubscription(
        team_id=team.id,
        team=team,
        url=url,
        secret_sealed=secrets.seal(secret),
        topics=list(dict.fromkeys(topics)),
        apis=list(dict.fromkeys(apis)),
        flows=list(dict.fromkeys(flows)),
        versions=versions,
        breaking_only=breaking_only,
        created_at=utcnow(),
        created_by=actor.subject,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        actor=actor.subject,
        action="webhook.created",
        subject=f"teams/{team.name}/webhooks/{row.id}",
        after=subscription_record(row),
    )
    return row, secret


async def list_subscriptions(
    session: AsyncSession, principal: Principal | None, team_name: str
) -> list[WebhookSubscription]:
    team = await _readable_team(session, principal, team_name)
    owned = WebhookSubscription.team_id == team.id
    rows = await session.scalars(select(WebhookSubscription).where(owned).order_by(WebhookSubscription.id))
    return list(rows.all())


async def get_subscription(
    session: AsyncSession, principal: Principal | None, team_name: str, subscription_id: int
) -> WebhookSubscription:
    team = await _readable_team(session, principal, team_name)
    return await _subscription_of(session, team, subscription_id)


async def delete_subscription(
    session: AsyncSession, principal: Principal | None, team_name: str, subscription_id: int
) -> None:
    """Its deliveries go with it, pending ones included."""
    await begin_write(session)
    team = await catalog.get_team(session, team_name)
    actor = require_owner(principal, team)
    row = await _subscription_of(session, team, subscription_id)
    record = subscription_record(row)
    await session.delete(row)
    audit.record(
        session,
        actor=actor.subject,
        action="webhook.deleted",
        subject=f"teams/{team.name}/webhooks/{subscription_id}",
        before=record,
    )


async def deliveries(
    session: AsyncSession,
    principal: Principal | None,
    team_name: str,
    subscription_id: int,
    *,
    state: str | None,
    limit: int,
    offset: int,
) -> tuple[list[WebhookDelivery], int]:
    """Newest first."""
    row = await get_subscription(session, principal, team_name, subscription_id)
    conditions = [WebhookDelivery.subscription_id == row.id]
    if state is not None:
        conditions.append(WebhookDelivery.state == state)
    total = await session.scalar(select(func.count(WebhookDelivery.id)).where(*conditions))
    rows = await session.scalars(
        select(WebhookDelivery)
        .where(*conditions)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows.all()), total or 0


async def redeliver(
    session: AsyncSession, principal: Principal | None, team_name: str, subscription_id: int, delivery_id: int
) -> WebhookDelivery:
    """Send a delivery again, whatever its state, with a fresh budget of attempts; its key (the
    Charter-Delivery header) stays, so a receiver that took it already can tell."""
    await begin_write(session)
    team = await catalog.get_team(session, team_name)
    actor = require_owner(principal, team)
    subscription = await _subscription_of(session, team, subscription_id)
    row = await session.get(WebhookDelivery, delivery_id)
    if row is None or row.subscription_id != subscription.id:
        raise NotFound(f"webhook {subscription_id} of team {team.name} has no delivery {delivery_id}")
    row.state = DeliveryState.PENDING.value
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.delivered_at = None
    audit.record(
        session,
        actor=actor.subject,
        action="webhook.redelivered",
        subject=f"teams/{team.name}/webhooks/{subscription_id}/deliveries/{delivery_id}",
    )
    return row


def subscription_record(row: WebhookSubscription) -> dict:
    return {
        "id": row.id,
        "team": row.team.name,
        "url": row.url,
        "topics": list(row.topics),
        "apis": list(row.apis),
        "flows": list(row.flows),
        "versions": row.versions,
        "breaking_only": row.breaking_only,
    }


async def _readable_team(session: AsyncSession, principal: Principal | None, team_name: str) -> Team:
    reader = require_scope(principal, READ)
    team = await catalog.get_team(session, team_name)
    if ADMIN not in reader.scopes and not is_member(reader, team):
        raise Forbidden(f"{reader.subject} is not a member of team {team.name}, which owns these webhooks")
    return team


async def _subscription_of(session: AsyncSession, team: Team, subscription_id: int) -> WebhookSubscription:
    row = await session.get(WebhookSubscription, subscription_id)
    if row is None or row.team_id != team.id:
        raise NotFound(f"team {team.name} has no webhook {subscription_id}")
    return row


def _check_filters(topics: Sequence[str], versions: str | None) -> None:
    issues = []
    for index, topic in enumerate(topics):
        if not TOPIC.match(topic):
            issues.append(Issue(pointer=f"/topics/{index}", message="a topic name, or a prefix ending in .*"))
        elif topic.startswith(PRIVATE_TOPICS) or f"{topic}." in PRIVATE_TOPICS:
            message = "events about clients and grants are not sent to webhooks"
            issues.append(Issue(pointer=f"/topics/{index}", message=message))
    if versions is not None and not _valid_range(versions):
        issues.append(Issue(pointer="/versions", message="use a range such as ^1.4, ~2.0.1 or >=1.2.0 <3"))
    if issues:
        raise InvalidRequest("the subscription's topics or filters are not valid", issues)


def _valid_range(text: str) -> bool:
    try:
        return nodesemver.valid_range(text, False) is not None
    except ValueError:  # node-semver raises on some malformed comparators instead of answering None
        return False
