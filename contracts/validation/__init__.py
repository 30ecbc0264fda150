"""Is a document a valid contract of its kind? Every problem, each at its absolute JSON pointer; never online.

All problems come in one answer, in a stable order (the order the document is walked, whatever
`PYTHONHASHSEED`): broken references, structure and the specification's other rules together.
`contracts.positions.with_positions` adds the line and column when the document's text is at hand.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources
from typing import Any

import jsonschema_rs

from contracts.errors import Issue
from contracts.kinds import DocumentKind, Family
from contracts.loading import Document
from contracts.references import reference_issues
from contracts.validation.json_schema import json_schema_issues
from contracts.validation.openapi import rs_issues, semantic_issues, structure_issues

_OPENAPI_LINES = {"2.0": "2.0", "3.0": "3.0", "3.1": "3.1"}
_ASYNCAPI_SCHEMAS = {"2.6": "2.6.0", "3.0": "3.0.0", "3.1": "3.1.0"}
# A cap on reported issues: a wholly wrong document would otherwise list thousands.
MAX_ISSUES = 200


def validate_document(doc: Document, kind: DocumentKind) -> list[Issue]:
    """Every problem found in `doc` against its specification; an empty list means valid."""
    issues = reference_issues(doc)
    if kind.family is Family.OPENAPI:
        line = _OPENAPI_LINES[kind.line]
        issues.extend(structure_issues(doc, line))
        issues.extend(semantic_issues(doc, line))
    elif kind.family is Family.JSON_SCHEMA:
        issues.extend(json_schema_issues(doc, kind.line, limit=MAX_ISSUES))
    else:
        issues.extend(_asyncapi_issues(doc, kind))
    return _unique(issues)[:MAX_ISSUES]


def _asyncapi_issues(doc: Document, kind: DocumentKind) -> list[Issue]:
    validator = _asyncapi_validator(_ASYNCAPI_SCHEMAS[kind.line])
    issues: list[Issue] = []
    for error in validator.iter_errors(doc):
        issues.extend(rs_issues(error))
        if len(issues) >= MAX_ISSUES:
            break
    return issues


@functools.cache
def _asyncapi_validator(version: str) -> Any:
    # The official schemas of @asyncapi/specs, vendored: see contracts/schemas/asyncapi/NOTICE.
    text = resources.files("contracts.schemas.asyncapi").joinpath(f"{version}.json").read_text()
    return jsonschema_rs.validator_for(json.loads(text))


def _unique(issues: Iterable[Issue]) -> list[Issue]:
    # Only the same message at the same absolute place is one problem; nothing else is merged.
    return list(dict.fromkeys(issues))
