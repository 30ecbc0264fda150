"""One side of a comparison: a document whose local `$ref`s are followed, remembering where nodes live."""

from __future__ import annotations

from typing import Any

from contracts.loading import Document
from contracts.references import child, follow

__all__ = ["Side", "child"]


class Side:
    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def deref(self, node: Any, pointer: str) -> tuple[Any, str]:
        """The node a `$ref` chain ends at and its pointer; an external or dangling reference stays as is."""
        return follow(self.doc, node, pointer)

    def member(self, node: dict[str, Any], pointer: str, key: str) -> tuple[Any, str]:
        return self.deref(node.get(key), child(pointer, key))
