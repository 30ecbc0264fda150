"""The OpenID Connect relying party alone, against the loopback provider: what it sends (PKCE, the
redirect URI), what it caches (discovery, keys), and what one sign-in may cost when the provider
misbehaves (a timeout, an issuer that is not the one configured)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest

from policies.auth import OidcProvider, PendingSignIn, ProviderUnavailable, SignedIn, SignInFailed
from tests.oidc_provider import TestProvider, running

REDIRECT = "http://charter.test/sign-in/oidc/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[TestProvider]:
    with running(
        TestProvider(
            client_id="portal",
            client_secret="secret",
            redirect_uri=REDIRECT,
            people={"alice": "registry:read"},
            audience="charter",
        )
    ) as running_provider:
        yield running_provider


def relying_party(provider: TestProvider, **options: object) -> OidcProvider:
    return OidcProvider(
        provider.issuer, client_id="portal", client_secret="secret", redirect_uri=REDIRECT, **options
    )  # type: ignore[arg-type]


async def approve(url: str, who: str = "alice") -> tuple[str, str]:
    """What the person's browser does at the provider: open the page, pick an account, continue."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(url)
        assert page.status_code == 200, page.text
        fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text))
        answer = await browser.post(url.split("?")[0], data={**fields, "who": who})
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return query["code"][0], query["state"][0]


async def sign_in(rp: OidcProvider) -> SignedIn:
    pending = rp.begin("/")
    code, state = await approve(await rp.authorization_url(pending))
    return await rp.finish(pending, code=code, state=state)


async def test_discovery_and_keys_are_fetched_once_for_many_sign_ins(provider: TestProvider) -> None:
    rp = relying_party(provider)
    discovered, keys = provider.discovery_requests, provider.jwks_requests
    try:
        for _ in range(3):
            signed = await sign_in(rp)
            assert signed.id_claims["sub"] == "alice"
            assert signed.expires_in == 300
    finally:
        await rp.aclose()
    assert (provider.discovery_requests - discovered, provider.jwks_requests - keys) == (1, 1)


async def test_a_provider_that_takes_the_secret_in_the_form_gets_it_there(provider: TestProvider) -> None:
    provider.auth_method = "client_secret_post"
    rp = relying_party(provider)
    try:
        assert (await sign_in(rp)).id_claims["sub"] == "alice"
    finally:
        provider.auth_method = "client_secret_basic"
        await rp.aclose()


async def test_the_authorization_request_carries_pkce_state_and_nonce(provider: TestProvider) -> None:
    rp = relying_party(provider, scopes="registry:read")
    try:
        pending = rp.begin("/apis")
        query = parse_qs(urlsplit(await rp.authorization_url(pending)).query)
    finally:
        await rp.aclose()
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [pending.state] and query["nonce"] == [pending.nonce]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["scope"] == ["openid registry:read"]
    assert pending.code_verifier not in query["code_challenge"][0]


async def test_a_code_exchanged_without_its_verifier_is_refused(provider: TestProvider) -> None:
    rp = relying_party(provider)
    try:
        pending = rp.begin("/")
        code, state = await approve(await rp.authorization_url(pending))
        forged = msgspec.structs.replace(pending, code_verifier="x" * 64)
        with pytest.raises(
            SignInFailed, match=re.escape("refused to exchange the sign-in code (invalid_grant)")
        ):
            await rp.finish(forged, code=code, state=state)
    finally:
        await rp.aclose()


async def test_a_discovery_document_of_another_issuer_is_refused(provider: TestProvider) -> None:
    rp = OidcProvider(
        provider.issuer + "/tenant", client_id="portal", client_secret="secret", redirect_uri=REDIRECT
    )
    try:
        with pytest.raises(ProviderUnavailable):
            await rp.authorization_url(PendingSignIn("s", "n", "v", "/"))
    finally:
        await rp.aclose()


async def test_a_provider_that_never_answers_costs_one_timeout() -> None:
    """A socket that accepts connections and says nothing: the sign-in ends after the timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        rp = OidcProvider(
            f"http://127.0.0.1:{port}", client_id="c", client_secret="s", redirect_uri=REDIRECT, timeout=1
        )
        started = time.monotonic()
        try:
            with pytest.raises(ProviderUnavailable, match="does not answer"):
                await rp.authorization_url(PendingSignIn("s", "n", "v", "/"))
        finally:
            await rp.aclose()
        assert time.monotonic() - started < 3
