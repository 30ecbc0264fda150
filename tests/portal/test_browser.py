"""The portal in a real Chromium against one real `charter serve` (demo contracts, private catalog):
sign in, search and facet to an API, read its page, its docs and a diff with a breaking change."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
import yaml
from playwright.sync_api import Page, expect

from registry.demo import DEMO_DIR
from tests.portal.support import serious_violations, sign_in, tab_to
from tests.registry.support import ADMIN, charter_process


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Demo on, catalog private; projects 2.0.0 removes a path of 1.1.0 (a breaking change)."""
    workdir = tmp_path_factory.mktemp("portal-browser")
    with charter_process(workdir, demo="1", public_catalog="0", access_log="0") as (url, _):
        token = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
        document = yaml.safe_load((DEMO_DIR / "projects-1.1.0.yaml").read_text())
        del document["paths"]["/projects/{projectId}/milestones"]
        document["info"]["version"] = "2.0.0"
        published = httpx.post(
            f"{url}/api/v1/apis/projects/versions",
            content=msgspec.json.encode(document),
            headers={
                "Authorization": f"Bearer {token.json()['access_token']}",
                "Content-Type": "application/json",
            },
        )
        assert published.status_code == 201, published.text
        yield url


def test_an_anonymous_visitor_of_a_private_catalog_is_sent_to_sign_in(
    page: Page, server: str, screenshot
) -> None:
    page.goto(f"{server}/apis/projects")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/apis/projects$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_text("Projects")).to_have_count(0)
    screenshot(page, "sign-in")
    # Nor does the document download or the diff say anything without a session.
    for path in ("/apis/projects/versions/1.0.0/document.json", "/apis/projects/diff", "/"):
        response = httpx.get(f"{server}{path}")
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/sign-in?next=")


def test_signing_in_returns_to_the_page_asked_for(page: Page, server: str) -> None:
    page.goto(f"{server}/apis/invoices")
    page.get_by_label("Client id").fill(ADMIN[0])
    page.get_by_label("Client secret").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server}/apis/invoices")
    expect(page.get_by_text(f"Signed in as {ADMIN[0]}")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "charter_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server}/sign-in")
    page.goto(f"{server}/apis/invoices")
    expect(page).to_have_url(re.compile(r"/sign-in\?next="))


def test_a_wrong_secret_is_refused_on_the_form(page: Page, server: str, screenshot) -> None:
    sign_in(page, server, secret="not-the-secret")
    expect(page.get_by_role("alert")).to_have_text("That client id and secret were not accepted.")
    expect(page.get_by_label("Client id")).to_have_value(ADMIN[0])
    screenshot(page, "sign-in-refused")


def test_search_and_facet_to_an_api_then_read_its_page_and_event_docs(
    page: Page, server: str, screenshot
) -> None:
    sign_in(page, server)
    expect(page.get_by_role("heading", name="API catalog")).to_be_visible()
    expect(page.get_by_role("link", name="Projects", exact=True)).to_be_visible()
    screenshot(page, "catalog")

    page.get_by_label("Search APIs").fill("invoice")
    page.get_by_label("Kind").select_option("asyncapi")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"q=invoice.*kind=asyncapi"))
    results = page.locator(".result-title")
    expect(results).to_have_text(["Invoice events"])  # the OpenAPI `invoices` is filtered out
    screenshot(page, "catalog-search")

    results.first.click()
    expect(page).to_have_url(f"{server}/apis/invoice-events")
    expect(page.get_by_role("heading", name="Changelog")).to_be_visible()
    changelog = page.locator("#changelog + h3 + ul.changes")
    expect(changelog).to_contain_text("invoice.ready")
    expect(page.get_by_text("finance", exact=True).first).to_be_visible()
    screenshot(page, "api-invoice-events")

    page.get_by_role("link", name="1.1.0", exact=True).click()
    expect(page).to_have_url(f"{server}/apis/invoice-events/versions/1.1.0")
    channels = page.locator("#channels + table")
    expect(channels).to_contain_text("invoice.ready")
    expect(page.locator("#operations + table")).to_contain_text(
        "A billing run invoiced a client's approved time of one month"
    )
    expect(page.locator("#message-InvoiceReady table")).to_contain_text("period")
    screenshot(page, "docs-asyncapi")


def test_an_openapi_contract_reads_as_docs_with_its_operations(page: Page, server: str, screenshot) -> None:
    sign_in(page, server)
    page.goto(f"{server}/apis/projects")
    expect(page.locator("#curl")).to_contain_text("/gw/projects/v2/projects")
    expect(page.get_by_text("600 requests per 60 s per consumer")).to_be_visible()
    screenshot(page, "api-projects")

    page.get_by_role("link", name="1.1.0", exact=True).click()
    expect(page.get_by_text("List the milestones of a project")).to_be_visible(timeout=15_000)
    screenshot(page, "docs-openapi")


