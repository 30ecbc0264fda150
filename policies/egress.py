"""Which targets the server may send requests to on a team's behalf.

Teams give the registry URLs that the server then calls: the gateway's HTTP upstreams, consumers'
webhooks. Left alone, a team could make the server reach what only the server can reach: the cloud
metadata service (169.254.169.254), Redis on loopback, the private network. So only public unicast
addresses are reached, unless the operator's allow-list (`CHARTER_EGRESS_ALLOW`) names the target:
a network (`10.20.0.0/16`, `127.0.0.1`, `::1`) or one host and port (`billing.internal:8443`,
`[::1]:9000`).

This module decides and does no I/O: `gateway.egress` resolves names and asks about every address
it is about to connect to, so what is checked is what is reached.
"""

from __future__ import annotations

import ipaddress
import re

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_PORTS = {"http": 80, "https": 443}
# IPv6 prefixes that carry an IPv4 address a router or the kernel may deliver to: IPv4-compatible
# (RFC 4291, deprecated) and the NAT64 well-known prefix (RFC 6052). IPv4-mapped and 6to4 addresses
# have their own accessors.
_EMBEDDING_PREFIXES = (ipaddress.IPv6Network("::/96"), ipaddress.IPv6Network("64:ff9b::/96"))
_ENDPOINT = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^\[\]:/\s]+)):(?P<port>\d{1,5})$")


class EgressRefused(Exception):
    """A URL or address the server will not send a request to; the message says why."""


class EgressPolicy:
    """Public addresses are reachable; others only when the allow-list names them."""

    def __init__(
        self, networks: tuple[Network, ...] = (), endpoints: frozenset[tuple[str, int]] = frozenset()
    ) -> None:
        self.networks = networks
        self.endpoints = endpoints

    @classmethod
    def from_allow_list(cls, text: str | None) -> EgressPolicy:
        """Comma-separated networks (CIDR or one address) and `host:port` entries."""
        networks: list[Network] = []
        endpoints: set[tuple[str, int]] = set()
        for entry in (part.strip() for part in (text or "").split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            match = _ENDPOINT.match(entry)
            port = int(match.group("port")) if match else 0
            if match is None or not 0 < port < 65536:
                raise ValueError(
                    f"CHARTER_EGRESS_ALLOW: {entry!r} is neither a network (10.0.0.0/8, ::1) nor host:port"
                )
            endpoints.add((_normal_host(match.group("v6") or match.group("host")), port))
        return cls(tuple(networks), frozenset(endpoints))

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The URL parsed as the HTTP client will parse it, if its form is acceptable: http(s),
        a host, no credentials. Addresses are checked once the host is resolved."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise EgressRefused(f"not a valid URL: {exc}") from None
        if parsed.scheme not in DEFAULT_PORTS:
            raise EgressRefused("only http and https URLs are allowed")
        if parsed.userinfo:
            raise EgressRefused("credentials in the URL are not allowed; the server adds its own")
        if not parsed.host:
            raise EgressRefused("the URL has no host")
        if "%" in parsed.host:
            raise EgressRefused("percent signs in the host (encoded names, IPv6 zones) are not allowed")
        # RFC 1035: 63 octets a label, 253 a name. Longer ones the resolver refuses with a
        # UnicodeError from its IDNA codec, not the OSError of a name that does not resolve.
        host = parsed.raw_host.decode("ascii").rstrip(".")
        if len(host) > 253 or any(len(label) > 63 for label in host.split(".")):
            raise EgressRefused("the host name is longer than DNS allows")
        return parsed

    def admits_endpoint(self, host: str, port: int) -> bool:
        """The allow-list names this host (as written in the URL) and port."""
        return (_normal_host(host), port) in self.endpoints

    def check_address(self, address: Address, port: int) -> None:
        """Raises unless `address` is public or the allow-list names it."""
        if (str(address), port) in self.endpoints or any(address in net for net in self.networks):
            return
        reason = forbidden_reason(address)
        if reason is not None:
            raise EgressRefused(f"{address} is {reason}; an operator can allow it with CHARTER_EGRESS_ALLOW")


def forbidden_reason(address: Address) -> str | None:
    """Why `address` is not a public unicast address (None when it is one)."""
    if isinstance(address, ipaddress.IPv6Address) and not (address.is_loopback or address.is_unspecified):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and any(address in prefix for prefix in _EMBEDDING_PREFIXES):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            return f"an IPv6 form of {embedded}, which is {inner}" if inner else None
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata services live there)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "not a public address"
    return None


def _normal_host(host: str) -> str:
    host = host.lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host
