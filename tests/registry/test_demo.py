"""The embedded default starts with the demo contracts, and a restart changes nothing; the contracts
themselves are valid, lint clean, and complete enough to call from the docs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from litestar.testing import AsyncTestClient

from contracts.kinds import detect_kind
from contracts.lint import lint
from contracts.lint.canonical import LintContext
from contracts.loading import load_document
from contracts.references import deref
from contracts.validation import validate_document
from registry import bootstrap, catalog
from registry.app import create_app
from registry.db.engine import create_engine, migrate, session_factory
from registry.demo import FLOWS_CLIENT, FLOWS_CLIENT_SCOPES, demo_apis
from tests.registry.nats_support import postgres_url
from tests.registry.support import ADMIN, bearer, fetch_token, make_settings


async def test_demo_contracts_are_loaded_once(database_url):
    settings = make_settings(database_url, demo=True)
    async with AsyncTestClient(create_app(settings)) as client:
        headers = bearer(await fetch_token(client, *ADMIN))
        found = (await client.get("/api/v1/search", params={"limit": 100}, headers=headers)).json()
        audit_total = (await client.get("/api/v1/audit", headers=headers)).json()["total"]
        projects = (await client.get("/api/v1/apis/projects", headers=headers)).json()
        clients = (await client.get("/api/v1/apis/client/dependents", headers=headers)).json()

    expected = {api.name for api in demo_apis()}
    assert {hit["name"] for hit in found["items"]} == expected
    assert projects["latest_version"] == "1.1.0"
    assert projects["sla"]["tier"] == "gold"
    assert projects["layer"] == "system"
    # The system APIs' `x-canonical` declarations were checked on publish and indexed.
    assert [(d["api"], d["range"], d["pointers"]) for d in clients["items"]] == [
        ("crm", "^1", ["/components/schemas/Client"]),
        ("erp", "^1", ["/components/schemas/Client"]),
    ]

    async with AsyncTestClient(create_app(settings)) as client:
        headers = bearer(await fetch_token(client, *ADMIN))
        again = (await client.get("/api/v1/audit", headers=headers)).json()["total"]
        events = await client.get(
            "/api/v1/search", params={"q": "invoice paid", "kind": "asyncapi"}, headers=headers
        )
    assert again == audit_total
    assert [hit["name"] for hit in events.json()["items"]] == ["invoice-events"]


async def test_the_demo_registers_the_client_its_flows_call_the_systems_with(tmp_path):
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/demo.db", demo=True)
    for _ in range(2):  # a restart registers nothing twice
        async with AsyncTestClient(create_app(settings)) as client:
            headers = bearer(await fetch_token(client, *ADMIN))
            found = await client.get(f"/api/v1/clients/{FLOWS_CLIENT}", headers=headers)
            assert found.status_code == 200, found.text
            assert sorted(found.json()["scopes"]) == sorted(FLOWS_CLIENT_SCOPES)
            assert found.json()["team"] == "integration"


@pytest.fixture
def postgres_database_url(postgres_database: str) -> str:
    return postgres_url(postgres_database)


@pytest.mark.postgres
async def test_replicas_starting_together_on_a_fresh_database_load_the_demo_once(postgres_database_url):
    # Two engines: two replicas (or `serve --workers 2`), each loading the demo as it starts.
    engines = [create_engine(postgres_database_url) for _ in range(2)]
    try:
        await migrate(engines[0])
        settings = make_settings(postgres_database_url, demo=True)
        await asyncio.gather(*(bootstrap.load_demo(session_factory(engine), settings) for engine in engines))
        async with session_factory(engines[0])() as session:
            for api in demo_apis():
                loaded = await catalog.get_api(session, api.name)
                assert loaded.name == api.name
    finally:
        for engine in engines:
            await engine.dispose()


DEMO_FILES = [item.path for api in demo_apis() for item in api.versions]
OWNERS = {item.path: api.owner for api in demo_apis() for item in api.versions}
_METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.mark.parametrize("path", DEMO_FILES, ids=[p.name for p in DEMO_FILES])
def test_every_demo_contract_validates(path: Path) -> None:
    doc = load_document(path.read_bytes())
    assert validate_document(doc, detect_kind(doc)) == []


# A person calls every demo operation from the docs, the mock adapter answers from its examples,
# and flows retry their writes with an Idempotency-Key.
@pytest.mark.parametrize("path", DEMO_FILES, ids=[p.name for p in DEMO_FILES])
def test_every_demo_contract_carries_examples_scopes_problems_and_idempotency_keys(path: Path) -> None:
    assert contract_gaps(load_document(path.read_bytes())) == []


@pytest.mark.parametrize("path", DEMO_FILES, ids=[p.name for p in DEMO_FILES])
def test_every_demo_contract_lints_clean_and_names_its_owner(path: Path) -> None:
    doc = load_document(path.read_bytes())
    findings = [f"{f.rule}: {f.message}" for f in lint(doc)]
    if path.name == "events.asyncapi.yaml":
        # Charter's own flow subjects (`charter.flow.run.succeeded`) are an interface other tools
        # subscribe to; they keep their four parts rather than the three the taxonomy asks of new ones.
        findings = [
            f
            for f in findings
            if not f.startswith("channel-address-taxonomy: channel address `charter.flow.run.")
        ]
    assert findings == []
    # A canonical model has no `info`: its steward is named at its root.
    assert (doc.get("info") or doc)["x-owner"] == OWNERS[path]


LAYERS = {item.path: api.layer for api in demo_apis() for item in api.versions}
MODELS = {
    api.name: {item.version: load_document(item.path.read_bytes()) for item in api.versions}
    for api in demo_apis()
    if api.layer == "canonical"
}


@pytest.mark.parametrize("path", DEMO_FILES, ids=[p.name for p in DEMO_FILES])
def test_every_demo_contract_fits_the_canonical_models_it_declares(path: Path) -> None:
    """As publishing lints it: with its layer and the demo's canonical models in the context."""
    doc = load_document(path.read_bytes())
    found = [
        f"{f.rule} at {f.pointer}: {f.message}"
        for f in lint(doc, context=LintContext(LAYERS[path], MODELS))
        if f.rule.startswith("canonical-")
    ]
    assert found == []


