"""One side of a comparison: a document whose local `$ref`s are followed, remembering where nodes live."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from contracts.loading import Document
from contracts.references import escape, resolve_pointer

# A chain of references longer than this is a cycle of `$ref` to `$ref` in practice.
_MAX_HOPS = 32


class Side:
    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def deref(self, node: Any, pointer: str) -> tuple[Any, str]:
        """The node a `$ref` chain ends at and its pointer; an external or dangling reference stays as is."""
        for _ in range(_MAX_HOPS):
            if not isinstance(node, dict):
                return node, pointer
            ref = node.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                return node, pointer
            target = unquote(ref[1:])
            try:
                node = resolve_pointer(self.doc, target)
            except KeyError:
                return node, pointer
            pointer = target
        return node, pointer

    def member(self, node: dict[str, Any], pointer: str, key: str) -> tuple[Any, str]:
        return self.deref(node.get(key), f"{pointer}/{escape(key)}")


def child(pointer: str, *tokens: str | int) -> str:
    return pointer + "".join(f"/{escape(str(t))}" for t in tokens)
