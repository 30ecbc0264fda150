"""What the portal shows of a canonical model: its top-level properties, each with type and requiredness."""

from __future__ import annotations

from typing import Any

import msgspec

from contracts.loading import Document
from contracts.references import deref


class ModelProperty(msgspec.Struct, frozen=True):
    name: str
    type: str
    required: bool
    description: str


class ModelSummary(msgspec.Struct, frozen=True):
    properties: list[ModelProperty]


def model_summary(document: Document) -> ModelSummary:
    properties = document.get("properties") if isinstance(document.get("properties"), dict) else {}
    required = document.get("required") if isinstance(document.get("required"), list) else []
    out = []
    for name, raw in properties.items():
        schema = deref(document, raw)
        schema = schema if isinstance(schema, dict) else {}
        out.append(
            ModelProperty(
                name=str(name),
                type=_type_of(schema, raw),
                required=name in required,
                description=str(schema.get("description") or ""),
            )
        )
    return ModelSummary(out)


def _type_of(schema: dict[str, Any], raw: Any) -> str:
    kind = schema.get("type")
    text = " or ".join(str(t) for t in kind) if isinstance(kind, list) else str(kind or "any")
    if schema.get("format"):
        text += f" ({schema['format']})"
    if isinstance(raw, dict) and isinstance(raw.get("$ref"), str):
        text += f" → {raw['$ref'].rsplit('/', 1)[-1]}"
    return text
