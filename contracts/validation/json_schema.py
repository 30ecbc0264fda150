"""Is a canonical model a valid JSON Schema of its dialect? Checked against the meta-schema, offline.

jsonschema-rs carries the 2020-12 meta-schema and its vocabularies; draft-07's single meta-schema
comes from the `jsonschema` package, compiled here. Any other reference the meta-schema could lead
to is refused by the retriever: validating never goes on the network.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import jsonschema_rs

from contracts.errors import Issue
from contracts.loading import Document
from contracts.validation.openapi import rs_issues

_META_SCHEMAS: dict[str, Any] = {
    "2020-12": {"$ref": "https://json-schema.org/draft/2020-12/schema"},
    "draft-07": jsonschema.Draft7Validator.META_SCHEMA,
}


def json_schema_issues(doc: Document, dialect: str, *, limit: int) -> list[Issue]:
    issues: list[Issue] = []
    for error in _meta_validator(dialect).iter_errors(doc):
        issues.extend(rs_issues(error))
        if len(issues) >= limit:
            break
    return issues


def _refuse(uri: str) -> Any:
    raise ValueError(f"{uri} is not fetched: canonical models are validated offline")


@functools.cache
def _meta_validator(dialect: str) -> Any:
    return jsonschema_rs.validator_for(_META_SCHEMAS[dialect], retriever=_refuse)
