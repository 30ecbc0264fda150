"""Typed errors raised by the contracts library; the registry turns them into problem+json."""

from __future__ import annotations

import msgspec


class Issue(msgspec.Struct, frozen=True):
    """One problem found in a document, located by a JSON pointer (RFC 6901).

    The pointer is absolute: into the submitted document, or for a bundle into `file`. `line` and
    `column` (from 1) say where that is in the text, when the document came as text.
    """

    pointer: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None


class ContractError(Exception):
    """Base of every error about a submitted document."""

    title = "Invalid contract"

    def __init__(self, detail: str, issues: list[Issue] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.issues = issues or []


class DocumentTooLarge(ContractError):
    title = "Document too large"


class DocumentTooComplex(ContractError):
    """Within the size limits, but resolving or comparing it would take more work than one request may."""

    title = "Document too complex"


class DocumentUnreadable(ContractError):
    """Not UTF-8, not JSON or YAML, too deep, too many aliases: the bytes never became a document."""

    title = "Unreadable document"


class UnknownKind(ContractError):
    title = "Unknown contract kind"


class ContractInvalid(ContractError):
    """The document parsed but breaks its specification's schema or rules."""

    title = "Contract invalid"


class IncomparableContracts(ContractError):
    """Two documents of different families (OpenAPI against AsyncAPI) have no meaningful diff."""

    title = "Contracts cannot be compared"
