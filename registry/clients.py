"""Consumer applications: registered by an admin or by a team for its own apps, secret shown once.

A team gives its own clients the scopes of its own APIs; another team's scopes come only through
that team's grant (registry.grants). Admins may give any scope.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from policies.auth import ClientConfig, Principal, hash_secret
from registry import audit, catalog
from registry import scopes as ownership
from registry.access import ADMIN, ALL_SCOPES, require_owner
from registry.db.engine import begin_write
from registry.db.models import Client
from registry.errors import AlreadyExists, Forbidden, NotFound

MAX_CLIENT_ID = 100  # the length of clients.client_id


class Registration(msgspec.Struct, frozen=True):
    client: Client
    secret: str


async def register_client(
    session: AsyncSession,
    principal: Principal | None,
    *,
    client_id: str,
    name: str,
    team: str,
    scopes: list[str],
    taken: Callable[[str], bool],
) -> Registration:
    await begin_write(session)
    owner = await catalog.get_team(session, team)
    actor = require_owner(principal, owner)
    if ADMIN not in actor.scopes:
        # Only admins hand out the registry's own scopes; a team may register apps that call APIs.
        if set(scopes) & set(ALL_SCOPES):
            raise Forbidden("only an admin may grant registry scopes", missing_scopes=frozenset({ADMIN}))
        await ownership.require_own(session, owner, scopes)
    if taken(client_id):  # a client from configuration, unknown to the database
        raise AlreadyExists(f"client {client_id!r} already exists")
    secret = secrets.token_urlsafe(32)
    client = Client(
        client_id=client_id,
        name=name,
        team_id=owner.id,
        scopes=sorted(set(scopes)),
        secret_hash=hash_secret(secret),
        created_by=actor.subject,
    )
    session.add(client)
    try:
        await session.flush()
    except IntegrityError:
        raise AlreadyExists(f"client {client_id!r} already exists") from None
    record = {"client_id": client_id, "name": name, "team": team, "scopes": client.scopes}
    audit.record(
        session, actor=actor.subject, action="client.registered", subject=f"clients/{client_id}", after=record
    )
    audit.emit(session, "client.registered", record)
    return Registration(client, secret)


async def get_client(session: AsyncSession, client_id: str) -> Client:
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    if client is None:
        raise NotFound(f"client {client_id!r} does not exist")
    return client


def client_config(client: Client) -> ClientConfig:
    return ClientConfig(
        client_id=client.client_id,
        scopes=tuple(client.scopes),
        name=client.name,
        secret_hash=client.secret_hash,
    )


async def registered_clients(session: AsyncSession) -> list[ClientConfig]:
    return [client_config(c) for c in (await session.scalars(select(Client))).all()]


async def find_client(session: AsyncSession, client_id: str) -> ClientConfig | None:
    client = await session.scalar(select(Client).where(Client.client_id == client_id))
    return client_config(client) if client is not None else None
