"""The small JSONPath subset custom rules select nodes with (`given`).

No JSONPath library is a dependency of Charter, and custom rules need only this much: the root `$`,
members `.name` and `['name']`, unions `[get,post]` and `['get','post']`, array indexes `[0]`,
wildcards `.*` and `[*]`, and recursive descent `..name` and `..*`. Filters, slices and scripts are
refused: a ruleset is data, and a full JSONPath library is more to audit than this module.

Local `$ref`s are followed when stepping to a child and for each node selected, so a path reads the
document as if it were bundled; recursive descent walks the document as written, which keeps it finite
on recursive schemas and still visits every referenced node where it lives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import msgspec

from contracts.lint.located import child, follow
from contracts.loading import Document


class Step(msgspec.Struct, frozen=True):
    names: tuple[str | int, ...] | None  # None: any member or item
    recursive: bool = False


class Match(NamedTuple):
    key: str | int | None  # the member name or index the node was selected by; None for the root
    node: Any
    pointer: str


_NAME = re.compile(r"[^.\[\]\s'\",*]+")
_BARE = re.compile(r"[A-Za-z_$][\w$-]*")
_INDEX = re.compile(r"-?\d+(?=\s*[,\]])")
_QUOTED = re.compile(r"""'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)\"""")


def parse(expression: str) -> tuple[Step, ...]:
    """The steps of an expression; ValueError says what is wrong and where."""
    if not expression.startswith("$"):
        raise ValueError("a path starts with `$`")
    steps: list[Step] = []
    at = 1
    while at < len(expression):
        recursive = expression.startswith("..", at)
        if recursive or expression[at] == ".":
            at += 2 if recursive else 1
            if expression.startswith("[", at) and recursive:
                names, at = _bracket(expression, at)
            elif expression.startswith("*", at):
                names, at = None, at + 1
            elif match := _NAME.match(expression, at):
                names, at = (match.group(),), match.end()
            else:
                raise ValueError(f"expected a name or `*` at position {at}")
        elif expression[at] == "[":
            names, at = _bracket(expression, at)
        else:
            raise ValueError(f"unexpected {expression[at]!r} at position {at}")
        steps.append(Step(names, recursive))
    return tuple(steps)


def _bracket(expression: str, at: int) -> tuple[tuple[str | int, ...] | None, int]:
    if expression.startswith("[*]", at):
        return None, at + 3
    names: list[str | int] = []
    at += 1
    while True:
        at = _skip_space(expression, at)
        if quoted := _QUOTED.match(expression, at):
            raw = quoted.group(1) if quoted.group(1) is not None else quoted.group(2)
            names.append(re.sub(r"\\(.)", r"\1", raw))
            at = quoted.end()
        elif index := _INDEX.match(expression, at):
            names.append(int(index.group()))
            at = index.end()
        elif bare := _BARE.match(expression, at):
            names.append(bare.group())
            at = bare.end()
        else:
            raise ValueError(f"expected a name, a quoted name, an index or `*` at position {at}")
        at = _skip_space(expression, at)
        if expression.startswith("]", at):
            return tuple(names), at + 1
        if not expression.startswith(",", at):
            raise ValueError(f"expected `,` or `]` at position {at}")
        at += 1


def _skip_space(expression: str, at: int) -> int:
    while at < len(expression) and expression[at].isspace():
        at += 1
    return at


def evaluate(doc: Document, steps: tuple[Step, ...]) -> list[Match]:
    """The nodes a path selects, each once (by the pointer it is written at), in the order first reached."""
    current = [Match(None, doc, "")]
    for step in steps:
        selected: dict[str, Match] = {}
        for match in current:
            for origin in _descendants(match) if step.recursive else (match,):
                for selection in _children(doc, origin, step.names):
                    selected.setdefault(selection.pointer, selection)
        current = list(selected.values())
    return current


def _children(doc: Document, match: Match, names: tuple[str | int, ...] | None) -> Iterator[Match]:
    node, pointer = follow(doc, match.node, match.pointer)
    if isinstance(node, dict):
        keys = node.keys() if names is None else [str(n) for n in names if str(n) in node]
        for key in keys:
            yield Match(key, *follow(doc, node[key], child(pointer, key)))
    elif isinstance(node, list):
        indexes = range(len(node)) if names is None else [n for n in names if isinstance(n, int)]
        for index in indexes:
            if -len(node) <= index < len(node):
                position = index % len(node)
                yield Match(position, *follow(doc, node[position], child(pointer, position)))


def _descendants(match: Match) -> Iterator[Match]:
    """The node and everything below it, as written (no `$ref` followed)."""
    stack = [match]
    while stack:
        current = stack.pop()
        yield current
        node = current.node
        if isinstance(node, dict):
            items: list[tuple[str | int, Any]] = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            continue
        stack.extend(Match(key, value, child(current.pointer, key)) for key, value in reversed(items))