def test_the_diff_of_two_versions_shows_the_breaking_change_first(
    page: Page, server: str, screenshot
) -> None:
    sign_in(page, server)
    page.goto(f"{server}/apis/projects")
    page.get_by_role("link", name=re.compile(r"^\d+ since 1\.1\.0$")).click()  # the changes of 2.0.0
    expect(page).to_have_url(f"{server}/apis/projects/diff?from=1.1.0&to=2.0.0")
    verdict = page.get_by_role("status")
    expect(verdict).to_contain_text("1.1.0 → 2.0.0: breaking")
    expect(verdict).to_contain_text("need a major version")
    expect(verdict).to_contain_text("enough")
    first_group = page.locator(".change-group").first
    expect(first_group.locator("h3")).to_contain_text("GET /projects/{projectId}/milestones removed")
    expect(first_group).to_contain_text("api-path-removed-without-deprecation")
    expect(first_group).to_contain_text("Reaches 1 operation")
    expect(first_group).to_contain_text("/paths/~1projects~1{projectId}~1milestones")
    screenshot(page, "diff-breaking")

    page.get_by_label("From").select_option("1.0.0")
    page.get_by_label("To").select_option("1.1.0")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("status")).to_contain_text("1.0.0 → 1.1.0: compatible")
    expect(page.get_by_role("status")).to_contain_text("need a minor version")
    screenshot(page, "diff-compatible")


def test_pages_fit_a_phone(browser, server: str, screenshot) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        sign_in(page, server)
        expect(page.get_by_role("heading", name="API catalog")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the catalog scrolls sideways on a phone ({width} px)"
        screenshot(page, "catalog-phone")
    finally:
        context.close()


def test_an_unknown_api_is_a_friendly_404(page: Page, server: str, screenshot) -> None:
    sign_in(page, server)
    response = page.goto(f"{server}/apis/no-such-api")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    screenshot(page, "not-found")


def admin_headers(server: str) -> dict[str, str]:
    token = httpx.post(f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def parked_billing_run(server: str) -> str:
    """A time-to-bill run parked as failed: the ERP fails every call until the fault is cleared."""
    admin = admin_headers(server)
    faults = f"{server}/api/v1/demo/systems/erp/faults"
    assert httpx.put(faults, json={"fail_next": 100, "status": 503}, headers=admin).status_code == 200
    client = httpx.post(
        f"{server}/api/v1/clients",
        json={
            "client_id": "portal-billing",
            "name": "Billing",
            "team": "integration",
            "scopes": ["time-to-bill:run"],
        },
        headers=admin,
    )
    assert client.status_code == 201, client.text
    token = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("portal-billing", client.json()["client_secret"]),
    ).json()["access_token"]
    started = httpx.post(
        f"{server}/gw/time-to-bill/v1/billing-runs",
        json={"client": "acme", "period": "2026-10"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "portal-retry-1"},
        timeout=60,
    )
    assert started.status_code >= 200, started.text
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        runs = httpx.get(
            f"{server}/api/v1/flows/runs", params={"flow": "time-to-bill", "state": "failed"}, headers=admin
        ).json()
        if runs["total"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the billing run did not park as failed")
    assert httpx.put(faults, json={"fail_next": 0}, headers=admin).status_code == 200
    return runs["items"][0]["id"]


def test_an_operator_retries_a_parked_run_from_the_console(page: Page, server: str, screenshot) -> None:
    run_id = parked_billing_run(server)
    sign_in(page, server)
    page.get_by_role("link", name="Flows").click()
    expect(page).to_have_url(f"{server}/flows")
    queue = page.locator("#queue ~ table").first
    expect(queue).to_contain_text(run_id)
    expect(queue).to_contain_text("client=acme")
    screenshot(page, "flows-console")

    page.get_by_role("link", name=run_id).click()
    expect(page.locator("#run-state")).to_have_text("failed")
    expect(page.locator(".timeline")).to_contain_text("503")
    screenshot(page, "flow-run-failed")

    page.get_by_role("button", name=re.compile(r"^Retry from ")).click()
    notice = re.compile(r"^(Retry started\.|The run has ended: succeeded\.)$")
    expect(page.get_by_role("status")).to_have_text(notice)
    # A running run's page refreshes itself every two seconds until the run ends.
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=60_000)
    expect(page.get_by_role("button", name=re.compile(r"^Retry"))).to_have_count(0)
    expect(page.get_by_role("status")).to_have_text("The run has ended: succeeded.")
    screenshot(page, "flow-run-retried")

    page.get_by_label("Replay from step").select_option("issue-invoice")
    page.get_by_role("button", name="Replay as a new run").click()
    expect(page.get_by_text("Replay of")).to_be_visible()
    expect(page.get_by_role("link", name=run_id)).to_be_visible()
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=60_000)
    screenshot(page, "flow-run-replayed")


