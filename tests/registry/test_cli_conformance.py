"""`charter conformance`: schemathesis against a live deployment of a contract stored in the registry."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import msgspec
import pytest
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath, RawBody

from tests.loopback import serving
from tests.registry.support import charter
from tests.samples import as_json

TARGET_TOKEN = "inventory-token"
TARGET_CLIENT = ("inventory-ci", "inventory-secret")
BROKEN_OPERATION = "GET /items/{itemId}"


def inventory_contract(version: str = "1.0.0") -> dict[str, Any]:
    """Three operations behind a bearer token: list, create and read items."""
    json_of = lambda ref: {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}  # noqa: E731
    unauthorized = {"description": "No or a wrong token", "content": json_of("Problem")}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Inventory",
            "version": version,
            "description": "Items in stock.",
            "contact": {"name": "Stock", "email": "stock@example.com"},
        },
        "security": [{"bearer": []}],
        "tags": [{"name": "items", "description": "Items"}],
        "paths": {
            "/items": {
                "get": {
                    "operationId": "listItems",
                    "summary": "List items",
                    "tags": ["items"],
                    "responses": {
                        "200": {
                            "description": "Items",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Item"},
                                    }
                                }
                            },
                        },
                        "401": unauthorized,
                    },
                },
                "post": {
                    "operationId": "createItem",
                    "summary": "Create an item",
                    "tags": ["items"],
                    "requestBody": {"required": True, "content": json_of("NewItem")},
                    "responses": {
                        "201": {"description": "Created", "content": json_of("Item")},
                        "401": unauthorized,
                    },
                },
            },
            "/items/{itemId}": {
                "get": {
                    "operationId": "getItem",
                    "summary": "Read one item",
                    "tags": ["items"],
                    "parameters": [
                        {"name": "itemId", "in": "path", "required": True, "schema": {"type": "integer"}}
                    ],
                    "responses": {
                        "200": {"description": "The item", "content": json_of("Item")},
                        "401": unauthorized,
                        "404": {"description": "No such item", "content": json_of("Problem")},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Item": {
                    "type": "object",
                    "required": ["id", "name"],
                    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
                },
                "NewItem": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 50}},
                },
                "Problem": {"type": "object", "properties": {"detail": {"type": "string"}}},
            },
        },
    }


def inventory_app(*, broken: bool = False) -> Litestar:
    """A deployment of the contract; `broken` answers getItem with a string id (a schema violation)."""

    def answer(body: Any, status: int = 200) -> Response:
        return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")

    def denied(request: Request) -> Response | None:
        if request.headers.get("authorization") == f"Bearer {TARGET_TOKEN}":
            return None
        return answer({"detail": "a bearer token is required"}, 401)

    @get("/items", sync_to_thread=False)
    def list_items(request: Request) -> Response:
        return denied(request) or answer([{"id": 1, "name": "anvil"}, {"id": 2, "name": "rope"}])

    @post("/items", sync_to_thread=False)
    def create_item(request: Request, body: RawBody) -> Response:
        new = msgspec.json.decode(body)
        return denied(request) or answer({"id": 3, "name": new["name"]}, 201)

    @get("/items/{item_id:int}", sync_to_thread=False)
    def get_item(request: Request, item_id: FromPath[int]) -> Response:
        if refused := denied(request):
            return refused
        if item_id <= 0:
            return answer({"detail": "no such item"}, 404)
        return answer({"id": str(item_id) if broken else item_id, "name": f"item {item_id}"})

    @post("/oauth/token", sync_to_thread=False)
    def token(request: Request) -> Response:
        expected = base64.b64encode(":".join(TARGET_CLIENT).encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return answer({"error": "invalid_client"}, 401)
        return answer({"access_token": TARGET_TOKEN, "token_type": "Bearer", "expires_in": 300})

    return Litestar([list_items, create_item, get_item, token], openapi_config=None)


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with serving(inventory_app()) as url:
        yield url


@pytest.fixture(scope="module")
def broken_target() -> Iterator[str]:
    with serving(inventory_app(broken=True)) as url:
        yield url


def publish_inventory(server: str, directory: Path, version: str = "1.0.0") -> str:
    """Publish the contract as `inventory` (owned by a new team) and return NAME@VERSION."""
    teams = httpx.post(f"{server}/api/v1/teams", json={"name": "stock"}, headers=admin_headers(server))
    assert teams.status_code in (201, 409), teams.text
    file = directory / "inventory.json"
    file.write_bytes(as_json(inventory_contract(version)))
    published = charter("publish", str(file), "--api", "inventory", "--owner", "stock", url=server)
    assert published.returncode == 0, published.stderr
    return f"inventory@{version}"


@pytest.fixture(scope="module")
def contract(server: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return publish_inventory(server, tmp_path_factory.mktemp("contract"))


def admin_headers(server: str) -> dict[str, str]:
    token = httpx.post(
        f"{server}/oauth/token", data={"grant_type": "client_credentials"}, auth=("admin", "admin-secret")
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def metadata(server: str, ref: str) -> dict[str, Any]:
    name, version = ref.split("@")
    url = f"{server}/api/v1/apis/{name}/versions/{version}/metadata"
    response = httpx.get(url, headers=admin_headers(server))
    response.raise_for_status()
    return response.json()


def conformance(server: str, *args: str):
    return charter("conformance", *args, "--max-examples", "10", url=server)


def test_a_conforming_deployment_passes_and_is_recorded(server, contract, target, tmp_path):
    report = tmp_path / "conformance.xml"
    client_id, secret = TARGET_CLIENT
    result = conformance(
        server,
        contract,
        "--base-url",
        target,
        "--target-client-id",
        client_id,
        "--target-client-secret",
        secret,
        "--junit",
        str(report),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 operations" in result.stdout and "0 failures" in result.stdout
    suite = ElementTree.parse(report).getroot()
    assert (suite.tag, suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        "testsuite",
        "3",
        "0",
        "0",
    )
    names = sorted(case.get("name") for case in suite.iter("testcase"))
    assert names == ["GET /items", "GET /items/{itemId}", "POST /items"]
    recorded = metadata(server, contract)["conformance"]
    assert recorded["passed"] is True
    assert (recorded["target"], recorded["operations"], recorded["failures"]) == (target, 3, 0)
    assert recorded["test_cases"] >= 3 and recorded["checked_by"] == "admin"


def test_a_broken_operation_fails_and_is_named(server, contract, broken_target, tmp_path):
    report = tmp_path / "conformance.xml"
    result = conformance(
        server, contract, "--base-url", broken_target, "--target-token", TARGET_TOKEN, "--junit", str(report)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"FAIL {BROKEN_OPERATION}" in result.stdout
    assert "response_schema_conformance" in result.stdout
    assert "PASS GET /items " in result.stdout
    suite = ElementTree.parse(report).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    failing = {
        c.get("name"): c.find("failure") for c in suite.iter("testcase") if c.find("failure") is not None
    }
    assert list(failing) == [BROKEN_OPERATION]
    assert failing[BROKEN_OPERATION].get("type") == "response_schema_conformance"
    recorded = metadata(server, contract)["conformance"]
    assert recorded["passed"] is False
    assert recorded["failed_operations"] == [BROKEN_OPERATION]


def test_without_the_target_token_every_answer_is_still_declared(server, contract, target):
    # The contract declares 401: an unauthenticated run conforms too (nothing is recorded here).
    result = conformance(server, contract, "--base-url", target, "--no-record")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["inventory@9.9.9", "--base-url", "{target}"],
        ["no-such-api@1.0.0", "--base-url", "{target}"],
        ["inventory", "--base-url", "{target}"],
        ["{contract}", "--base-url", "http://127.0.0.1:9"],
        ["{contract}", "--base-url", "{target}", "--target-client-id", "x", "--target-client-secret", "y"],
    ],
    ids=["unknown-version", "unknown-api", "not-a-ref", "unreachable-target", "bad-target-client"],
)
def test_bad_input_exits_two(server, contract, target, args):
    result = conformance(server, *(arg.format(target=target, contract=contract) for arg in args))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("charter: error:") and result.stderr.count("\n") == 1


def test_the_run_waits_out_the_rate_limit_it_is_told():
    from registry.conformance import MAX_WAIT_SECONDS, Pacer, install_hint

    pacer = Pacer()
    assert pacer.heed(200, {"ratelimit": ['"default";r=5;t=30']}) is False
    assert pacer.not_before == 0.0  # quota left: no wait
    assert pacer.heed(200, {"ratelimit": ['"default";r=0;t=2']}) is False
    assert 1.5 < pacer.not_before - time.monotonic() <= 2
    assert pacer.heed(429, {"retry-after": ["3"]}) is True  # send it again, after the wait
    assert 2.5 < pacer.not_before - time.monotonic() <= 3
    pacer.heed(429, {"retry-after": ["86400"]})
    assert pacer.not_before - time.monotonic() <= MAX_WAIT_SECONDS
    pacer.heed(200, {"ratelimit": ["not a structured field;;"]})  # ignored, as the draft says

    hint = install_hint()
    assert hint.startswith(sys.executable) and "[conformance]" in hint and "charter[dev]" not in hint
