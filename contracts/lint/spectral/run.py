"""Running Spectral rules over a document: select with `given`, check each node with `then`, word the
finding with the rule's `message`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from contracts.kinds import Family, detect_kind
from contracts.lint.catalog import Severity
from contracts.lint.custom import operation_at
from contracts.lint.findings import Finding
from contracts.lint.spectral import paths
from contracts.lint.spectral.functions import MISSING, Context
from contracts.lint.spectral.paths import Budget, BudgetExceeded, Items, Node, Selected
from contracts.lint.spectral.ruleset import SpectralRule, Then
from contracts.references import child, follow

BUDGET_RULE = "lint-budget"


def document_formats(doc: Any) -> frozenset[str]:
    kind = detect_kind(doc)
    if kind.family is Family.ASYNCAPI:
        return frozenset({"asyncapi2" if kind.spec_version.startswith("2.") else "asyncapi3"})
    if kind.line == "2.0":
        return frozenset({"oas2"})
    return frozenset({"oas3", "oas3_1" if kind.line == "3.1" else "oas3_0"})


def check_spectral(doc: Any, rules: tuple[SpectralRule, ...], budget: Budget) -> Iterator[Finding]:
    formats = document_formats(doc)
    document = paths.Document(doc, budget)
    context = Context(doc, budget)
    seen: set[tuple[str, str, str]] = set()
    for rule in rules:
        if rule.severity is None or (rule.formats and not rule.formats & formats):
            continue
        if rule.unsupported is not None:
            # A warning whatever the rule's severity: what Charter cannot check must not fail every lint.
            yield Finding(
                rule.name,
                Severity.WARNING,
                f"rule `{rule.name}` is not checked: {rule.unsupported}",
                "",
            )
            continue
        try:
            for finding in _run(document, context, rule):
                key = (finding.rule, finding.pointer, finding.message)
                if key not in seen:
                    seen.add(key)
                    yield finding
        except BudgetExceeded as exc:
            yield Finding(
                BUDGET_RULE,
                Severity.ERROR,
                f"linting stopped at rule `{rule.name}`: {exc}; the rules after it were not run",
                "",
            )
            return


def _run(document: paths.Document, context: Context, rule: SpectralRule) -> Iterator[Finding]:
    for path in rule.paths:
        for selected in document.select(path, resolved=rule.resolved):
            for then in rule.then:
                for value, pointer, key in _targets(document, selected, then, rule.resolved):
                    assert then.check is not None
                    if value is MISSING and not then.check.accepts_missing:
                        continue
                    for error, below in then.check.check(value, context):
                        where = _below(context.document, pointer, below)
                        yield Finding(
                            rule.name,
                            rule.severity,  # type: ignore[arg-type]
                            _message(rule, error, where, key, value, below),
                            where,
                            operation_at(where),
                        )


def _targets(
    document: paths.Document, selected: Selected, then: Then, resolved: bool
) -> list[tuple[Any, str, Any]]:
    """(value, its pointer, its key) for each value a `then` checks on a selected node."""
    if then.field is None:
        return [(selected.value, selected.pointer, selected.key)]
    if then.field == "@key":
        return [(selected.key, selected.pointer, selected.key)]
    if then.field_path is not None:
        scope = document.scopes[resolved]
        if not isinstance(selected.value, Node | Items):
            return []
        found = paths.select_from(scope, then.field_path, selected.value)
        return [(s.value, s.pointer, s.key) for s in found]
    value: Any = selected.value
    pointer = selected.pointer
    key: Any = selected.key
    tokens = _field_tokens(then.field)
    for index, token in enumerate(tokens):
        in_node = isinstance(value, Node) and token in value
        if in_node or (
            isinstance(value, Items) and isinstance(token, int) and -len(value) <= token < len(value)
        ):
            value, key = value[token], token
        else:
            # Spectral points at the whole field path, the missing member and what is below it.
            return [(MISSING, child(pointer, *tokens[index:]), tokens[-1])]
        pointer = value.pointer if isinstance(value, Node | Items) else child(pointer, token)
    return [(value, pointer, key)]


def _field_tokens(field: str) -> list[str | int]:
    """`contact.name`, `items[0]` or `['application/json']` as member names and indexes (lodash `get`)."""
    tokens: list[str | int] = []
    for part in re.finditer(r"\[(\d+)\]|\[(['\"])(.*?)\2\]|([^.\[\]]+)", field):
        if part.group(1) is not None:
            tokens.append(int(part.group(1)))
        elif part.group(3) is not None:
            tokens.append(part.group(3))
        else:
            tokens.append(part.group(4))
    return tokens


def _below(doc: Any, pointer: str, tokens: tuple[str | int, ...]) -> str:
    """The pointer of a place below `pointer`, following `$ref`s on the way so it says where it is written."""
    if not tokens:
        return pointer
    from contracts.references import resolve_pointer

    try:
        node = resolve_pointer(doc, pointer)
    except KeyError:
        return child(pointer, *tokens)
    for token in tokens:
        node, pointer = follow(doc, node, pointer)
        if isinstance(node, dict) and str(token) in node:
            node, pointer = node[str(token)], child(pointer, str(token))
        elif isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
            node, pointer = node[token], child(pointer, token)
        else:
            return child(pointer, token)
    return pointer


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _message(rule: SpectralRule, error: str, pointer: str, key: Any, value: Any, below: tuple) -> str:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    prop = str(below[-1]) if below else (str(key) if key is not None else (tokens[-1] if tokens else ""))
    full_error = f'"{prop}" property {error}' if prop and not error[:1].isupper() else error
    values = {
        "error": full_error,
        "property": prop,
        "value": _printed(value),
        "path": ".".join(tokens),
        "description": rule.description,
    }
    if rule.message is None:
        return full_error
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group()), rule.message)


def _printed(value: Any) -> str:
    if value is MISSING:
        return ""
    if isinstance(value, Node | Items):
        value = value.raw
    if isinstance(value, str):
        return value
    import msgspec

    text = msgspec.json.encode(value).decode()
    return text if len(text) <= 80 else text[:77] + "..."