def test_a_retry_without_the_forms_token_is_refused(server: str) -> None:
    response = httpx.post(f"{server}/flows/runs/any-run/retry", headers={"Accept": "text/html"})
    assert response.status_code == 403
    assert "The form had expired" in response.text


def test_an_api_page_shows_its_calls_by_version_and_consumer(page: Page, server: str, screenshot) -> None:
    """The demo flows' calls to the simulated ERP (made by the retried run above, or the demo) are
    counted by the gateway and stored every few seconds."""
    admin = admin_headers(server)
    deadline = time.monotonic() + 30
    while not httpx.get(f"{server}/api/v1/apis/erp/usage", headers=admin).json()["items"]:
        if time.monotonic() > deadline:
            pytest.fail("no call to the ERP was recorded")
        time.sleep(0.5)
    sign_in(page, server)
    page.goto(f"{server}/apis/erp")
    expect(page.locator(".bars")).to_contain_text("1.0.0")
    expect(page.locator("#consumers ~ table").first).to_contain_text("demo-flows")
    screenshot(page, "api-erp-usage")


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=invoice&kind=asyncapi",
        "/apis/projects",
        "/apis/invoice-events/versions/1.1.0",
        "/apis/projects/diff?from=1.1.0&to=2.0.0",
        "/teams/finance",
        "/flows",
        "/apis/no-such-api",
    ],
)
def test_pages_have_no_serious_accessibility_violations(page: Page, server: str, path: str) -> None:
    """axe-core on each page; Swagger UI's own markup aside."""
    sign_in(page, server)
    page.goto(f"{server}{path}")
    serious = serious_violations(page, exclude=[["#swagger-ui"]])
    assert not serious, "\n".join(serious)


def test_a_client_without_the_read_scope_is_refused_the_pages(server: str) -> None:
    """Pages read through the API's rules: a client that may call a flow but not read the registry."""
    client = httpx.post(
        f"{server}/api/v1/clients",
        json={
            "client_id": "portal-caller",
            "name": "Caller",
            "team": "integration",
            "scopes": ["time-to-bill:run"],
        },
        headers=admin_headers(server),
    )
    assert client.status_code == 201, client.text
    with httpx.Client(base_url=server, headers={"Accept": "text/html"}) as browser:
        form_page = browser.get("/sign-in")
        token = re.search(r'name="_csrf_token" value="([^"]+)"', form_page.text)
        assert token
        signed_in = browser.post(
            "/sign-in",
            data={
                "client_id": "portal-caller",
                "client_secret": client.json()["client_secret"],
                "_csrf_token": token.group(1),
            },
        )
        assert signed_in.status_code == 303
        for path in ("/", "/apis/projects", "/flows"):
            refused = browser.get(path)
            assert refused.status_code == 403, path
            assert "registry:read" in refused.text


def test_an_api_page_charts_calls_per_day_by_version(page: Page, server: str, screenshot) -> None:
    """Real calls through the gateway to two major versions of `projects`, stored by the usage
    flusher (every few seconds), drawn as today's stacked bar with a legend and a table."""
    admin = admin_headers(server)
    client = httpx.post(
        f"{server}/api/v1/clients",
        json={
            "client_id": "portal-reader",
            "name": "Reader",
            "team": "delivery",
            "scopes": ["projects:read"],
        },
        headers=admin,
    )
    assert client.status_code == 201, client.text
    token = httpx.post(
        f"{server}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("portal-reader", client.json()["client_secret"]),
    ).json()["access_token"]
    reader = {"Authorization": f"Bearer {token}"}
    for major, calls in (("v1", 3), ("v2", 5)):
        for _ in range(calls):
            assert httpx.get(f"{server}/gw/projects/{major}/projects", headers=reader).status_code == 200

    def calls_by_version() -> dict[str, int]:
        items = httpx.get(f"{server}/api/v1/apis/projects/usage", headers=admin).json()["items"]
        seen: dict[str, int] = {}
        for item in items:
            if item["consumer"] == "portal-reader":
                seen[item["version"]] = seen.get(item["version"], 0) + item["calls"]
        return seen

    deadline = time.monotonic() + 30
    while calls_by_version() != {"1.1.0": 3, "2.0.0": 5}:
        if time.monotonic() > deadline:
            pytest.fail(f"the calls were not stored: {calls_by_version()}")
        time.sleep(0.5)

    sign_in(page, server)
    page.goto(f"{server}/apis/projects")
    chart = page.get_by_role("img", name=re.compile(r"^Calls per day by version, \d{4}-\d{2}-\d{2} to "))
    expect(chart).to_be_visible()
    expect(chart.locator("rect")).to_have_count(2)  # today's bar: one segment per version
    legend = page.locator(".legend")
    expect(legend).to_contain_text("2.0.0")
    expect(legend).to_contain_text("1.1.0")
    page.get_by_text("Calls per day as a table").click()
    today = page.locator(".chart-table tbody tr").first
    expect(today.locator("th")).to_have_text(time.strftime("%Y-%m-%d", time.gmtime()))
    expect(today.locator("td")).to_have_text(["5", "3", "8"])  # newest version first, then the sum
    chart.scroll_into_view_if_needed()
    screenshot(page, "api-projects-usage-chart")
    serious = serious_violations(page)
    assert not serious, "\n".join(serious)

    page.set_viewport_size({"width": 390, "height": 844})
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] <= 390, box  # the chart shrinks to a phone's width
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the API page scrolls sideways on a phone ({width} px)"
    chart.scroll_into_view_if_needed()
    screenshot(page, "api-projects-usage-chart-phone")


