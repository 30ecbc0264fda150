"""The embedded gateway in front of the demo contracts: routing, versions, auth, validation, adapters."""

from __future__ import annotations

import datetime as dt
import io
import json
from email.utils import parsedate_to_datetime

import yaml

from registry.demo import DEMO_DIR
from tests.gateway.conftest import settled
from tests.registry.support import bearer, fetch_token
from tests.samples import projects


async def test_latest_version_serves_through_the_python_handler(client, billing):
    response = await client.get("/gw/projects/projects", headers=billing)
    assert response.status_code == 200, response.text
    assert response.json()[0]["id"] == "p-1"
    assert response.headers["content-type"] == "application/json"
    trace = response.headers["traceparent"].split("-")
    assert len(trace) == 4 and len(trace[1]) == 32


async def test_version_by_path_major_and_by_header(client, billing, admin):
    # 1.1.0 added milestones; 1.0.0 did not have them.
    assert (await client.get("/gw/projects/v1/projects/p-1/milestones", headers=billing)).status_code == 200
    old = await client.get(
        "/gw/projects/projects/p-1/milestones", headers={**billing, "API-Version": "1.0.0"}
    )
    assert old.status_code == 404
    assert old.json()["type"] == "/problems/unknown-path"
    by_major = await client.get("/gw/projects/projects/p-1", headers={**billing, "API-Version": "1"})
    assert by_major.status_code == 200
    unknown = await client.get("/gw/projects/v7/projects", headers=billing)
    assert (unknown.status_code, unknown.json()["type"]) == (404, "/problems/unknown-version")
    assert (await client.get("/gw/nothing/v1/x", headers=billing)).status_code == 404


async def test_wrong_method_is_405_with_allow(client, billing):
    response = await client.delete("/gw/projects/v1/projects", headers=billing)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == "application/problem+json"


async def test_deprecated_version_announces_itself_and_retired_is_gone(app, client, billing, admin):
    v2 = yaml.safe_load((DEMO_DIR / "projects-1.1.0.yaml").read_text())
    v2["info"]["version"] = "2.0.0"
    published = await client.post(
        "/api/v1/apis/projects/versions",
        content=json.dumps(v2),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert published.status_code == 201, published.text
    sunset = dt.date.today() + dt.timedelta(days=90)
    deprecated = await client.post(
        "/api/v1/apis/projects/versions/1.1.0/deprecate",
        json={"sunset": sunset.isoformat(), "replacement": "2.0.0"},
        headers=admin,
    )
    assert deprecated.status_code == 200, deprecated.text
    await settled(app)

    response = await client.get("/gw/projects/v1/projects", headers=billing)
    assert response.status_code == 200
    deprecated_at = dt.datetime.fromisoformat(deprecated.json()["deprecation"]["deprecated_at"])
    assert response.headers["deprecation"] == f"@{int(deprecated_at.timestamp())}"
    assert parsedate_to_datetime(response.headers["sunset"]).date() == sunset
    assert response.headers["link"] == '<http://testserver.local/gw/projects/v2>; rel="successor-version"'
    assert "deprecation" not in (await client.get("/gw/projects/v2/projects", headers=billing)).headers

    await client.post("/api/v1/apis/projects/versions/1.0.0/deprecate", json={}, headers=admin)
    retire = await client.post("/api/v1/apis/projects/versions/1.0.0/retire", headers=admin)
    assert retire.status_code == 200
    await client.post("/api/v1/apis/projects/versions/1.1.0/retire", headers=admin)
    await settled(app)
    gone = await client.get("/gw/projects/v1/projects", headers=billing)
    assert gone.status_code == 410
    assert gone.json()["type"] == "/problems/version-retired"
    assert "use 2.0.0" in gone.json()["detail"]
    assert (await client.get("/gw/projects/projects", headers=billing)).status_code == 200  # latest: 2.0.0


async def test_tokens_and_scopes(client, billing, reporting):
    anonymous = await client.get("/gw/projects/v1/projects")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="charter", scope="projects:read"'
    forged = await client.get("/gw/projects/v1/projects", headers=bearer("not.a.jwt"))
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["www-authenticate"]
    # reporting-app may read projects but not create them (the operation needs projects:write).
    assert (await client.get("/gw/projects/v1/projects", headers=reporting)).status_code == 200
    refused = await client.post(
        "/gw/projects/v1/projects", json={"name": "x", "client": "y"}, headers=reporting
    )
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="charter", error="insufficient_scope", scope="projects:write"'
    )
    created = await client.post(
        "/gw/projects/v1/projects", json={"name": "x", "client": "y"}, headers=billing
    )
    assert created.status_code == 201, created.text


