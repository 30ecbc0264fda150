"""Is a canonical model a valid JSON Schema of its dialect? Checked against the meta-schema, offline.

jsonschema-rs carries the 2020-12 meta-schema and its vocabularies; draft-07's single meta-schema is
read from the file jsonschema-specifications ships (contracts.validation.bundled: no import of the
`jsonschema` package, which `charter diff` would pay for at start-up), compiled here. Any other
reference the meta-schema could lead to is refused by the retriever: validating never goes on the
network.
"""

from __future__ import annotations

import functools
from typing import Any

import jsonschema_rs

from contracts.errors import Issue
from contracts.loading import Document
from contracts.validation.bundled import metaschema
from contracts.validation.openapi import rs_issues

DRAFT_07 = "http://json-schema.org/draft-07/schema"


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
    schema = (
        metaschema(DRAFT_07)
        if dialect == "draft-07"
        else {"$ref": "https://json-schema.org/draft/2020-12/schema"}
    )
    return jsonschema_rs.validator_for(schema, retriever=_refuse)
