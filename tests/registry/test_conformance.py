"""The registry keeps its own contract: schemathesis drives the app in-process through its Python API."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registry.app import create_app
from tests.registry.support import ADMIN, make_settings
from tests.samples import as_json, projects

_DB = Path(tempfile.mkdtemp(prefix="charter-conformance-")) / "charter.db"
app = create_app(make_settings(f"sqlite+aiosqlite:///{_DB}"))
BASE = "http://localhost"


def _prepare() -> str:
    """A token, and one API with a version, so that generated requests also reach stored things."""
    with get_client(app) as http:
        response = http.post(f"{BASE}/oauth/token", data={"grant_type": "client_credentials"}, auth=ADMIN)
        response.raise_for_status()
        token = response.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        http.post(f"{BASE}/api/v1/teams", json={"name": "delivery"}, headers=headers).raise_for_status()
        http.post(
            f"{BASE}/api/v1/apis/projects/versions",
            data=as_json(projects()),
            headers={**headers, "Content-Type": "application/json"},
            params={"owner": "delivery"},
        ).raise_for_status()
        return token


TOKEN = _prepare()
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_registry_conforms_to_its_openapi_document(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)