def test_a_keyboard_alone_signs_in_searches_facets_and_opens_an_api(
    page: Page, server: str, screenshot
) -> None:
    page.goto(f"{server}/")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/$"))
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()  # the skip link shows itself when focused

    tab_to(page, page.get_by_label("Client id"))
    page.keyboard.type(ADMIN[0])
    tab_to(page, page.get_by_label("Client secret"))
    page.keyboard.type(ADMIN[1])
    tab_to(page, page.get_by_role("button", name="Sign in", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="API catalog")).to_be_visible()

    search = page.get_by_label("Search APIs")
    tab_to(page, search)
    page.keyboard.type("invoice")
    screenshot(page, "keyboard-search-focused")
    kind = page.get_by_label("Kind")
    tab_to(page, kind)
    while kind.input_value() != "asyncapi":  # a closed select steps through its options with arrows
        page.keyboard.press("ArrowDown")
    tab_to(page, page.get_by_role("button", name="Search"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"q=invoice.*kind=asyncapi"))

    result = page.get_by_role("link", name="Invoice events")
    tab_to(page, result)
    screenshot(page, "keyboard-result-focused")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server}/apis/invoice-events")
    expect(page.get_by_role("heading", name=re.compile("^Invoice events"))).to_be_visible()
    tab_to(page, page.get_by_role("link", name="1.1.0", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server}/apis/invoice-events/versions/1.1.0")


def ledger(version: str, *, grown: bool = False) -> dict:
    """Three operations answer the shared `Entry`; the grown version adds a property to it and
    removes one of them."""
    entry = {"$ref": "#/components/schemas/Entry"}

    def answering(schema: dict, summary: str) -> dict:
        content = {"application/json": {"schema": schema}}
        return {"get": {"summary": summary, "responses": {"200": {"description": "ok", "content": content}}}}

    paths = {
        "/entries": answering({"type": "array", "items": entry}, "List entries"),
        "/entries/{entryId}": answering(entry, "Read an entry"),
        "/entries/latest": answering(entry, "The latest entry"),
        "/entries/first": answering(entry, "The first entry"),
    }
    paths["/entries/{entryId}"]["parameters"] = [
        {"name": "entryId", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    properties = {"amount": {"type": "number"}, "account": {"type": "string"}}
    if grown:
        properties["memo"] = {"type": "string"}
        del paths["/entries/first"]
    return {
        "openapi": "3.0.3",
        "info": {"title": "Ledger", "version": version},
        "paths": paths,
        "components": {"schemas": {"Entry": {"type": "object", "properties": properties}}},
    }


def test_an_api_pages_changelog_shows_each_change_once_with_the_operations_it_reaches(
    page: Page, server: str, screenshot
) -> None:
    token = httpx.post(f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Content-Type": "application/json"}
    for document, params in ((ledger("1.0.0"), {"owner": "finance"}), (ledger("2.0.0", grown=True), {})):
        published = httpx.post(
            f"{server}/api/v1/apis/ledger/versions",
            content=msgspec.json.encode(document),
            headers=headers,
            params=params,
        )
        assert published.status_code == 201, published.text

    sign_in(page, server)
    page.goto(f"{server}/apis/ledger")
    heading = page.locator("#changelog + h3")
    expect(heading).to_contain_text(
        "2.0.0 since 1.0.0, needs a major bump; 2 changes, 4 findings across operations"
    )
    items = page.locator("#changelog + h3 + ul.changes > li")
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_contain_text("GET /entries/first removed")  # breaking first
    expect(items.nth(0).locator(".badge")).to_have_text("error")
    shared = items.nth(1)
    expect(shared.locator(".change-message")).to_have_text("`Entry.memo`: property added")
    expect(shared.locator(".reaches")).to_have_text(
        "reaches 3 operations: GET /entries, GET /entries/latest, GET /entries/{entryId}"
    )
    screenshot(page, "api-changelog-grouped")
