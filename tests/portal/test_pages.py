"""Portal pages over plain HTTP against one real `charter serve` (public catalog, no demo): registry
data is shown as text, errors are pages with the right status, forms need their CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from tests.registry.support import ADMIN, charter_server, make_settings
from tests.samples import JSON_HEADERS, as_json, invoice_events, projects, rescoped

SCRIPT = '<script>alert("owned")</script>'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A public catalog holding `hostile` (every text of it markup) and `lonely` (one version)."""
    with charter_server(tmp_path_factory.mktemp("portal-pages"), public_catalog="1", access_log="0") as url:
        token = httpx.post(f"{url}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

        def call(method: str, path: str, **kwargs: object) -> None:
            response = httpx.request(
                method, f"{url}{path}", headers={**headers, **kwargs.pop("extra", {})}, **kwargs
            )  # type: ignore[arg-type]
            assert response.status_code in (200, 201), response.text

        call("POST", "/api/v1/teams", json={"name": "red-team", "description": SCRIPT, "members": ["ci-bot"]})
        call(
            "POST",
            "/api/v1/apis",
            json={
                "name": "hostile",
                "owner": "red-team",
                "title": f"Hostile {SCRIPT}",
                "description": f"Reads {SCRIPT} and <img src=x onerror=alert(1)>",
                "layer": "system",
                "tags": ["<b>bold</b>"],
            },
        )
        events = invoice_events("1.0.0")
        events["info"]["description"] = SCRIPT
        message = events["components"]["messages"]["InvoiceIssued"]
        message["title"] = SCRIPT
        message["payload"]["properties"]["amount"]["description"] = SCRIPT
        call("POST", "/api/v1/apis/hostile/versions", content=as_json(events), extra=JSON_HEADERS)
        call(
            "POST",
            "/api/v1/apis",
            json={"name": "lonely", "owner": "red-team", "title": "Lonely", "layer": "process"},
        )
        call("POST", "/api/v1/apis/lonely/versions", content=as_json(projects("1.0.0")), extra=JSON_HEADERS)
        conformance = {"passed": False, "target": "http://psa.test", "operations": 3, "test_cases": 40}
        conformance.update(failures=2, seconds=1.5)
        call("POST", "/api/v1/apis/lonely/versions/1.0.0/conformance", json=conformance)
        for name in ("fading", "gone"):
            call(
                "POST",
                "/api/v1/apis",
                json={"name": name, "owner": "red-team", "title": name, "layer": "experience"},
            )
            call(
                "POST",
                f"/api/v1/apis/{name}/versions",
                content=as_json(projects("1.0.0")),
                extra=JSON_HEADERS,
            )
            call("POST", f"/api/v1/apis/{name}/versions/1.0.0/deprecate", json={"sunset": "2027-06-30"})
        call("POST", "/api/v1/apis/gone/versions/1.0.0/retire", json={})
        yield url


def get(server: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{server}{path}", headers={"Accept": "text/html", **headers})


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=hostile",
        "/apis/hostile",
        "/apis/hostile/versions/1.0.0",
        "/?tag=%3Cb%3Ebold%3C/b%3E",
        "/teams/red-team",
    ],
)
def test_registry_text_is_shown_as_text_never_as_markup(server: str, path: str) -> None:
    response = get(server, path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>alert" not in response.text
    assert "<img src=x" not in response.text
    assert "<b>bold</b>" not in response.text
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in response.text


def test_the_catalog_finds_by_search_and_facets(server: str) -> None:
    found = get(server, "/?q=hostile&layer=system&owner=red-team")
    assert 'href="/apis/hostile"' in found.text
    assert 'href="/apis/lonely"' not in found.text
    assert get(server, "/?layer=process").text.count('class="result-title"') == 1
    none = get(server, "/?q=zzzunknown")
    assert "No API matches" in none.text and 'href="/apis/' not in none.text


@pytest.mark.parametrize(
    "path",
    [
        "/apis/no-such-api",
        "/teams/no-such-team",
        "/apis/hostile/versions/9.9.9",
        "/apis/no-such-api/versions/1.0.0",
        "/apis/hostile/diff?from=1.0.0&to=9.9.9",
        "/apis/hostile/versions/9.9.9/document.json",
        "/no/such/page",
    ],
)
def test_a_missing_thing_is_a_404_page(server: str, path: str) -> None:
    response = get(server, path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Not found</h1>" in response.text
    assert "Traceback" not in response.text


def test_the_api_keeps_problem_json_whatever_the_browser_asks(server: str) -> None:
    # A public catalog does not open the API: reads there still need a token (or anonymous reads).
    cases = [
        ("/api/v1/apis/no-such-api", "text/html", 401),
        ("/api/v1/no-such-route", "text/html", 404),
        ("/no/such/page", "application/json", 404),
    ]
    for path, accept, status in cases:
        response = get(server, path, Accept=accept)
        assert response.status_code == status, path
        assert response.headers["content-type"] == "application/problem+json", path


@pytest.mark.parametrize(
    ("path", "status"),
    [("/?page=0", 400), ("/?layer=galactic", 422), ("/apis/hostile/diff?from=1.0.0&to=1.0.0", 422)],
)
def test_a_bad_address_is_a_page_with_its_status(server: str, path: str, status: int) -> None:
    response = get(server, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "Back to the catalog" in response.text


def test_an_api_page_shows_the_last_conformance_run(server: str) -> None:
    text = get(server, "/apis/lonely").text
    assert re.search(r">failed</span> 2 failures in 40 cases, \d{4}-\d{2}-\d{2}<", text)


def test_a_team_page_lists_its_apis_and_members(server: str) -> None:
    response = get(server, "/teams/red-team")
    assert 'href="/apis/hostile"' in response.text and 'href="/apis/lonely"' in response.text
    assert "<code>ci-bot</code>" in response.text
    assert "no ruleset of its own" in response.text


def test_the_flows_console_is_not_part_of_a_public_catalog(server: str) -> None:
    """Runs carry business keys and failures: anonymous only where the API's reads are."""
    for path in ("/flows", "/flows/runs/any-run"):
        response = httpx.get(f"{server}{path}")
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/sign-in?next=/flows")


def test_the_catalog_marks_deprecated_and_retired_apis(server: str) -> None:
    listed = get(server, "/?layer=experience").text
    fading = listed[listed.index('href="/apis/fading"') :]
    assert "deprecated · sunset 2027-06-30" in fading[: fading.index("</li>")]
    gone = listed[listed.index('href="/apis/gone"') :]
    assert ">retired</span>" in gone[: gone.index("</li>")]
    assert "none released" in gone[: gone.index("</li>")]
    assert get(server, "/?layer=experience&lifecycle=retired").text.count('class="result-title"') == 1


def test_a_diff_needs_two_versions(server: str) -> None:
    response = get(server, "/apis/lonely/diff")
    assert response.status_code == 200
    assert "A diff needs two versions" in response.text


def test_downloads_serve_the_stored_document(server: str) -> None:
    as_json_file = get(server, "/apis/lonely/versions/1.0.0/document.json?download=1")
    assert as_json_file.json()["info"]["title"] == "Projects"
    assert as_json_file.headers["content-disposition"] == 'attachment; filename="lonely-1.0.0.json"'
    as_yaml_file = get(server, "/apis/lonely/versions/1.0.0/document.yaml")
    assert as_yaml_file.headers["content-type"].startswith("application/yaml")
    assert "title: Projects" in as_yaml_file.text


def csrf_token(page: httpx.Response) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
    assert match, "the form carries no CSRF token"
    return match.group(1)


def test_signing_in_needs_the_forms_csrf_token(server: str) -> None:
    with httpx.Client(base_url=server) as browser:
        form = {"client_id": ADMIN[0], "client_secret": ADMIN[1], "next": "/apis/lonely"}
        refused = browser.post("/sign-in", data=form, headers={"Accept": "text/html"})
        assert refused.status_code == 403
        assert "The form had expired" in refused.text
        assert "charter_session" not in refused.headers.get("set-cookie", "")

        token = csrf_token(browser.get("/sign-in"))
        forged = browser.post("/sign-in", data={**form, "_csrf_token": token[:-4] + "0000"})
        assert forged.status_code == 403

        signed_in = browser.post("/sign-in", data={**form, "_csrf_token": token})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/apis/lonely"
        cookie = signed_in.headers["set-cookie"]
        assert cookie.startswith("charter_session=")
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Secure" not in cookie
        assert f"Signed in as <strong>{ADMIN[0]}</strong>" in browser.get("/").text

        # Signing out is a form too.
        assert browser.post("/sign-out").status_code == 403
        out = browser.post("/sign-out", data={"_csrf_token": csrf_token(browser.get("/"))})
        assert out.status_code == 303
        assert "Signed in as" not in browser.get("/").text


def test_an_error_page_still_names_who_is_signed_in(server: str) -> None:
    with httpx.Client(base_url=server) as browser:
        token = csrf_token(browser.get("/sign-in"))
        form = {"client_id": ADMIN[0], "client_secret": ADMIN[1], "next": "/", "_csrf_token": token}
        signed_in = browser.post("/sign-in", data=form)
        assert signed_in.status_code == 303
        missing = browser.get("/apis/no-such-api/versions/1.0.0", headers={"Accept": "text/html"})
        assert missing.status_code == 404
        assert f"Signed in as <strong>{ADMIN[0]}</strong>" in missing.text
        assert 'href="/sign-in"' not in missing.text


def test_sign_in_goes_back_only_to_this_site(server: str) -> None:
    with httpx.Client(base_url=server) as browser:
        token = csrf_token(browser.get("/sign-in?next=//evil.example/x"))
        form = {"client_id": ADMIN[0], "client_secret": ADMIN[1], "_csrf_token": token}
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            response = browser.post("/sign-in", data={**form, "next": target})
            assert response.headers["location"] == "/", target


async def test_cookies_are_secure_behind_https(tmp_path: Path) -> None:
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/portal.db", public_url="https://registry.example"
    )
    async with AsyncTestClient(create_app(settings), base_url="https://registry.example") as client:
        form_page = await client.get("/sign-in")
        assert "Secure" in form_page.headers["set-cookie"]  # the CSRF cookie
        token = csrf_token(form_page)
        signed_in = await client.post(
            "/sign-in",
            data={"client_id": ADMIN[0], "client_secret": ADMIN[1], "_csrf_token": token},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        assert "Secure" in signed_in.headers["set-cookie"]


def test_the_diff_page_shows_each_change_once_with_its_operations_breaking_first(server: str) -> None:
    token = httpx.post(f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def version(number: str, nullable: bool) -> dict:
        doc = rescoped(projects(number), "shared")
        project = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Project"}}}}
        doc["paths"]["/projects/{projectId}"]["get"]["responses"]["200"].update(project)
        doc["paths"]["/projects"]["post"]["responses"]["201"].update(project)
        doc["components"]["schemas"]["Project"]["properties"]["client"]["nullable"] = nullable
        return doc

    for number, nullable in (("1.0.0", False), ("2.0.0", True)):
        response = httpx.post(
            f"{server}/api/v1/apis/shared/versions",
            content=as_json(version(number, nullable)),
            headers={**headers, **JSON_HEADERS},
            params={"owner": "red-team"},
        )
        assert response.status_code == 201, response.text
    page = get(server, "/apis/shared/diff?from=1.0.0&to=2.0.0").text
    groups = page.split('<section class="change-group">')[1:]
    assert len(groups) == 2
    assert (
        "`Project.client`: became nullable" in groups[0] and "response-property-became-nullable" in groups[0]
    )
    assert "Reaches 2 operations" in groups[0]
    assert (
        "<code>GET /projects/{projectId}</code>" in groups[0] and "<code>POST /projects</code>" in groups[0]
    )
    assert "request-property-became-nullable" in groups[1] and "Reaches 1 operation<" in groups[1]
    assert "1 breaking, 0 warning, 1 info (3 findings across operations)" in page

    policy = {"severity": {"response-property-became-nullable": "warning"}}
    httpx.put(f"{server}/api/v1/apis/shared/diff-policy", json=policy, headers=headers).raise_for_status()
    judged = get(server, "/apis/shared/diff?from=1.0.0&to=2.0.0").text
    assert "error → warning by policy" in judged and "0 breaking, 1 warning, 1 info" in judged
    off = {"severity": {"response-property-became-nullable": "off"}}
    httpx.put(f"{server}/api/v1/apis/shared/diff-policy", json=off, headers=headers).raise_for_status()
    quiet = get(server, "/apis/shared/diff?from=1.0.0&to=2.0.0").text
    assert (
        "0 breaking, 0 warning, 1 info." in quiet and "response-property-became-nullable</code>" not in quiet
    )
    assert (
        "2 findings of rules the severity policy turns off (response-property-became-nullable) are not shown."
        in quiet
    )
