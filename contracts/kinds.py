"""Which specification, and which version of it, a document claims to follow."""

from __future__ import annotations

import enum
import re

import msgspec

from contracts.errors import UnknownKind
from contracts.loading import Document


class Family(enum.StrEnum):
    OPENAPI = "openapi"
    ASYNCAPI = "asyncapi"
    # A canonical business object (client, project, time entry): a JSON Schema document on its own.
    JSON_SCHEMA = "json-schema"


class DocumentKind(msgspec.Struct, frozen=True):
    family: Family
    spec_version: str  # as written in the document, e.g. "3.0.3"

    @property
    def line(self) -> str:
        """The version line a validator is chosen by: "2.0", "3.0", "3.1", "2.6", "2020-12"."""
        if self.family is Family.JSON_SCHEMA:
            return self.spec_version
        return ".".join(self.spec_version.split(".")[:2])

    def __str__(self) -> str:
        return f"{self.family.value} {self.spec_version}"


SUPPORTED_LINES: dict[Family, frozenset[str]] = {
    Family.OPENAPI: frozenset({"2.0", "3.0", "3.1"}),
    Family.ASYNCAPI: frozenset({"2.6", "3.0", "3.1"}),
    Family.JSON_SCHEMA: frozenset({"2020-12", "draft-07"}),
}
# The `$schema` URIs of the JSON Schema dialects a canonical model may be written in, as the
# specifications print them (with or without the empty fragment, http or https).
JSON_SCHEMA_DIALECTS = {
    "json-schema.org/draft/2020-12/schema": "2020-12",
    "json-schema.org/draft-07/schema": "draft-07",
}

_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def detect_kind(doc: Document) -> DocumentKind:
    """Read the kind from the `openapi`, `swagger` or `asyncapi` field, refusing unsupported lines;
    a document with none of them but a `$schema` is a JSON Schema (a canonical model)."""
    if "openapi" in doc:
        family, raw = Family.OPENAPI, doc["openapi"]
    elif "swagger" in doc:
        family, raw = Family.OPENAPI, doc["swagger"]
    elif "asyncapi" in doc:
        family, raw = Family.ASYNCAPI, doc["asyncapi"]
    elif "$schema" in doc:
        return _json_schema_kind(doc["$schema"])
    else:
        raise UnknownKind("document has no `openapi`, `swagger`, `asyncapi` or `$schema` field")
    version = str(raw)
    if not _VERSION.match(version):
        raise UnknownKind(f"{family.value} version {raw!r} is not a version number")
    kind = DocumentKind(family, version)
    if kind.line not in SUPPORTED_LINES[family]:
        supported = ", ".join(sorted(SUPPORTED_LINES[family]))
        raise UnknownKind(f"{kind} is not supported (supported {family.value} lines: {supported})")
    return kind


def _json_schema_kind(raw: object) -> DocumentKind:
    uri = str(raw).split("://", 1)[-1].rstrip("#") if isinstance(raw, str) else ""
    dialect = JSON_SCHEMA_DIALECTS.get(uri)
    if dialect is None:
        raise UnknownKind(
            f"$schema {str(raw)[:200]!r} is not a supported JSON Schema dialect (2020-12, draft-07)"
        )
    return DocumentKind(Family.JSON_SCHEMA, dialect)
