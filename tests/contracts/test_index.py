"""The operation index of each kind of contract."""

from __future__ import annotations

from contracts.index import MAX_SEARCH_TEXT, build_index, declared_scopes
from contracts.kinds import detect_kind
from contracts.loading import load_document
from tests.conftest import corpus
from tests.samples import invoice_events, projects


def index_of(doc):
    return build_index(doc, detect_kind(doc))


def test_openapi_operations_inherit_root_security_unless_overridden():
    doc = projects()
    doc["paths"]["/health"] = {"get": {"operationId": "health", "security": [], "responses": {}}}
    ops = {(o.method, o.path): o for o in index_of(doc).operations}

    assert ops["GET", "/projects"].security == ((("oauth", ("projects:read",)),),)
    assert ops["POST", "/projects"].security == ((("oauth", ("projects:write",)),),)
    assert ops["GET", "/health"].security == ()
    assert ops["POST", "/projects"].summary == "Create a project from a won opportunity"


def test_alternatives_and_combined_requirements():
    doc = projects()
    doc["paths"]["/projects"]["get"]["security"] = [{"oauth": ["a", "b"], "key": []}, {"mtls": []}]
    (op,) = [o for o in index_of(doc).operations if o.operation_id == "listProjects"]
    assert op.security == ((("oauth", ("a", "b")), ("key", ())), (("mtls", ()),))


def test_path_item_references_are_followed():
    doc = projects()
    doc["components"]["pathItems"] = {"Echo": {"post": {"operationId": "echo", "responses": {}}}}
    doc["paths"]["/echo"] = {"$ref": "#/components/pathItems/Echo"}
    assert "echo" in {o.operation_id for o in index_of(doc).operations}


def test_asyncapi_3_operations_resolve_channel_addresses():
    index = index_of(invoice_events())
    (op,) = index.operations
    assert (op.method, op.path, op.operation_id) == ("RECEIVE", "finance.invoice.issued", "onInvoiceIssued")
    assert "InvoiceIssued" in index.search_text()


def test_asyncapi_2_channels():
    doc = {
        "asyncapi": "2.6.0",
        "info": {"title": "t", "version": "1.0.0"},
        "channels": {
            "erp.order.created": {"subscribe": {"operationId": "onOrder", "message": {"name": "Order"}}}
        },
    }
    (op,) = index_of(doc).operations
    assert (op.method, op.path, op.operation_id) == ("SUBSCRIBE", "erp.order.created", "onOrder")


def test_stripe_index():
    index = index_of(load_document(corpus("stripe", "spec3-v110.json").read_bytes()))
    assert len(index.operations) > 300
    assert "PostCustomers" in index.search_text()


def test_declared_scopes_come_from_requirements_and_oauth_flows():
    doc = projects()
    doc["paths"]["/projects/{projectId}"]["get"]["security"] = [{"oauth": ["projects:audit"]}, {"key": []}]
    doc["components"]["securitySchemes"]["oauth"]["flows"]["clientCredentials"]["scopes"][
        "projects:admin"
    ] = "x"
    doc["paths"]["/elsewhere"] = {"$ref": "#/paths/~1projects"}
    assert declared_scopes(doc) == {"projects:read", "projects:write", "projects:audit", "projects:admin"}
    events = invoice_events()
    events["components"]["securitySchemes"] = {
        "oauth": {
            "type": "oauth2",
            "flows": {"clientCredentials": {"availableScopes": {"invoices:listen": "x"}}},
        }
    }
    assert declared_scopes(events) == {"invoices:listen"}
    assert (
        declared_scopes({"openapi": "3.1.0", "paths": {"/x": "not an object"}, "security": "nope"}) == set()
    )


def test_search_text_holds_the_description_schema_and_property_names_within_its_bound():
    doc = projects()
    doc["components"]["schemas"]["Milestone"] = {
        "type": "object",
        "properties": {"dueDate": {"type": "string"}, "owner": {"$ref": "#/components/schemas/Person"}},
    }
    doc["components"]["schemas"]["Person"] = {
        "allOf": [{"type": "object", "properties": {"email": {"type": "string"}}}]
    }
    text = build_index(doc, detect_kind(doc)).search_text()
    assert "Professional-services projects" in text
    assert {"Project", "Milestone", "Person", "dueDate", "email"} <= set(text.split())

    for n in range(5_000):
        doc["components"]["schemas"][f"Generated{n}"] = {"properties": {f"field{n}": {"type": "string"}}}
    bounded = build_index(doc, detect_kind(doc)).search_text()
    assert len(bounded) <= MAX_SEARCH_TEXT
    assert "createProject" in bounded and "Generated0" in bounded and "field4999" not in bounded
