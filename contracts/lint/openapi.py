"""Built-in rules for OpenAPI documents (2.0, 3.0, 3.1): operations, security, error responses, paths."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from contracts.index import HTTP_METHODS
from contracts.kinds import DocumentKind
from contracts.lint.findings import Finding, found
from contracts.lint.located import child, follow, members, text
from contracts.loading import Document

PROBLEM_JSON = "application/problem+json"
_CAMEL_CASE = re.compile(r"^[a-z][a-zA-Z0-9]*$")
_KEBAB_CASE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_WORDS = re.compile(r"[-_.]|(?<=[a-z0-9])(?=[A-Z])")
VERBS = frozenset(
    {
        "add",
        "create",
        "delete",
        "edit",
        "fetch",
        "get",
        "insert",
        "list",
        "modify",
        "patch",
        "post",
        "put",
        "remove",
        "retrieve",
        "save",
        "set",
        "update",
    }
)


class Operation(NamedTuple):
    method: str
    path: str
    node: dict[str, Any]
    pointer: str

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"


def operations(doc: Document) -> list[Operation]:
    """Every operation under `paths`, path items behind a `$ref` included."""
    out = []
    for path, item, item_pointer in members(doc, doc.get("paths"), "/paths"):
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op, pointer = follow(doc, item.get(method), child(item_pointer, method))
            if isinstance(op, dict):
                out.append(Operation(method, path, op, pointer))
    return out


def check_openapi(doc: Document, kind: DocumentKind) -> Iterator[Finding]:
    ops = operations(doc)
    yield from _operation_ids(ops)
    for op in ops:
        if not (text(op.node.get("description")) or text(op.node.get("summary"))):
            yield found(
                "operation-description", f"{op.label} has no description or summary", op.pointer, op.label
            )
        yield from _security(doc, op)
        yield from _error_responses(doc, op, swagger=kind.line == "2.0")
    yield from _paths(doc)


def _operation_ids(ops: list[Operation]) -> Iterator[Finding]:
    users: dict[str, list[Operation]] = {}
    for op in ops:
        operation_id = op.node.get("operationId")
        if not text(operation_id):
            yield found("operation-id-present", f"{op.label} has no operationId", op.pointer, op.label)
            continue
        users.setdefault(operation_id, []).append(op)
        if not _CAMEL_CASE.match(operation_id):
            message = f"{op.label}: operationId `{operation_id}` is not camelCase"
            yield found("operation-id-camel-case", message, child(op.pointer, "operationId"), op.label)
    for operation_id, sharing in users.items():
        if len(sharing) < 2:
            continue
        for op in sharing:
            others = ", ".join(other.label for other in sharing if other is not op)
            message = f"{op.label}: operationId `{operation_id}` is also used by {others}"
            yield found("operation-id-unique", message, child(op.pointer, "operationId"), op.label)


def _security(doc: Document, op: Operation) -> Iterator[Finding]:
    # An operation's own `security` wins, `[]` included (an explicit choice to be public); the root's
    # `security: []` is no requirement, so each public operation has to say so itself.
    if isinstance(op.node.get("security"), list):
        return
    root = doc.get("security")
    if isinstance(root, list) and root:
        return
    message = (
        f"{op.label} has no security requirement, nor has the document;"
        " declare one, or `security: []` if it is public"
    )
    yield found("operation-security-defined", message, op.pointer, op.label)


def _error_responses(doc: Document, op: Operation, *, swagger: bool) -> Iterator[Finding]:
    produces = op.node.get("produces", doc.get("produces"))
    for status, response, pointer in members(doc, op.node.get("responses"), child(op.pointer, "responses")):
        if status[:1] not in ("4", "5") or not isinstance(response, dict):
            continue
        if swagger:
            has_body = "schema" in response
            media_types = [str(m) for m in produces] if isinstance(produces, list) else []
        else:
            content = response.get("content")
            has_body = isinstance(content, dict) and bool(content)
            media_types = [str(m) for m in content] if isinstance(content, dict) else []
        subject = f"{op.label}: {status} response"
        if not has_body:
            message = f"{subject} has no body; describe the error as {PROBLEM_JSON}"
            yield found("error-response-problem-json", message, pointer, op.label)
        elif not any(m.split(";")[0].strip().lower() == PROBLEM_JSON for m in media_types):
            used = ", ".join(media_types) or "no media type"
            message = f"{subject} uses {used} instead of {PROBLEM_JSON}"
            yield found("error-response-problem-json", message, pointer, op.label)


def _paths(doc: Document) -> Iterator[Finding]:
    paths = doc.get("paths")
    for path in paths if isinstance(paths, dict) else ():
        segments = [s for s in str(path).split("/") if s and "{" not in s]
        pointer = child("/paths", path)
        not_kebab = [s for s in segments if not _KEBAB_CASE.match(s)]
        if not_kebab:
            listed = ", ".join(f"`{s}`" for s in not_kebab)
            yield found("path-kebab-case", f"path {path}: {listed} not in kebab-case", pointer)
        verbs = [s for s in segments if _WORDS.split(s)[0].lower() in VERBS]
        if verbs:
            listed = ", ".join(f"`{s}`" for s in verbs)
            yield found(
                "path-no-verbs", f"path {path}: {listed} names a verb; let the method say it", pointer
            )
