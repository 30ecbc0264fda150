"""`$ref`s are followed or copied once, never expanded: work grows with the document, not with its paths."""

from __future__ import annotations

import json

import pytest

from contracts.bundle import MAX_RESOLVED_DEPTH, bundle_from_files, bundle_from_zip, resolve_bundle
from contracts.diff import diff_documents
from contracts.diff.schema import MAX_SCHEMA_DEPTH
from contracts.errors import DocumentTooComplex
from contracts.index import build_index
from contracts.kinds import detect_kind
from contracts.loading import LoadLimits
from contracts.references import deref
from contracts.validation import validate_document
from tests.contracts.ref_bombs import (
    bomb_document,
    bomb_files,
    bomb_files_one_per_schema,
    ref_chain_document,
    tree_size,
    zipped,
)

DEPTH = 18
BUNDLES = {"one-schema-file": bomb_files, "a-file-per-schema": bomb_files_one_per_schema}
# Comparing S0..S18 of a request and a response, each pair once, takes about 40 comparisons;
# expanded, it takes 2^19 per body.
SMALL_BUDGET = LoadLimits(max_schema_comparisons=100)


def resolved_bomb(shape: str, leaf: str = "string") -> dict:
    return resolve_bundle(bundle_from_zip(zipped(BUNDLES[shape](DEPTH, leaf=leaf))))


@pytest.mark.parametrize("shape", list(BUNDLES))
def test_a_resolved_bundle_grows_with_its_files_not_with_the_paths_through_them(shape):
    files = BUNDLES[shape](DEPTH)
    written = sum(tree_size(json.loads(content)) for content in files.values())

    resolved = resolved_bomb(shape)

    assert tree_size(resolved) <= written + 10
    assert validate_document(resolved, detect_kind(resolved)) == []
    request = resolved["paths"]["/trees"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    # The first reference to a schema is where its copy lands; the others refer to that copy.
    assert request["properties"]["a"]["type"] == "object"
    assert deref(resolved, request["properties"]["b"]) is request["properties"]["a"]


@pytest.mark.parametrize("shape", list(BUNDLES))
def test_the_diff_of_a_resolved_bundle_compares_each_pair_of_schemas_once(shape):
    report = diff_documents(resolved_bomb(shape), resolved_bomb(shape, "integer"), limits=SMALL_BUDGET)

    assert sorted(c.id for c in report.changes) == [
        "request-property-type-changed",
        "response-property-type-changed",
    ]


def test_the_diff_of_a_single_document_bomb_compares_each_pair_of_schemas_once():
    base, revision = bomb_document(DEPTH), bomb_document(DEPTH, leaf="integer")

    report = diff_documents(base, revision, limits=SMALL_BUDGET)

    assert len(report.changes) == 2
    assert validate_document(base, detect_kind(base)) == []
    assert [op.operation_id for op in build_index(base, detect_kind(base)).operations] == ["plantTree"]


def test_a_diff_past_its_budget_of_comparisons_is_refused():
    with pytest.raises(DocumentTooComplex, match="more than 10 schema comparisons"):
        diff_documents(
            bomb_document(DEPTH),
            bomb_document(DEPTH, leaf="integer"),
            limits=LoadLimits(max_schema_comparisons=10),
        )


def test_schemas_nested_through_references_past_the_bound_are_refused():
    deepest = ref_chain_document(MAX_SCHEMA_DEPTH - 1)
    assert diff_documents(deepest, deepest).changes == []
    with pytest.raises(DocumentTooComplex, match=f"deeper than {MAX_SCHEMA_DEPTH} levels"):
        diff_documents(ref_chain_document(300), ref_chain_document(300, leaf="integer"))


def test_a_bundle_that_resolves_past_its_node_budget_is_refused():
    bundle = bundle_from_files(bomb_files(DEPTH))
    assert resolve_bundle(bundle)
    with pytest.raises(DocumentTooComplex, match="too many nodes"):
        resolve_bundle(bundle, limits=LoadLimits(min_node_budget=50, max_nodes_per_byte=0.01))


def test_a_chain_of_references_across_files_past_the_depth_bound_is_refused():
    length = MAX_RESOLVED_DEPTH
    schemas = {
        f"S{i}": {"type": "object", "properties": {"next": {"$ref": f"#/S{i + 1}"}}} for i in range(length)
    }
    schemas[f"S{length}"] = {"type": "string"}
    files = {
        "api.json": json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1"},
                "paths": {},
                "components": {"schemas": {"Chain": {"$ref": "models.json#/S0"}}},
            }
        ).encode(),
        "models.json": json.dumps(schemas).encode(),
    }
    with pytest.raises(DocumentTooComplex, match=f"deeper than {MAX_RESOLVED_DEPTH} levels"):
        resolve_bundle(bundle_from_files(files))


def test_a_shared_path_item_file_is_copied_once_and_referenced_by_its_encoded_pointer():
    item = {
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
        "get": {"responses": {"200": {"description": "ok"}}},
    }
    files = {
        "api.json": json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1"},
                "paths": {"/things/{id}": {"$ref": "item.json"}, "/stuff/{id}": {"$ref": "item.json"}},
            }
        ).encode(),
        "item.json": json.dumps(item).encode(),
    }

    resolved = resolve_bundle(bundle_from_files(files))

    assert resolved["paths"]["/things/{id}"] == item
    assert resolved["paths"]["/stuff/{id}"] == {"$ref": "#/paths/~1things~1%7Bid%7D"}
    assert validate_document(resolved, detect_kind(resolved)) == []
    index = build_index(resolved, detect_kind(resolved))
    assert sorted(op.path for op in index.operations) == ["/stuff/{id}", "/things/{id}"]


def test_a_foreign_file_may_refer_back_to_the_root():
    schema = {"$ref": "../api.json#/components/schemas/Id"}
    ok = {"description": "ok", "content": {"application/json": {"schema": schema}}}
    files = {
        "api.json": json.dumps(
            {
                "openapi": "3.0.3",
                "info": {"title": "t", "version": "1"},
                "paths": {"/a": {"$ref": "paths/a.json"}},
                "components": {"schemas": {"Id": {"type": "string"}}},
            }
        ).encode(),
        "paths/a.json": json.dumps({"get": {"responses": {"200": ok}}}).encode(),
    }

    resolved = resolve_bundle(bundle_from_files(files, root="api.json"))

    response = resolved["paths"]["/a"]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Id"}
    assert validate_document(resolved, detect_kind(resolved)) == []
