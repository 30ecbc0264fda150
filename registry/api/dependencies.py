"""Objects handlers receive by dependency injection: the database session, the settings, and the
policies built from them once at start."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from policies.auth import Principal
from policies.egress import EgressPolicy
from registry.secret_box import SecretBox
from registry.settings import Settings

# What handlers declare to receive the dependencies registered in registry.app by these names.
Session = NamedDependency[AsyncSession]
Caller = NamedDependency[Principal | None]
Config = NamedDependency[Settings]
Egress = NamedDependency[EgressPolicy]
Secrets = NamedDependency[SecretBox]


async def provide_session(state: State) -> AsyncGenerator[AsyncSession, None]:
    # Handlers commit what they change; leaving the block rolls back whatever they did not.
    async with state.sessionmaker() as session:
        yield session


def provide_settings(state: State) -> Settings:
    return state.settings


def provide_egress(state: State) -> EgressPolicy:
    return state.egress


def provide_secrets(state: State) -> SecretBox:
    return state.secret_box
