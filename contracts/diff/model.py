"""The diff of two versions of a canonical model (a JSON Schema document), judged both ways.

A canonical business object is written by the systems that produce it and read by those that
consume it, so a change must be safe for both (FULL compatibility, as schema registries call it):
the schema comparison the OpenAPI diff uses runs once as a reader's (response) and once as a
writer's (request) schema, and each change keeps the worse level of the two (`model-...` rules).
"""

from __future__ import annotations

from contracts.diff.catalog import MODEL, Direction
from contracts.diff.changes import Change
from contracts.diff.schema import SchemaComparer, schema_changes, shortest_paths
from contracts.diff.side import Side
from contracts.loading import Document


def diff_models(base: Document, revision: Document, *, max_comparisons: int) -> list[Change]:
    comparer = SchemaComparer(Side(base), Side(revision), max_comparisons=max_comparisons)
    findings = [
        *comparer.compare(base, "", revision, "", Direction.RESPONSE),
        *comparer.compare(base, "", revision, "", Direction.REQUEST),
    ]
    subject = str(revision.get("title") or base.get("title") or "model")
    return schema_changes(shortest_paths(findings), MODEL, subject, None)
