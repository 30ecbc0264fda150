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


class DocumentKind(msgspec.Struct, frozen=True):
    family: Family
    spec_version: str  # as written in the document, e.g. "3.0.3"

    @property
    def line(self) -> str:
        """The version line a validator is chosen by: "2.0", "3.0", "3.1", "2.6", "3.0"."""
        return ".".join(self.spec_version.split(".")[:2])

    def __str__(self) -> str:
        return f"{self.family.value} {self.spec_version}"


SUPPORTED_LINES: dict[Family, frozenset[str]] = {
    Family.OPENAPI: frozenset({"2.0", "3.0", "3.1"}),
    Family.ASYNCAPI: frozenset({"2.6", "3.0", "3.1"}),
}

_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")


def detect_kind(doc: Document) -> DocumentKind:
    """Read the kind from the `openapi`, `swagger` or `asyncapi` field, refusing unsupported lines."""
    if "openapi" in doc:
        family, raw = Family.OPENAPI, doc["openapi"]
    elif "swagger" in doc:
        family, raw = Family.OPENAPI, doc["swagger"]
    elif "asyncapi" in doc:
        family, raw = Family.ASYNCAPI, doc["asyncapi"]
    else:
        raise UnknownKind("document has no `openapi`, `swagger` or `asyncapi` field")
    version = str(raw)
    if not _VERSION.match(version):
        raise UnknownKind(f"{family.value} version {raw!r} is not a version number")
    kind = DocumentKind(family, version)
    if kind.line not in SUPPORTED_LINES[family]:
        supported = ", ".join(sorted(SUPPORTED_LINES[family]))
        raise UnknownKind(f"{kind} is not supported (supported {family.value} lines: {supported})")
    return kind
