"""Outgoing requests connect only where the egress policy allows, checked when they connect."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest
from litestar.testing import AsyncTestClient

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
