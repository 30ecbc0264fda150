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
import concurrent.futures
import functools
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
# Bind-time lookups run in threads of their own: a lookup the deadline abandons keeps its thread
# until the system resolver gives up, and in asyncio's shared pool it would hold up the gateway's
# connect-time lookups. Here it only makes later bind-time lookups time out, which they survive.
_BIND_LOOKUPS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="egress-bind")


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses the system resolver gives for `host`, in its order of preference."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _addresses(infos)


async def resolve_for_binding(host: str, port: int) -> list[Address]:
    """`resolve` in the bind-time threads."""
    lookup = functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    return _addresses(await asyncio.get_running_loop().run_in_executor(_BIND_LOOKUPS, lookup))


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    addresses: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class TargetRefused(EgressRefused):
    """One of several URLs checked together was refused; `url` says which."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url


async def check_targets(
    policy: EgressPolicy, urls: Iterable[str], *, resolver: Resolver = resolve_for_binding
) -> None:
    """At bind time: each URL's form, and the addresses its host resolves to now.

    Each distinct host and port is resolved once, all at the same time under one deadline, so a
    request naming many hosts costs one deadline, not one per host. A name that does not resolve
    (yet, or within the deadline) passes: its DNS may come later, and the connect-time check is what
    guarantees no forbidden address is reached. Raises `TargetRefused` for the first refused URL.
    """
    endpoints: dict[tuple[str, int], str] = {}
    for url in urls:
        try:
            parsed = policy.check_url(url)
        except EgressRefused as exc:
            raise TargetRefused(url, str(exc)) from None
        port = parsed.port or DEFAULT_PORTS[parsed.scheme]
        host = parsed.raw_host.decode("ascii")
        if not policy.admits_endpoint(host, port):
            endpoints.setdefault((host, port), url)
    if not endpoints:
        return
    lookups = {endpoint: asyncio.ensure_future(resolver(*endpoint)) for endpoint in endpoints}
    await asyncio.wait(lookups.values(), timeout=BIND_RESOLVE_SECONDS)
    for (host, port), lookup in lookups.items():
        if not lookup.done():
            lookup.cancel()
            continue
        if lookup.cancelled() or isinstance(lookup.exception(), (OSError, UnicodeError)):
            continue
        for address in lookup.result():
            try:
                policy.check_address(address, port)
            except EgressRefused as exc:
                raise TargetRefused(endpoints[host, port], str(exc)) from None


async def check_target(policy: EgressPolicy, url: str, *, resolver: Resolver = resolve_for_binding) -> None:
    """`check_targets` of one URL."""
    await check_targets(policy, [url], resolver=resolver)


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