async def test_request_validation_lists_every_violation(client, billing):
    bad = await client.post(
        "/gw/time-entries/v1/time-entries",
        json={"consultant": "ana", "projectId": "p-1", "date": "2026-11-24", "hours": 30, "note": 5},
        headers=billing,
    )
    assert bad.status_code == 400
    problem = bad.json()
    assert problem["type"] == "/problems/invalid-request"
    assert {e["pointer"] for e in problem["errors"]} == {"/body/hours", "/body/note"}
    missing = await client.get("/gw/time-entries/v1/time-entries", headers=billing)
    assert missing.status_code in (400, 403)
    wrong_type = await client.post(
        "/gw/time-entries/v1/time-entries",
        content=b"hours=3",
        headers={**billing, "Content-Type": "text/plain"},
    )
    assert wrong_type.status_code == 415
    booked = await client.post(
        "/gw/time-entries/v1/time-entries",
        json={"consultant": "ana", "projectId": "p-1", "date": "2026-11-24", "hours": 7.5},
        headers=billing,
    )
    assert booked.status_code == 201, booked.text
    entry = booked.json()["id"]
    approved = await client.post(f"/gw/time-entries/v1/time-entries/{entry}/approval", headers=billing)
    assert (approved.status_code, approved.json()["state"]) == (200, "approved")


async def test_query_parameters_are_checked_against_their_schema(client, billing, admin):
    # The demo's listProjects takes `status`, an enum.
    response = await client.get("/gw/projects/v1/projects", params={"status": "sleeping"}, headers=billing)
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/query/status"
    ok = await client.get("/gw/projects/v1/projects", params={"status": "active"}, headers=billing)
    assert ok.status_code == 200


async def test_mock_adapter_answers_from_examples_or_schema(client, billing):
    response = await client.get("/gw/invoices/v1/invoices", params={"client": "acme"}, headers=billing)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


async def test_api_without_adapter_is_503_until_one_is_bound(app, client, admin, billing):
    doc = projects("1.0.0")
    doc["security"] = []
    published = await client.post(
        "/api/v1/apis/bare/versions",
        content=json.dumps(doc),
        params={"owner": "delivery"},
        headers={**admin, "Content-Type": "application/json"},
    )
    assert published.status_code == 201, published.text
    await settled(app)
    unbound = await client.get("/gw/bare/v1/projects")
    assert (unbound.status_code, unbound.json()["type"]) == (503, "/problems/no-adapter")

    invalid = await client.put("/api/v1/apis/bare/adapter", json={"kind": "http"}, headers=admin)
    assert invalid.status_code == 400  # an http adapter needs a url
    bound = await client.put("/api/v1/apis/bare/adapter", json={"kind": "mock"}, headers=admin)
    assert bound.status_code == 200, bound.text
    assert bound.json()["adapter"]["kind"] == "mock"
    await settled(app)
    assert (await client.get("/gw/bare/v1/projects")).status_code == 200


async def test_metrics_and_access_log(app, client, billing):
    access_log = app.state.gateway.access_log
    access_log.flush()
    access_log.stream = io.BytesIO()
    await client.get("/gw/projects/v1/projects", headers=billing)
    access_log.flush()
    (text,) = access_log.stream.getvalue().decode().splitlines()
    line = json.loads(text)
    assert line | {"latency_ms": 0, "trace": ""} == {
        "api": "projects",
        "version": "1.1.0",
        "operation": "listProjects",
        "consumer": "billing-app",
        "method": "GET",
        "path": "/gw/projects/v1/projects",
        "status": 200,
        "latency_ms": 0,
        "throttled": False,
        "trace": "",
    }
    metrics = (await client.get("/metrics")).text
    counted = (
        'charter_gateway_requests_total{api="projects",operation="listProjects",status="200",version="1.1.0"}'
    )
    assert f"{counted} 1.0" in metrics
    assert "charter_gateway_request_duration_seconds_bucket" in metrics


