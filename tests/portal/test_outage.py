"""Portal pages while PostgreSQL is stopped under a running `charter serve`: the friendly page of the
`database-unavailable` problem (503, Retry-After), as the API answers its problem+json; and the
pages come back by themselves when the database does."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.faults.deployment import admin_headers, create_api, replica_env, until
from tests.faults.servers import PrivatePostgres, private_postgres
from tests.portal.support import sign_in
from tests.registry.support import charter_process

__all__ = ["private_postgres"]
PAGES = ["/", "/?q=ledger", "/apis/ledger", "/apis/ledger/versions/1.0.0", "/teams/delivery", "/flows"]


@pytest.fixture(scope="module")
def server(private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private catalog on a database of the private cluster, holding the `ledger` API."""
    root = tmp_path_factory.mktemp("portal-outage")
    workdir = root / "replica"
    workdir.mkdir()
    # Off this thread: Playwright's own event loop may already run on it.
    with ThreadPoolExecutor(1) as thread:
        database = thread.submit(private_postgres.create_database).result()
    env = replica_env(private_postgres.url(database), workdir, public_catalog="0")
    with charter_process(workdir, **env) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as client:
            create_api(client, admin_headers(url))
        yield url


@pytest.fixture
def outage(private_postgres: PrivatePostgres, server: str) -> Iterator[None]:
    private_postgres.stop("fast")
    try:
        yield
    finally:
        private_postgres.start()
        until(lambda: httpx.get(f"{server}/health").status_code == 200, "the database answers again")


def test_pages_during_an_outage_say_the_database_is_away(
    page: Page, server: str, outage: None, screenshot
) -> None:
    sign_in(page, server)  # the admin client is configured, not stored: signing in needs no database
    expect(page.get_by_role("heading", name="The registry's database does not answer")).to_be_visible()
    for path in PAGES:
        response = page.goto(f"{server}{path}")
        assert response is not None
        assert response.status == 503, (path, response.status)
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["content-type"].startswith("text/html")
        expect(page.get_by_role("heading", name="The registry's database does not answer")).to_be_visible()
        expect(page.get_by_text("Try again in a few seconds")).to_be_visible()
        expect(page.get_by_text("Traceback")).to_have_count(0)
    screenshot(page, "database-unavailable")


def test_pages_come_back_with_the_database(page: Page, server: str) -> None:
    sign_in(page, server)
    page.goto(f"{server}/apis/ledger")
    expect(page.get_by_role("heading", name="Projects ledger")).to_be_visible()
