"""Outgoing HTTP to URLs that teams supply, held to the egress policy at connect time.

A check of the URL before the request is not enough: httpx resolves the name again when it
connects, and a name can answer a public address to the check and 127.0.0.1 to the connect (DNS
rebinding). So the name is resolved here, once, every address it answers is checked, and the socket
is opened to the checked address. This happens in httpcore's network backend, the one place where
httpcore opens sockets: the URL, the Host header, TLS server name and certificate verification, and
the connection pool (keyed by the name) all stay httpx's own. Redirects are not followed by the
clients built here; a client that followed them would still connect through this backend.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

from policies.egress import DEFAULT_PORTS, Address, EgressPolicy, EgressRefused

Resolver = Callable[[str, int], Awaitable[list[Address]]]
# A name that resolves slowly at bind time is accepted: the connect-time check still applies.
BIND_RESOLVE_SECONDS = 2.0


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def check_target(policy: EgressPolicy, url: str, *, resolver: Resolver = resolve) -> None:
    """At bind time: the URL's form, and the addresses its host resolves to now.

    A name that does not resolve yet passes (its DNS may come later); the connect-time check is
    what guarantees no forbidden address is reached.
    """
    parsed = policy.check_url(url)
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    host = parsed.raw_host.decode("ascii")
    if policy.admits_endpoint(host, port):
        return
    try:
        async with asyncio.timeout(BIND_RESOLVE_SECONDS):
            addresses = await resolver(host, port)
    except (OSError, TimeoutError):
        return
    for address in addresses:
        policy.check_address(address, port)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy admits, and only to the ones it checked."""

    def __init__(self, policy: EgressPolicy, resolver: Resolver = resolve) -> None:
        self._policy = policy
        self._resolve = resolver
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._policy.admits_endpoint(host, port):
            return await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} has no address")
        # Every answer is checked before any is tried: a fallback must not reach what the first refused.
        for address in addresses:
            self._policy.check_address(address, port)
        *fallbacks, last = [str(address) for address in addresses]
        for address in fallbacks:
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError:
                continue
        return await self._backend.connect_tcp(last, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not reachable through the egress policy")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, connecting through `GuardedBackend`.

    httpx 0.28 takes no network backend, so the connection pool it builds is replaced by one built
    the same way with the guarded backend (no proxy: env proxies would connect on our behalf).
    """

    def __init__(
        self,
        policy: EgressPolicy,
        *,
        limits: httpx.Limits | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(limits=limits, trust_env=False)
        self._policy = policy
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._policy.check_url(request.url)
        return await super().handle_async_request(request)


def guarded_client(
    policy: EgressPolicy, *, timeout: httpx.Timeout, limits: httpx.Limits | None = None
) -> httpx.AsyncClient:
    """An httpx client whose every connection passes the egress policy; it follows no redirects."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy, limits=limits),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
