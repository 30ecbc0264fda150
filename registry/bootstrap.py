"""What a fresh service needs before its first request: clients, and the demo contracts."""

from __future__ import annotations

import logging
import secrets
import sys

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from policies.auth import ClientConfig, Principal, load_clients
from policies.egress import EgressPolicy
from registry import catalog, clients, publishing
from registry.access import ALL_SCOPES
from registry.api.schemas import ApiIn
from registry.db.engine import DEMO_LOCK, begin_write, one_at_a_time
from registry.errors import NotFound
from registry.settings import Settings

log = logging.getLogger("charter.registry")

# Demo contracts are loaded by the service itself, not by any client: this actor is in the audit log.
SYSTEM = Principal(
    subject="charter-system", client_id=None, scopes=frozenset(ALL_SCOPES), expires_at=None, claims={}
)


def configured_clients(settings: Settings) -> list[ClientConfig]:
    """The bootstrap admin client plus `CHARTER_CLIENTS`; a missing admin secret is made and shown once."""
    clients = load_clients(settings.clients_json) if settings.clients_json else []
    admin_id = settings.admin_client_id or "admin"
    secret = settings.admin_client_secret
    if secret is None:
        secret = secrets.token_urlsafe(24)
        print(
            f"charter: generated admin client: id={admin_id} secret={secret} "
            "(set CHARTER_ADMIN_CLIENT_ID and CHARTER_ADMIN_CLIENT_SECRET to choose your own)",
            file=sys.stderr,
            flush=True,
        )
    clients.append(ClientConfig(client_id=admin_id, client_secret=secret, scopes=ALL_SCOPES, name="admin"))
    return clients


async def load_demo(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Publish the demo contracts and register the demo flows' client; on a second start everything
    is already there and nothing changes. Replicas (or workers) starting together take turns: each
    step looks before it writes, and two looking at once would both write."""
    async with one_at_a_time(sessionmaker.kw["bind"], DEMO_LOCK):
        await _load_demo(sessionmaker, settings)


async def _load_demo(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    from registry.demo import FLOWS_CLIENT, FLOWS_CLIENT_SCOPES, FLOWS_CLIENT_TEAM, demo_apis

    limits = settings.load_limits()
    for demo in demo_apis():
        async with sessionmaker() as session:
            await begin_write(session)
            await _ensure_team(session, demo.owner)
            try:
                await catalog.get_api(session, demo.name)
            except NotFound:
                data = msgspec.convert(
                    {
                        "name": demo.name,
                        "owner": demo.owner,
                        "title": demo.title,
                        "description": demo.description,
                        "layer": demo.layer,
                        "domain": demo.domain,
                        "tags": list(demo.tags),
                        "sla": demo.sla,
                    },
                    ApiIn,
                )
                await catalog.create_api(session, SYSTEM, data)
                if demo.adapter is not None:
                    # Demo adapters are mocks, Python handlers and flows: no URL to allow, and the system
                    # binds as an admin, whose bindings name any team's flow.
                    await catalog.set_adapter(
                        session, SYSTEM, demo.name, demo.adapter, egress=EgressPolicy(), flow_owners={}
                    )
            await session.commit()
            for item in demo.versions:
                await publishing.publish_version(
                    session,
                    SYSTEM,
                    api_name=demo.name,
                    submission=publishing.Submission(
                        document=item.path.read_bytes(), media_type=item.media_type
                    ),
                    version=item.version,
                    limits=limits,
                )
                await session.commit()
    configured = {c.client_id for c in load_clients(settings.clients_json or "[]")}
    async with sessionmaker() as session:
        await begin_write(session)
        # Nobody is shown this client's secret: the flow runner has its tokens issued in process.
        if FLOWS_CLIENT not in configured and await clients.find_client(session, FLOWS_CLIENT) is None:
            await _ensure_team(session, FLOWS_CLIENT_TEAM)
            await clients.register_client(
                session,
                SYSTEM,
                client_id=FLOWS_CLIENT,
                name="Demo flows",
                team=FLOWS_CLIENT_TEAM,
                scopes=list(FLOWS_CLIENT_SCOPES),
                taken=lambda _: False,
            )
            await session.commit()
    log.info("demo contracts loaded")


async def _ensure_team(session: AsyncSession, name: str) -> None:
    try:
        await catalog.get_team(session, name)
    except NotFound:
        await catalog.create_team(session, SYSTEM, name=name, description=f"demo team {name}", members=[])
