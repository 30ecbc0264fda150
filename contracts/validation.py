"""Is a document a valid contract of its kind? Every problem, each with a JSON pointer; never online."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema.exceptions import ValidationError
from openapi_spec_validator.validation.validators import (
    OpenAPIV2SpecValidator,
    OpenAPIV30SpecValidator,
    OpenAPIV31SpecValidator,
    SpecValidator,
)
from referencing.exceptions import Unresolvable

from contracts.errors import Issue
from contracts.kinds import DocumentKind, Family
from contracts.loading import Document
from contracts.references import escape, pointer, reference_issues

_OPENAPI: dict[str, type[SpecValidator]] = {
    "2.0": OpenAPIV2SpecValidator,
    "3.0": OpenAPIV30SpecValidator,
    "3.1": OpenAPIV31SpecValidator,
}
_ASYNCAPI_SCHEMAS = {"2.6": "2.6.0", "3.0": "3.0.0", "3.1": "3.1.0"}
# A cap on reported issues: a wholly wrong document would otherwise list thousands.
MAX_ISSUES = 200


def validate_document(doc: Document, kind: DocumentKind) -> list[Issue]:
    """Every problem found in `doc` against its specification; an empty list means valid."""
    ref_issues = reference_issues(doc)
    if kind.family is Family.OPENAPI:
        issues = _validate_openapi(doc, kind, resolve_refs=not ref_issues)
    else:
        issues = _validate_asyncapi(doc, kind)
    return _unique(ref_issues + issues)[:MAX_ISSUES]


def _validate_openapi(doc: Document, kind: DocumentKind, *, resolve_refs: bool) -> list[Issue]:
    validator_class = _OPENAPI[kind.line]
    # The structural pass (the OpenAPI JSON Schema, through jsonschema-rs) reports everything that
    # is malformed. openapi-spec-validator's semantic pass assumes a well-formed document (it fails
    # with KeyError otherwise) and follows references (it would fetch remote ones), so it runs
    # only on documents that passed both the structure and the reference checks.
    structural = [_openapi_issue(e) for e in validator_class.schema_validator.iter_errors(doc)]
    if structural or not resolve_refs:
        return structural
    issues = []
    try:
        for error in validator_class(doc).iter_errors():
            issues.append(_openapi_issue(error))
            if len(issues) >= MAX_ISSUES:
                break
    except Unresolvable as exc:
        issues.append(Issue(pointer="", message=f"unresolvable reference: {exc}"))
    except RecursionError:
        issues.append(Issue(pointer="", message="references form a cycle the validator cannot follow"))
    return issues


def _openapi_issue(error: ValidationError) -> Issue:
    error = _most_precise(error)
    path = list(getattr(error, "absolute_path", ()) or ())
    if path:
        return Issue(pointer=pointer(path), message=_one_line(error.message))
    return Issue(pointer=_semantic_pointer(error.message), message=_one_line(error.message))


def _most_precise(error: ValidationError) -> ValidationError:
    """Under oneOf/anyOf the parent error says little; descend into the branch that got furthest."""
    while error.context:
        deepest = max(error.context, key=lambda e: (len(e.absolute_path), -len(e.context or ())))
        if len(deepest.absolute_path) <= len(error.absolute_path) and deepest.validator == "required":
            break
        error = deepest
    return error


# openapi-spec-validator reports its own (non-schema) findings at `$`; their messages name the place.
_OPERATION_ID = re.compile(r"Operation ID '(?P<id>[^']*)' for '(?P<method>\w+)' in '(?P<path>[^']*)'")
_PATH_PARAMETER = re.compile(
    r"Path parameter '(?P<name>[^']*)' for '(?P<method>\w+)' operation in '(?P<path>[^']*)'"
)


def _semantic_pointer(message: str) -> str:
    match = _OPERATION_ID.search(message)
    if match:
        return f"/paths/{escape(match['path'])}/{match['method']}/operationId"
    match = _PATH_PARAMETER.search(message)
    if match:
        return f"/paths/{escape(match['path'])}/{match['method']}"
    return ""


def _validate_asyncapi(doc: Document, kind: DocumentKind) -> list[Issue]:
    validator = _asyncapi_validator(_ASYNCAPI_SCHEMAS[kind.line])
    issues: list[Issue] = []
    for error in validator.iter_errors(doc):
        issues.extend(_rs_issues(error))
        if len(issues) >= MAX_ISSUES:
            break
    return issues


@functools.cache
def _asyncapi_validator(version: str) -> Any:
    # The official schemas of @asyncapi/specs, vendored: see contracts/schemas/asyncapi/NOTICE.
    text = resources.files("contracts.schemas.asyncapi").joinpath(f"{version}.json").read_text()
    return jsonschema_rs.validator_for(json.loads(text))


def _rs_issues(error: Any) -> list[Issue]:
    """jsonschema-rs puts oneOf failures on the parent; report the errors of the best branch instead."""
    context = getattr(error.kind, "context", None)
    if not context:
        return [Issue(pointer=pointer(error.instance_path), message=_one_line(error.message))]
    branches = [branch for branch in context if branch]
    best = max(branches, key=lambda branch: (max(len(e.instance_path) for e in branch), -len(branch)))
    if max(len(e.instance_path) for e in best) <= len(error.instance_path):
        return [Issue(pointer=pointer(error.instance_path), message=_one_line(error.message))]
    issues = []
    for sub in best:
        issues.extend(_rs_issues(sub))
    return issues


def _one_line(message: str) -> str:
    # The jsonschema-rs backend appends the failing schema and instance; the first sentence says it.
    text = " ".join(message.split()).split(" Failed validating ", 1)[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _unique(issues: Iterable[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))
