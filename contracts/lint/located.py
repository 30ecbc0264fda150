"""Nodes with the pointer where they are written: a local `$ref` is followed to its target's place."""

from __future__ import annotations

from typing import Any

from contracts.loading import Document
from contracts.references import child, follow

__all__ = ["child", "follow", "member", "members", "text"]


def member(doc: Document, node: dict[str, Any], pointer: str, key: str) -> tuple[Any, str]:
    return follow(doc, node.get(key), child(pointer, key))


def members(doc: Document, node: Any, pointer: str) -> list[tuple[str, Any, str]]:
    """(key, followed value, its pointer) for each member of an object; nothing for anything else."""
    if not isinstance(node, dict):
        return []
    return [(str(key), *follow(doc, value, child(pointer, key))) for key, value in node.items()]


def text(value: Any) -> str | None:
    """A non-blank string, or None."""
    return value if isinstance(value, str) and value.strip() else None
