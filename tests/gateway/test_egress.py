"""Outgoing requests connect only where the egress policy allows, checked when they connect."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

from gateway import egress
from gateway.egress import GuardedTransport, guarded_client
from policies.egress import EgressPolicy, EgressRefused
from registry.app import create_app
from tests.gateway.conftest import gateway_settings, settled
from tests.loopback import serving
from tests.registry.support import ADMIN, bearer, fetch_token

hits: list[tuple[str, str]] = []


async def recorder(scope, receive, send) -> None:
    """Records each request's path and Host header; `/hop` redirects to the path given after it."""
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    hits.append((scope["path"], headers.get(b"host", b"").decode()))
    if scope["path"].startswith("/hop/"):
        status, headers = 302, [(b"location", b"http://" + scope["path"].removeprefix("/hop/").encode())]
    else:
        status, headers = 200, [(b"content-type", b"text/plain")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"reached"})


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with serving(recorder) as base:
        yield base


def port_of(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def test_a_name_resolving_to_loopback_is_refused_when_connecting(target):
    """`localhost` passes any look at the URL's text; its address is what is refused."""
    hits.clear()
    async with guarded_client(EgressPolicy(), timeout=httpx.Timeout(2)) as http:
        with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 is a loopback address"):
            await http.get(f"http://localhost:{port_of(target)}/secret")
        with pytest.raises(EgressRefused, match="loopback"):
            await http.get(f"http://2130706433:{port_of(target)}/secret")
    assert hits == []


async def test_the_allow_list_admits_loopback(target):
    hits.clear()
    allowed = EgressPolicy.from_allow_list("127.0.0.0/8")
    async with guarded_client(allowed, timeout=httpx.Timeout(2)) as http:
        response = await http.get(f"http://localhost:{port_of(target)}/ok")
    assert response.text == "reached"
    assert hits == [("/ok", f"localhost:{port_of(target)}")]


async def test_the_connection_goes_to_the_checked_address_with_the_name_kept(target):
    """The name is resolved once, by the guard: what it answered is what is connected to."""
    hits.clear()
    answers = {"upstream.test": ["127.0.0.1"], "rebound.test": ["127.0.0.1", "10.0.0.7"]}
    resolved: list[str] = []

    async def dns(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        resolved.append(host)
        return [ipaddress.ip_address(a) for a in answers[host]]

    policy = EgressPolicy.from_allow_list("127.0.0.1")
    transport = GuardedTransport(policy, resolver=dns)
    async with httpx.AsyncClient(transport=transport, timeout=2) as http:
        response = await http.get(f"http://upstream.test:{port_of(target)}/named")
        assert response.text == "reached"
        assert hits == [("/named", f"upstream.test:{port_of(target)}")]
        # A name with one private answer among allowed ones is refused: a fallback must not reach it.
        with pytest.raises(EgressRefused, match=r"10\.0\.0\.7 is a private address"):
            await http.get(f"http://rebound.test:{port_of(target)}/named")
    assert resolved == ["upstream.test", "rebound.test"]


async def test_a_followed_redirect_to_a_forbidden_target_is_refused(target):
    """Our clients follow no redirects; one that did would still connect through the guard."""
    hits.clear()
    port = port_of(target)
    only_this_endpoint = EgressPolicy.from_allow_list(f"127.0.0.1:{port}")
    async with guarded_client(only_this_endpoint, timeout=httpx.Timeout(2)) as http:
        passed_back = await http.get(f"{target}/hop/169.254.169.254/latest/meta-data/")
        assert passed_back.status_code == 302
        with pytest.raises(EgressRefused, match="link-local"):
            await http.get(f"{target}/hop/169.254.169.254/latest/meta-data/", follow_redirects=True)
    assert [path for path, _ in hits] == ["/hop/169.254.169.254/latest/meta-data/"] * 2


async def test_an_upstream_bound_under_an_allow_list_is_refused_once_it_is_gone(tmp_path, target):
    """The gateway checks at call time: taking an entry off the allow-list stops calls at once."""
    hits.clear()
    upstream = f"http://localhost:{port_of(target)}"
    permissive = create_app(gateway_settings(tmp_path))
    async with AsyncTestClient(permissive) as client:
        admin = bearer(await fetch_token(client, *ADMIN))
        bound = await client.put(
            "/api/v1/apis/projects/adapter", json={"kind": "http", "url": upstream}, headers=admin
        )
        assert bound.status_code == 200, bound.text
        await settled(permissive)

    strict = create_app(gateway_settings(tmp_path, egress_allow=None))
    async with AsyncTestClient(strict) as client:
        token = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        response = await client.get("/gw/projects/v1/projects", headers=token)
    assert response.status_code == 502
    assert response.json()["type"] == "/problems/upstream-forbidden"
    assert hits == []


class SlowDns:
    """Answers from a table; names it does not know never answer. Records who asked, and how many
    lookups were in flight at once."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.asked: list[str] = []
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, host: str, port: int) -> list:
        self.asked.append(host)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if host not in self.table:
                await asyncio.Event().wait()
            await asyncio.sleep(0)
            return [ipaddress.ip_address(self.table[host])]
        finally:
            self.in_flight -= 1


async def test_the_hosts_of_a_binding_are_resolved_at_once_and_each_only_once(monkeypatch):
    # One request naming many hosts whose DNS never answers must cost one deadline, not one each.
    monkeypatch.setattr(egress, "BIND_RESOLVE_SECONDS", 0.2)
    dns = SlowDns({"public.example": "93.184.216.34"})
    urls = [f"http://stuck-{n}.example/" for n in range(20)] + [
        "http://public.example/a",
        "http://public.example/b",
    ]
    await egress.check_targets(EgressPolicy(), urls, resolver=dns)
    assert dns.most_in_flight == 21
    assert sorted(dns.asked) == sorted({url.split("/")[2] for url in urls})


async def test_a_refused_host_among_slow_ones_names_its_url(monkeypatch):
    monkeypatch.setattr(egress, "BIND_RESOLVE_SECONDS", 0.2)
    dns = SlowDns({"inside.example": "127.0.0.1"})
    urls = ["http://stuck.example/", "http://inside.example:6379/x"]
    with pytest.raises(egress.TargetRefused, match="loopback") as refused:
        await egress.check_targets(EgressPolicy(), urls, resolver=dns)
    assert refused.value.url == "http://inside.example:6379/x"


async def test_bind_time_lookups_leave_the_loops_shared_threads_to_the_gateway(monkeypatch):
    # A lookup the deadline abandons holds its thread; in asyncio's default pool it would hold up
    # the gateway's own lookups when it connects.
    threads: list[str] = []

    def lookup(host, port, **kwargs):
        threads.append(threading.current_thread().name)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    with pytest.raises(EgressRefused):
        await egress.check_target(EgressPolicy(), "http://inside.example/")
    assert threads and all(name.startswith("egress-bind") for name in threads)
