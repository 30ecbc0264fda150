"""Validation: every problem with its pointer, for each supported kind, offline."""

from __future__ import annotations

import socket

import pytest

from contracts.kinds import detect_kind
from contracts.loading import load_document
from contracts.validation import validate_document
from tests.conftest import corpus
from tests.samples import invoice_events, projects


def problems(doc: dict) -> list[tuple[str, str]]:
    return [(i.pointer, i.message) for i in validate_document(doc, detect_kind(doc))]


def pointers(doc: dict) -> set[str]:
    return {p for p, _ in problems(doc)}


SWAGGER = {
    "swagger": "2.0",
    "info": {"title": "Legacy ERP", "version": "1.0.0"},
    "paths": {"/orders": {"get": {"operationId": "listOrders", "responses": {"200": {"description": "ok"}}}}},
}


@pytest.mark.parametrize(
    "doc",
    [SWAGGER, projects(), {**projects(), "openapi": "3.1.0"}, invoice_events()],
    ids=["swagger-2.0", "openapi-3.0", "openapi-3.1", "asyncapi-3.0"],
)
def test_valid_documents_have_no_issues(doc):
    assert problems(doc) == []


def test_asyncapi_2_6_is_validated():
    doc = {
        "asyncapi": "2.6.0",
        "info": {"title": "Legacy events", "version": "1.0.0"},
        "channels": {"erp/order/created": {"subscribe": {"message": {"payload": {"type": "object"}}}}},
    }
    assert problems(doc) == []
    doc["channels"]["erp/order/created"]["subscribe"]["message"]["payload"] = 42
    assert pointers(doc)


# This example takes its Avro payload schema from a URL: validation never goes online, so the
# registry asks for it as a bundle (or a `syntax-only` API) instead of trusting what it cannot see.
REMOTE_SCHEMA_EXAMPLE = "adeo-kafka-request-reply-asyncapi.yml"


@pytest.mark.parametrize(
    "path",
    sorted(p for p in corpus("asyncapi").glob("*.yml") if p.name != REMOTE_SCHEMA_EXAMPLE),
    ids=lambda p: p.name,
)
def test_asyncapi_specification_examples_are_valid(path):
    doc = load_document(path.read_bytes())
    assert problems(doc) == []


def test_example_with_remote_payload_schema_is_reported_not_fetched():
    doc = load_document(corpus("asyncapi", REMOTE_SCHEMA_EXAMPLE).read_bytes())
    found = problems(doc)
    assert found
    assert all("external reference 'https://www.asyncapi.com/" in message for _, message in found)


def test_stripe_is_valid():
    doc = load_document(corpus("stripe", "spec3-v110.json").read_bytes())
    assert problems(doc) == []


def test_structural_errors_are_all_reported_with_pointers():
    doc = projects()
    doc["paths"]["/projects"]["get"]["responses"] = "none"
    del doc["info"]["title"]
    assert pointers(doc) == {"/info", "/paths/~1projects/get/responses"}


def test_duplicate_operation_id_points_at_the_operation():
    doc = projects()
    doc["paths"]["/projects"]["post"]["operationId"] = "listProjects"
    assert pointers(doc) == {"/paths/~1projects/post/operationId"}


def test_undeclared_path_parameter():
    doc = projects()
    doc["paths"]["/projects/{id}"] = doc["paths"].pop("/projects/{projectId}")
    # The template's `{id}` is not declared (the operation is the place), and the declared
    # `projectId` is not in the template (its declaration is the place).
    assert pointers(doc) == {"/paths/~1projects~1{id}/get", "/paths/~1projects~1{id}/get/parameters/0"}


def test_dangling_references_in_openapi_and_asyncapi():
    doc = projects()
    body = doc["paths"]["/projects"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"]["$ref"] = "#/components/schemas/Nope"
    assert pointers(doc) == {"/paths/~1projects/post/requestBody/content/application~1json/schema/$ref"}

    events = invoice_events()
    events["channels"]["invoiceIssued"]["messages"]["issued"]["$ref"] = "#/components/messages/Gone"
    assert pointers(events) == {"/channels/invoiceIssued/messages/issued/$ref"}


def test_remote_references_are_reported_and_never_fetched(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("validation tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    doc = projects()
    body = doc["paths"]["/projects"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"]["$ref"] = "https://schemas.example.com/project.json"
    (issue,) = problems(doc)
    assert issue[0] == "/paths/~1projects/post/requestBody/content/application~1json/schema/$ref"
    assert "external reference" in issue[1]


def test_asyncapi_errors_under_one_of_point_at_the_field():
    doc = invoice_events()
    doc["components"]["messages"]["InvoiceIssued"]["contentType"] = 3
    assert problems(doc) == [("/components/messages/InvoiceIssued/contentType", '3 is not of type "string"')]
