"""Running a ruleset's custom rules: select nodes with `given`, check each with `then`."""

from __future__ import annotations

from collections.abc import Iterator

from contracts.index import HTTP_METHODS
from contracts.lint.findings import Finding
from contracts.lint.functions import MISSING
from contracts.lint.located import child
from contracts.lint.ruleset import CustomRule
from contracts.lint.spectral import paths
from contracts.loading import Document


def check_custom(
    doc: Document, rule: CustomRule, budget: paths.Budget = paths.UNLIMITED
) -> Iterator[Finding]:
    seen: set[str] = set()
    for path in rule.paths:
        for match in paths.evaluate(doc, path, budget=budget):
            if match.pointer in seen:
                continue
            seen.add(match.pointer)
            node = paths.raw(match.value)
            for check in rule.then:
                pointer = match.pointer
                if check.field is None:
                    value, subject = node, _last_token(match)
                elif check.field == "@key":
                    value, subject = match.key, f"key of {_last_token(match)}"
                elif isinstance(node, dict) and check.field in node:
                    value, subject = node[check.field], check.field
                    pointer = child(match.pointer, check.field)
                else:
                    value, subject = MISSING, check.field
                failure = check.options.check(value, budget)
                if failure is not None:
                    message = f"`{subject}` {failure}"
                    if rule.description:
                        message = f"{rule.description}: {message}"
                    yield Finding(rule.id, rule.severity, message, pointer, operation_at(pointer))


def _last_token(match: paths.Selected) -> str:
    return "$" if match.key is None else str(match.key)


def operation_at(pointer: str) -> str | None:
    """`GET /projects` when a pointer is inside `/paths/~1projects/get`."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    if len(tokens) >= 3 and tokens[0] == "paths" and tokens[2] in HTTP_METHODS:
        return f"{tokens[2].upper()} {tokens[1]}"
    return None
