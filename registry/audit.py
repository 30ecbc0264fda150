"""The audit log: every write recorded in the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.db.models import AuditEvent, OutboxEvent


def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    subject: str,
    before: Any = None,
    after: Any = None,
) -> None:
    session.add(
        AuditEvent(
            actor=actor,
            action=action,
            subject=subject,
            before=_plain(before),
            after=_plain(after),
        )
    )


def emit(session: AsyncSession, topic: str, payload: Any) -> None:
    """Queue an event in the transactional outbox; it leaves only if the change commits."""
    session.add(OutboxEvent(topic=topic, payload=_plain(payload)))


def _plain(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return msgspec.to_builtins(value)


class AuditQuery(msgspec.Struct, frozen=True, kw_only=True):
    subject: str | None = None
    actor: str | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 50
    offset: int = 0


async def query(session: AsyncSession, q: AuditQuery) -> tuple[Sequence[AuditEvent], int]:
    conditions = []
    if q.subject:
        # `apis/projects` matches the API and everything below it (`apis/projects/versions/1.0.0`).
        conditions.append(
            (AuditEvent.subject == q.subject)
            | AuditEvent.subject.startswith(q.subject + "/", autoescape=True)
        )
    if q.actor:
        conditions.append(AuditEvent.actor == q.actor)
    if q.action:
        conditions.append(AuditEvent.action == q.action)
    if q.since:
        conditions.append(AuditEvent.at >= q.since)
    if q.until:
        conditions.append(AuditEvent.at < q.until)
    total = (await session.execute(select(func.count(AuditEvent.id)).where(*conditions))).scalar_one()
    rows = await session.scalars(
        select(AuditEvent).where(*conditions).order_by(AuditEvent.id.desc()).limit(q.limit).offset(q.offset)
    )
    return rows.all(), total
