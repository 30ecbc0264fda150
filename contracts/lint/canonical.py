"""Lint rules about canonical models, which need what only the registry knows: the API's layer and
the published canonical models (handed in as a `LintContext`; `charter lint` offline has none)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import msgspec

from contracts.canonical_models import (
    DEFAULT_CANONICAL_NAMES,
    DEFAULT_MAX_COMPARISONS,
    Declarations,
    check_declarations,
    undeclared_canonical_schemas,
)
from contracts.kinds import DocumentKind
from contracts.lint.findings import Finding, found
from contracts.loading import Document

# The rules that run only with a context (tested in tests/contracts/test_canonical_models.py).
CONTEXT_RULES = ("canonical-reference", "canonical-projection", "canonical-undeclared")
# Layers whose APIs speak the firm's language rather than one system's: their objects are canonical.
COMPOSING_LAYERS = frozenset({"process", "experience"})


class LintContext(msgspec.Struct, frozen=True):
    layer: str | None = None
    # Canonical model name -> its published versions' documents, by version.
    models: Mapping[str, Mapping[str, Document]] = {}
    max_comparisons: int = DEFAULT_MAX_COMPARISONS  # per declaration, as the diff's budget
    # The linted document's declarations when the caller found them (a publish); else the lint does.
    declarations: Declarations | None = None

    @property
    def canonical_names(self) -> frozenset[str]:
        return DEFAULT_CANONICAL_NAMES | frozenset(self.models)


def check_canonical(document: Document, kind: DocumentKind, context: LintContext) -> Iterator[Finding]:
    for mismatch in check_declarations(
        document,
        kind,
        context.models,
        declarations=context.declarations,
        max_comparisons=context.max_comparisons,
    ):
        yield found(mismatch.rule, mismatch.message, mismatch.pointer)
    if context.layer in COMPOSING_LAYERS:
        for pointer, name in undeclared_canonical_schemas(document, kind, context.canonical_names):
            message = f"schema `{name}` is named like a canonical object but declares no `x-canonical`"
            yield found("canonical-undeclared", message, pointer)
