"""Validation errors point at the place: absolute pointers, line and column, all at once, stable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
import yaml

from contracts.errors import ContractInvalid
from contracts.kinds import detect_kind
from contracts.submission import analyze_bundle, analyze_document
from contracts.validation import validate_document
from tests.samples import projects

ROOT = Path(__file__).resolve().parents[2]


def issues(doc: dict) -> list[tuple[str, str]]:
    return [(i.pointer, i.message) for i in validate_document(doc, detect_kind(doc))]


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_a_duplicate_required_name_is_reported_where_it_is_written(version):
    doc = projects() | {"openapi": version}
    doc["components"]["schemas"]["Project"]["required"] = ["name", "name"]
    assert {p for p, _ in issues(doc)} == {"/components/schemas/Project/required"}


@pytest.mark.parametrize("version", ["3.0.3", "3.1.0"])
def test_a_bad_default_is_reported_where_it_is_written(version):
    doc = projects() | {"openapi": version}
    doc["components"]["schemas"]["Project"]["properties"]["client"]["default"] = 5
    (found,) = issues(doc)
    assert found == ("/components/schemas/Project/properties/client/default", "5 is not of type 'string'")


def test_seven_wrong_exclusive_minimums_are_seven_errors():
    doc = projects() | {"openapi": "3.1.0"}
    for index in range(7):
        doc["components"]["schemas"][f"Count{index}"] = {"type": "integer", "exclusiveMinimum": True}
    assert [p for p, _ in issues(doc)] == [f"/components/schemas/Count{i}/exclusiveMinimum" for i in range(7)]


def test_structural_and_semantic_errors_come_in_one_answer():
    doc = projects() | {"openapi": "3.1.0"}
    del doc["info"]["title"]
    doc["paths"]["/projects"]["post"]["operationId"] = "listProjects"
    project = doc["components"]["schemas"]["Project"]
    project["required"] = ["name", "name"]
    project["properties"]["client"]["default"] = 5
    assert [p for p, _ in issues(doc)] == [
        "/info",
        "/paths/~1projects/post/operationId",
        "/components/schemas/Project/required",
        "/components/schemas/Project/properties/client/default",
    ]


_SEEDED = """
import json, sys
from contracts.kinds import detect_kind
from contracts.validation import validate_document
doc = json.load(sys.stdin)
print(json.dumps([[i.pointer, i.message] for i in validate_document(doc, detect_kind(doc))]))
"""


def test_the_answer_does_not_depend_on_the_hash_seed():
    doc = projects()
    schemas = doc["components"]["schemas"]
    for index in range(6):
        schemas[f"Part{index}"] = {
            "allOf": [{"$ref": "#/components/schemas/Project"}],
            "required": ["alpha", "beta", "gamma", "delta", "name"],
            "properties": {"size": {"type": "integer", "minimum": 0, "exclusiveMinimum": 1}},
        }
    answers = set()
    for seed in ("0", "1", "2", "3", "4", "5"):
        result = subprocess.run(
            [sys.executable, "-c", _SEEDED],
            input=json.dumps(doc),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        answers.add(result.stdout)
    assert len(answers) == 1
    (answer,) = answers
    found = json.loads(answer)
    assert len(found) == 12  # each of the six schemas: its required names and its exclusiveMinimum
    assert [
        "/components/schemas/Part0/required",
        "Required list has not defined properties: ['alpha', 'beta', 'gamma', 'delta']",
    ] in found


def _invalid_projects() -> dict:
    doc = projects()
    doc["paths"]["/projects"]["post"]["operationId"] = "listProjects"
    doc["components"]["schemas"]["Project"]["properties"]["client"]["default"] = 5
    return doc


def _refused(data: bytes, media_type: str) -> list:
    with pytest.raises(ContractInvalid) as refused:
        analyze_document(data, media_type=media_type)
    return refused.value.issues


def _line_of(text: str, needle: str, after: int = 0) -> int:
    lines = text.splitlines()
    return next(n for n, line in enumerate(lines, 1) if n > after and needle in line)


def test_json_errors_carry_line_and_column():
    text = json.dumps(_invalid_projects(), indent=2)
    found = {i.pointer: (i.line, i.column) for i in _refused(text.encode(), "application/json")}
    post = _line_of(text, '"post"')
    assert found["/paths/~1projects/post/operationId"] == (_line_of(text, '"operationId"', post), 9)
    default = _line_of(text, '"default": 5')
    assert found["/components/schemas/Project/properties/client/default"] == (default, 13)


def test_yaml_errors_carry_line_and_column():
    text = yaml.safe_dump(_invalid_projects(), sort_keys=False)
    found = {i.pointer: (i.line, i.column) for i in _refused(text.encode(), "application/yaml")}
    post = _line_of(text, "  post:")
    assert found["/paths/~1projects/post/operationId"] == (_line_of(text, "operationId:", post), 7)
    assert found["/components/schemas/Project/properties/client/default"] == (
        _line_of(text, "default: 5"),
        11,
    )


def test_a_missing_member_is_placed_at_its_parent():
    doc = projects()
    del doc["info"]["title"]
    text = json.dumps(doc, indent=2)
    (issue,) = _refused(text.encode(), "application/json")
    assert (issue.pointer, issue.line, issue.column) == ("/info", _line_of(text, '"info"'), 3)


def test_a_bundle_error_names_its_file_and_the_place_in_it():
    root = projects()
    body = root["paths"]["/projects"]["post"]["requestBody"]["content"]["application/json"]
    body["schema"] = {"$ref": "schemas/project.yaml#/Project"}
    del root["components"]["schemas"]
    schema = {"Project": {"type": "object", "properties": {"name": {"type": "string", "default": 5}}}}
    files = {
        "openapi.yaml": yaml.safe_dump(root, sort_keys=False).encode(),
        "schemas/project.yaml": yaml.safe_dump(schema, sort_keys=False).encode(),
    }
    root["paths"]["/projects"]["get"]["responses"]["200"]["content"] = {
        "application/json": {"schema": {"$ref": "schemas/project.yaml#/Project"}}
    }
    files["openapi.yaml"] = yaml.safe_dump(root, sort_keys=False).encode()
    with pytest.raises(ContractInvalid) as refused:
        analyze_bundle(files=files)
    (issue,) = refused.value.issues
    assert msgspec.structs.asdict(issue) == {
        "pointer": "/Project/properties/name/default",
        "message": "5 is not of type 'string'",
        "file": "schemas/project.yaml",
        "line": 6,
        "column": 7,
    }


def test_a_malformed_schema_is_reported_not_a_crash():
    doc = projects() | {"openapi": "3.1.0"}
    doc["components"]["schemas"]["Project"] |= {"allOf": [{"type": "object"}], "required": [["name"], "name"]}
    assert {p for p, _ in issues(doc)} == {"/components/schemas/Project/required/0"}
