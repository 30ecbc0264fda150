"""`$ref`s in a document: where they are, which leave the document, which point nowhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import msgspec

from contracts.errors import Issue
from contracts.loading import Document


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(path: list[str | int] | tuple[str | int, ...]) -> str:
    return "".join("/" + escape(str(part)) for part in path)


def iter_refs(doc: Document) -> Iterator[tuple[str, str]]:
    """(pointer of the `$ref` member, its value) for every reference in the document."""
    # Pointers are spelt only for the references found: a walk of Stripe visits 200,000 containers
    # and spelling each one's pointer was most of the time of validating it.
    stack: list[tuple[Any, tuple | None]] = [(doc, None)]
    while stack:
        node, trail = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                yield _spell(trail) + "/$ref", ref
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((value, (trail, key)))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((value, (trail, index)))


def _spell(trail: tuple | None) -> str:
    tokens = []
    while trail is not None:
        trail, token = trail
        tokens.append(token)
    return pointer(tokens[::-1])


def resolve_pointer(doc: Any, fragment: str) -> Any:
    """The node a JSON pointer (RFC 6901, as in `#/a/b`) names; KeyError when there is none."""
    node = doc
    if fragment in ("", "/"):
        return node
    for raw in fragment.lstrip("/").split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise KeyError(fragment)
    return node


# A `$ref` member in compact JSON. A key follows `{` or `,`; inside a string those quotes would be
# escaped, so string contents never match. (The literal start lets `re` skip ahead quickly.)
_REF_MEMBER = re.compile(rb'"\$ref":("(?:[^"\\]|\\.)*")')


def _all_resolve(doc: Document) -> bool:
    """Whether every reference is internal and resolves, from the distinct values alone.

    Encoding the document (C) and scanning the text takes a fraction of walking it in Python, and
    most documents are fine: the walk that finds where each bad reference is runs only when one is.
    """
    try:
        text = msgspec.json.encode(doc)
    except (TypeError, msgspec.EncodeError):
        return False
    values = {m[1] for m in _REF_MEMBER.finditer(text) if text[m.start() - 1 : m.start()] in (b"{", b",")}
    for raw in values:
        ref = msgspec.json.decode(raw)
        if not ref.startswith("#"):
            return False
        try:
            resolve_pointer(doc, unquote(ref[1:]))
        except KeyError:
            return False
    return True


def reference_issues(doc: Document) -> list[Issue]:
    """Remote references (never fetched: validation is offline) and internal ones that point nowhere."""
    if _all_resolve(doc):
        return []
    issues = []
    for where, ref in iter_refs(doc):
        if not ref.startswith("#"):
            issues.append(
                Issue(
                    pointer=where, message=f"external reference {ref!r} is not allowed here; publish a bundle"
                )
            )
            continue
        try:
            resolve_pointer(doc, unquote(ref[1:]))
        except KeyError:
            issues.append(
                Issue(pointer=where, message=f"reference {ref!r} points to nothing in this document")
            )
    issues.sort(key=lambda issue: issue.pointer)
    return issues


def deref(doc: Any, node: Any, max_hops: int = 8) -> Any:
    """Follow a chain of local `$ref`s to its end; an external or dangling one is returned as is."""
    for _ in range(max_hops):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#"):
            return node
        try:
            node = resolve_pointer(doc, unquote(ref[1:]))
        except KeyError:
            return node
    return node


# A chain of references longer than this is a cycle of `$ref` to `$ref` in practice.
_MAX_HOPS = 32


def follow(doc: Any, node: Any, at: str) -> tuple[Any, str]:
    """Like `deref`, keeping track of where the node is written: (the target, its pointer)."""
    for _ in range(_MAX_HOPS):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#"):
            return node, at
        target = unquote(ref[1:])
        try:
            node = resolve_pointer(doc, target)
        except KeyError:
            return node, at
        at = target
    return node, at


def child(at: str, *tokens: str | int) -> str:
    """The pointer of a member below `at`."""
    return at + "".join(f"/{escape(str(t))}" for t in tokens)


def fragment(at: str) -> str:
    """A pointer as the fragment of a URI, `#` included (RFC 6901, section 6): `{id}` is not URI text."""
    return "#" + quote(at, safe="/~!$&'()*+,;=:@")