def test_the_system_apis_declare_the_demo_canonical_models() -> None:
    declared = {
        (path.name, pointer, schema["x-canonical"])
        for path in DEMO_FILES
        if "openapi" in (doc := load_document(path.read_bytes()))
        for pointer, schema in (
            (f"/components/schemas/{name}", s) for name, s in doc["components"]["schemas"].items()
        )
        if "x-canonical" in schema
    }
    assert declared == {
        ("crm-1.0.0.yaml", "/components/schemas/Client", "client@^1"),
        ("erp-1.0.0.yaml", "/components/schemas/Client", "client@^1"),
        ("erp-1.0.0.yaml", "/components/schemas/Project", "project@^1"),
        ("psa-1.0.0.yaml", "/components/schemas/TimeEntry", "time-entry@^1"),
    }
    assert set(MODELS) == {"client", "project", "time-entry"}


@pytest.mark.parametrize("path", DEMO_FILES, ids=[p.name for p in DEMO_FILES])
def test_every_demo_example_fits_its_schema(path: Path) -> None:
    doc = load_document(path.read_bytes())
    misfits = [
        f"{where}: {error.message}"
        for where, schema, example in examples(doc)
        for error in jsonschema_rs.validator_for(inline(doc, schema)).iter_errors(example)
    ]
    assert misfits == []


def examples(doc: dict[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """(where, schema, example) of every message example, and every request and response example;
    a canonical model's `examples` against the model."""
    if "$schema" in doc:
        for index, example in enumerate(doc.get("examples", [])):
            yield f"example {index}", doc, example
        return
    if "asyncapi" in doc:
        for name, message in doc["components"]["messages"].items():
            for example in message.get("examples", []):
                yield f"message {name}", message["payload"], example["payload"]
        return
    for path, item in doc["paths"].items():
        for method, operation in ((m, o) for m, o in item.items() if m in _METHODS):
            media = [
                ("request", m)
                for m in (deref(doc, operation.get("requestBody")) or {}).get("content", {}).values()
            ]
            for status, response in operation["responses"].items():
                media += [(status, m) for m in (deref(doc, response).get("content") or {}).values()]
            for where, m in media:
                if "example" in m:
                    yield f"{method} {path} {where}", m["schema"], m["example"]


def inline(doc: dict[str, Any], node: Any) -> Any:
    """`node` with its local references replaced by their targets (the demo's schemas have no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return inline(doc, deref(doc, node))
        return {key: inline(doc, value) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(doc, value) for value in node]
    return node


def contract_gaps(doc: dict[str, Any]) -> list[str]:
    if "$schema" in doc:
        return [] if doc.get("examples") else ["the model has no examples"]
    if "asyncapi" in doc:
        return [
            f"message {n}: no examples"
            for n, m in doc["components"]["messages"].items()
            if not m.get("examples")
        ]
    gaps = []
    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        for method, operation in ((m, o) for m, o in item.items() if m in _METHODS):
            label = f"{method} {path}"
            security = operation.get("security", doc.get("security"))
            scopes = {
                s for requirement in security or [] for scheme in requirement for s in requirement[scheme]
            }
            declared = {
                s for scheme in schemes.values() for f in scheme["flows"].values() for s in f["scopes"]
            }
            if not scopes or not scopes <= declared:
                gaps.append(f"{label}: scopes {sorted(scopes)} not declared")
            parameters = [deref(doc, p) for p in item.get("parameters", []) + operation.get("parameters", [])]
            gaps += [f"{label}: {p['name']} has no example" for p in parameters if "example" not in p]
            if method != "get" and "Idempotency-Key" not in {p["name"] for p in parameters}:
                gaps.append(f"{label}: no Idempotency-Key")
            media = [
                ("request", m)
                for m in (deref(doc, operation.get("requestBody")) or {}).get("content", {}).items()
            ]
            for status, response in operation["responses"].items():
                media += [(status, m) for m in (deref(doc, response).get("content") or {}).items()]
            gaps += [
                f"{label}: {where} {kind} has no example" for where, (kind, m) in media if "example" not in m
            ]
            if not any(kind == "application/problem+json" for _, (kind, _) in media):
                gaps.append(f"{label}: documents no problem+json error")
    return gaps