async def test_incoming_traceparent_keeps_its_trace_id(client, billing):
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    response = await client.get("/gw/projects/v1/projects", headers={**billing, "traceparent": incoming})
    trace = response.headers["traceparent"].split("-")
    assert trace[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace[2] != "00f067aa0ba902b7"


async def test_a_new_consumer_token_works_without_restart(client):
    token = await fetch_token(client, "reporting-app", "reporting-secret")
    assert (await client.get("/gw/projects/v1/projects", headers=bearer(token))).status_code == 200


async def test_a_retired_version_names_the_nearest_live_one(app, client, billing, admin):
    later = yaml.safe_load((DEMO_DIR / "projects-1.1.0.yaml").read_text())
    for number in ("2.0.0", "3.0.0"):
        later["info"]["version"] = number
        published = await client.post(
            "/api/v1/apis/projects/versions",
            content=json.dumps(later),
            headers={**admin, "Content-Type": "application/json"},
        )
        assert published.status_code == 201, published.text
    # 1.1.0 pointed at 2.0.0, which was in its turn replaced by 3.0.0 and retired; 1.0.0 names nothing.
    lifecycle = [
        ("1.1.0", "deprecate", {"replacement": "2.0.0"}),
        ("2.0.0", "deprecate", {"replacement": "3.0.0"}),
        ("1.0.0", "deprecate", {}),
        ("1.0.0", "retire", {}),
        ("1.1.0", "retire", {}),
        ("2.0.0", "retire", {}),
    ]
    for number, action, payload in lifecycle:
        done = await client.post(
            f"/api/v1/apis/projects/versions/{number}/{action}", json=payload, headers=admin
        )
        assert done.status_code == 200, done.text
    await settled(app)

    gone = await client.get("/gw/projects/v1/projects", headers=billing)
    assert gone.status_code == 410
    assert gone.json()["detail"] == "projects 1.1.0 is retired; use 3.0.0"
    assert gone.headers["link"] == '<http://testserver.local/gw/projects/v3>; rel="successor-version"'
    unnamed = await client.get("/gw/projects/projects", headers={**billing, "API-Version": "1.0.0"})
    assert unnamed.status_code == 410
    assert unnamed.json()["detail"] == "projects 1.0.0 is retired; use 3.0.0"


async def test_the_demo_writes_answer_a_repeated_idempotency_key_with_the_first_answer(client, billing):
    entry = {"consultant": "e-201", "projectId": "p-1", "date": "2026-11-24", "hours": 7.5}
    headers = {**billing, "Idempotency-Key": "book-monday"}
    first = await client.post("/gw/time-entries/v1/time-entries", json=entry, headers=headers)
    again = await client.post("/gw/time-entries/v1/time-entries", json=entry, headers=headers)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert first.json()["id"] == again.json()["id"]
    changed = await client.post(
        "/gw/time-entries/v1/time-entries", json={**entry, "hours": 8}, headers=headers
    )
    assert changed.status_code == 422 and changed.json()["type"] == "/problems/idempotency-key-reused"

    project = {"name": "ERP rollout phase 2", "client": "acme"}
    created = [
        await client.post(
            "/gw/projects/v1/projects", json=project, headers={**billing, "Idempotency-Key": "p2"}
        )
        for _ in range(2)
    ]
    assert [c.status_code for c in created] == [201, 201]
    assert created[0].json()["id"] == created[1].json()["id"]


async def test_the_mock_adapter_answers_the_contracts_example(client, billing):
    invoice = await client.get("/gw/invoices/v1/invoices/INV-1003", headers=billing)
    assert invoice.status_code == 200, invoice.text
    assert invoice.json()["total"] == {"amount": "2925.00", "currency": "EUR"}
