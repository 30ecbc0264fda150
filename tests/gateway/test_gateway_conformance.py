"""Through the gateway, the demo `projects` API and its Python handlers keep their published contract."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from registry.app import create_app
from tests.gateway.conftest import CONSUMERS
from tests.registry.support import ADMIN, CLIENTS, make_settings

_DB = Path(tempfile.mkdtemp(prefix="charter-gateway-conformance-")) / "charter.db"
app = create_app(
    make_settings(f"sqlite+aiosqlite:///{_DB}", demo=True, clients_json=json.dumps(CLIENTS + CONSUMERS))
)
BASE = "http://localhost"


def _token(http, client_id: str, secret: str) -> str:
    response = http.post(
        f"{BASE}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    response.raise_for_status()
    return response.json()["access_token"]


def _prepare() -> tuple[dict, str]:
    """The published contract, pointed at the gateway; a consumer token; a quota that fuzzing won't hit."""
    with get_client(app) as http:
        admin = {"Authorization": f"Bearer {_token(http, *ADMIN)}"}
        http.put(
            f"{BASE}/api/v1/apis/projects/sla",
            json={"tier": "test", "rate_limit": {"requests": 100000, "per_seconds": 60}},
            headers=admin,
        ).raise_for_status()
        document = http.get(f"{BASE}/api/v1/apis/projects/versions/1.1.0", headers=admin).json()
        return document, _token(http, "billing-app", "billing-secret")


DOCUMENT, TOKEN = _prepare()
DOCUMENT["servers"] = [{"url": "/gw/projects/v1"}]
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.app = app
# Valid requests only: invalid ones get the gateway's 400, which the demo contracts do not declare.
schema.config.generation.update(modes=[GenerationMode.POSITIVE])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_demo_projects_conform_through_the_gateway(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)
