"""Signing in to the portal through an OpenID Connect provider, in a real Chromium, against a real
`charter serve` and a real provider on loopback (tests.oidc_provider). A wrong state, nonce, audience
or an expired ID token is refused with the sign-in page saying why, never a 500."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.loopback import free_port
from tests.oidc_provider import Grant, TestProvider, running
from tests.portal.support import serious_violations, tab_to
from tests.registry.support import ADMIN, charter_process
from tests.samples import JSON_HEADERS, as_json, projects

CLIENT_ID = "charter-portal"
CLIENT_SECRET = "portal-secret-at-the-provider"
# What the provider's access tokens grant each person: alice reads and writes, bob reads nothing.
PEOPLE = {"alice@example.com": "registry:read registry:write", "bob@example.com": "profile"}


@dataclass
class Deployment:
    url: str
    provider: TestProvider
    admin: dict[str, str]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """A private catalog whose sign-in page offers the provider; `alice` is a member of `delivery`,
    which owns `timesheets`; nobody lists her in `finance`, which owns `ledger`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider = TestProvider(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uri=f"{url}/sign-in/oidc/callback",
        people=PEOPLE,
        audience="charter",
    )
    workdir = tmp_path_factory.mktemp("portal-oidc")
    with (
        running(provider),
        charter_process(
            workdir,
            port=port,
            public_url=url,
            public_catalog="0",
            access_log="0",
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            oidc_scopes="openid registry:read registry:write",
            oidc_name="Test ID",
        ) as (server, _),
    ):
        assert server == url
        token = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
        admin = {"Authorization": f"Bearer {token.json()['access_token']}"}
        for team, members, api in (
            ("delivery", ["alice@example.com"], "timesheets"),
            ("finance", [], "ledger"),
        ):
            created = httpx.post(
                f"{url}/api/v1/teams", json={"name": team, "members": members}, headers=admin
            )
            assert created.status_code == 201, created.text
            created = httpx.post(
                f"{url}/api/v1/apis",
                json={"name": api, "owner": team, "title": api.title(), "layer": "system"},
                headers=admin,
            )
            assert created.status_code == 201, created.text
        yield Deployment(url, provider, admin)


@pytest.fixture(autouse=True)
def honest_provider(deployment: Deployment) -> Iterator[None]:
    deployment.provider.tamper = None
    yield
    deployment.provider.tamper = None


def sign_in_through_provider(page: Page, deployment: Deployment, who: str, screenshot=None) -> None:
    page.goto(f"{deployment.url}/apis/timesheets")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/apis/timesheets$"))
    if screenshot:
        screenshot(page, "sign-in-with-oidc")
        assert not serious_violations(page)
    page.get_by_role("button", name="Sign in with Test ID").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(deployment.provider.issuer)}/authorize\?"))
    assert "code_challenge_method=S256" in page.url and "nonce=" in page.url and "state=" in page.url
    page.get_by_label("Account").select_option(who)
    if screenshot:
        screenshot(page, "oidc-provider")
    page.get_by_role("button", name="Continue").click()


def test_a_person_signs_in_through_the_provider_and_reads_the_pages(
    page: Page, deployment: Deployment, screenshot
) -> None:
    sign_in_through_provider(page, deployment, "alice@example.com", screenshot)
    expect(page).to_have_url(f"{deployment.url}/apis/timesheets")
    expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible()
    expect(page.get_by_role("heading", name="Timesheets")).to_be_visible()
    screenshot(page, "oidc-signed-in")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["charter_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax"
    # The attempt's cookie is spent; its max age followed the provider's five-minute token.
    assert "charter_oidc" not in cookies
    assert 0 < session["expires"] - time.time() <= 300

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Catalog").click()
    expect(page.get_by_role("link", name="Ledger", exact=True)).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{deployment.url}/sign-in")


def test_the_pages_hold_a_person_to_the_scopes_of_the_providers_token(
    page: Page, deployment: Deployment, screenshot
) -> None:
    """bob's access token grants no registry:read: signed in, he is refused as the API refuses him."""
    sign_in_through_provider(page, deployment, "bob@example.com")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("the token lacks the scope registry:read")).to_be_visible()
    screenshot(page, "oidc-no-read-scope")


def test_the_api_gives_the_providers_tokens_the_same_scopes_and_teams(deployment: Deployment) -> None:
    """What the portal's session holds, the API reads alike: alice's token may publish to the API of
    her team and not to another team's."""
    provider = deployment.provider
    token = provider.tokens(Grant(subject="alice@example.com", nonce="n", challenge="", redirect_uri=""))
    alice = {"Authorization": f"Bearer {token['access_token']}", **JSON_HEADERS}
    own = httpx.post(
        f"{deployment.url}/api/v1/apis/timesheets/versions", content=as_json(projects()), headers=alice
    )
    assert own.status_code == 201, own.text
    other = httpx.post(
        f"{deployment.url}/api/v1/apis/ledger/versions", content=as_json(projects()), headers=alice
    )
    assert other.status_code == 403
    assert "not a member of the owning team finance" in other.json()["detail"]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("state", "does not belong to this sign-in (state)"),
        ("nonce", "its nonce is not the one this sign-in sent"),
        ("aud", "it was issued to another client (audience)"),
        ("exp", "it has expired"),
    ],
)
def test_a_wrong_answer_from_the_provider_is_refused_with_the_reason(
    page: Page, deployment: Deployment, screenshot, tamper: str, reason: str
) -> None:
    deployment.provider.tamper = tamper
    responses: list[int] = []
    page.on("response", lambda r: responses.append(r.status) if "/sign-in/oidc/callback" in r.url else None)
    sign_in_through_provider(page, deployment, "alice@example.com")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(reason)
    expect(page.get_by_text("Signed in as")).to_have_count(0)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    assert responses and all(400 <= status < 500 for status in responses), responses
    assert "charter_session" not in {c["name"] for c in page.context.cookies()}
    screenshot(page, f"oidc-refused-{tamper}")
    # Nothing was let in: the page asked for still sends the browser to sign in.
    page.goto(f"{deployment.url}/apis/timesheets")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def test_a_callback_without_its_attempt_is_refused(deployment: Deployment) -> None:
    """A code and state posted into another browser (login CSRF) find no attempt of that browser,
    and the provider is not even asked about the code."""
    asked = deployment.provider.token_requests
    response = httpx.get(
        f"{deployment.url}/sign-in/oidc/callback",
        params={"code": "stolen", "state": "stolen"},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 400
    assert "expired or was started in another browser" in response.text
    assert deployment.provider.token_requests == asked


def test_a_keyboard_alone_signs_in_through_the_provider(page: Page, deployment: Deployment) -> None:
    page.goto(f"{deployment.url}/sign-in?next=/apis/ledger")
    tab_to(page, page.get_by_role("button", name="Sign in with Test ID"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"^{re.escape(deployment.provider.issuer)}/authorize\?"))
    continue_button = page.get_by_role("button", name="Continue")
    while not continue_button.evaluate("el => el === document.activeElement"):
        page.keyboard.press("Tab")  # the provider's page: its account list, then its button
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{deployment.url}/apis/ledger")
    expect(page.get_by_text("Signed in as alice@example.com")).to_be_visible()
