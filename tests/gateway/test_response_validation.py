"""Response validation in shadow mode: a response outside the contract is counted and logged, not changed."""

from __future__ import annotations

import logging

import pytest
from litestar.testing import AsyncTestClient

from registry.app import create_app
from registry.demo import handlers
from tests.gateway.conftest import gateway_settings
from tests.registry.support import bearer, fetch_token


@pytest.fixture
def broken_project() -> object:
    handlers._projects["p-bad"] = {"id": "p-bad", "status": "lost"}  # no name or client, unknown status
    yield
    handlers._projects.pop("p-bad", None)


async def test_shadow_response_validation(tmp_path, broken_project, caplog):
    app = create_app(gateway_settings(tmp_path, validate_responses=True))
    async with AsyncTestClient(app) as client:
        billing = bearer(await fetch_token(client, "billing-app", "billing-secret"))
        good = await client.get("/gw/projects/v1/projects/p-1", headers=billing)
        assert good.status_code == 200
        gateway_log = logging.getLogger("charter.gateway")
        gateway_log.addHandler(caplog.handler)  # litestar's logging config does not propagate to root
        try:
            bad = await client.get("/gw/projects/v1/projects/p-bad", headers=billing)
        finally:
            gateway_log.removeHandler(caplog.handler)
        assert (bad.status_code, bad.json()) == (200, {"id": "p-bad", "status": "lost"})
        metrics = (await client.get("/metrics")).text
        assert (
            'charter_gateway_response_violations_total{api="projects",operation="getProject"} 1.0' in metrics
        )
        assert any(
            "outside its contract" in r.getMessage() and "/response" in r.getMessage() for r in caplog.records
        )
