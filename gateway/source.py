"""What the gateway needs to know about contracts, and the protocol that supplies it.

The gateway never imports the registry: the registry (or a remote registry client) implements
`ContractSource`, so the same gateway runs embedded or standalone.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal, Protocol

import msgspec

from policies.throttle import RateLimitPolicy
from policies.versioning import VersionInfo


class AdapterBinding(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """Where an API's operations go: its contract's examples, an HTTP upstream, Python handlers, or
    a flow; `operations` binds single operationIds otherwise (one process API mixes flows and
    handlers)."""

    kind: Literal["mock", "http", "python", "flow"]
    url: str | None = None  # http: the upstream base URL
    entry_point: str | None = None  # python: a name in the `charter.adapters` entry-point group
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    flow: str | None = None  # flow: a name in the `charter.flows` entry-point group
    wait_seconds: float = 10.0  # flow: how long a call waits for the run before answering 202
    operations: dict[str, AdapterBinding] | None = None


class ContractVersion(msgspec.Struct, frozen=True):
    info: VersionInfo
    document: dict[str, Any]


class ContractApi(msgspec.Struct, frozen=True):
    name: str
    versions: tuple[ContractVersion, ...]
    rate_limit: RateLimitPolicy | None = None
    adapter: AdapterBinding | None = None


class ContractSource(Protocol):
    async def load(self, names: Collection[str] | None = None) -> list[ContractApi]:
        """Every API with its released (published, deprecated) and retired versions; with `names`, only
        those of the named APIs that have any (a named API left out has no version to route)."""
        ...
