"""The routing table: compiled from published contracts, matched without scanning every path.

Each version's path templates go into a trie of segments (static children first, then one
parameter child), so a match costs one step per path segment whatever the number of paths.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts.index import HTTP_METHODS, Security, security_requirements
from contracts.references import child, follow
from gateway.source import AdapterBinding, ContractApi
from gateway.validation import DocumentSchemas, OperationValidator
from policies.throttle import RateLimitPolicy
from policies.versioning import VersionInfo, VersionState, successor


@dataclass
class Operation:
    method: str
    template: str
    operation_id: str | None
    security: Security | None
    node: dict[str, Any]
    path_item: dict[str, Any]
    path_item_pointer: str  # where the path item is written: behind a `$ref`, not under /paths
    schemas: DocumentSchemas = field(repr=False)
    path_params: tuple[str, ...]  # names in the order of the template's `{...}` segments
    _validator: OperationValidator | None = field(default=None, repr=False)
    # The gateway's compiled policy chain for this operation (`gateway.plan.OperationPlan`), built on
    # its first request; typed loosely because the plan depends on this module, not the reverse.
    plan: Any = field(default=None, repr=False)

    @property
    def document(self) -> dict[str, Any]:
        return self.schemas.document

    @property
    def label(self) -> str:
        return self.operation_id or f"{self.method} {self.template}"

    @property
    def validator(self) -> OperationValidator:
        if self._validator is None:
            self._validator = OperationValidator(
                self.schemas,
                self.node,
                child(self.path_item_pointer, self.method.lower()),
                self.path_item,
                self.path_item_pointer,
            )
        return self._validator


@dataclass
class _Node:
    static: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    operations: dict[str, Operation] | None = None


class PathTrie:
    def __init__(self) -> None:
        self._root = _Node()

    def add(self, template: str, operations: dict[str, Operation]) -> None:
        node = self._root
        for segment in _segments(template):
            if segment.startswith("{") and segment.endswith("}"):
                node.param = node.param or _Node()
                node = node.param
            else:
                node = node.static.setdefault(segment, _Node())
        node.operations = {**(node.operations or {}), **operations}

    def match(self, path: str) -> tuple[dict[str, Operation], list[str]] | None:
        """The operations of the template `path` matches, and the values of its parameters."""
        values: list[str] = []
        found = self._match(self._root, _segments(path), 0, values)
        return (found, values) if found is not None else None

    def _match(self, node: _Node, segments: list[str], index: int, values: list[str]) -> dict | None:
        if index == len(segments):
            return node.operations
        segment = segments[index]
        child = node.static.get(segment)
        if child is not None:
            found = self._match(child, segments, index + 1, values)
            if found is not None:
                return found
        if node.param is not None and segment:
            values.append(segment)
            found = self._match(node.param, segments, index + 1, values)
            if found is not None:
                return found
            values.pop()
        return None


def _segments(path: str) -> list[str]:
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


@dataclass
class VersionRoutes:
    info: VersionInfo
    trie: PathTrie


@dataclass
class ApiRoutes:
    name: str
    versions: list[VersionInfo]
    routes: dict[str, VersionRoutes]
    rate_limit: RateLimitPolicy | None
    adapter: AdapterBinding | None
    # Deprecated or retired version -> the live one its callers should move to (None: there is none).
    successors: dict[str, VersionInfo | None]
    # (major, API-Version header) -> version: resolving parses semver, too slow to repeat per request.
    resolved: dict[tuple[int | None, str | None], VersionInfo] = field(default_factory=dict)


def compile_routes(apis: Iterable[ContractApi]) -> dict[str, ApiRoutes]:
    table = {}
    for api in apis:
        routes = {}
        for version in api.versions:
            if "openapi" in version.document or "swagger" in version.document:
                routes[version.info.version] = VersionRoutes(
                    version.info, _compile_document(version.document)
                )
        if routes:
            infos = [routes[v].info for v in routes]
            successors = {
                info.version: successor(infos, info)
                for info in infos
                if info.state is not VersionState.PUBLISHED
            }
            table[api.name] = ApiRoutes(api.name, infos, routes, api.rate_limit, api.adapter, successors)
    return table


def with_routes_of(
    table: Mapping[str, ApiRoutes], names: Collection[str], fresh: Mapping[str, ApiRoutes]
) -> dict[str, ApiRoutes]:
    """A new table: `table` with the routes of the named APIs replaced by `fresh` (compiled from those
    APIs alone); a named API missing from `fresh` has nothing to route any more and leaves. Every
    other API keeps the routes it had, compiled objects and all."""
    updated = dict(table)
    for name in names:
        updated.pop(name, None)
    updated.update(fresh)
    return updated


def _compile_document(document: dict[str, Any]) -> PathTrie:
    trie = PathTrie()
    schemas = DocumentSchemas(document)
    root_security = security_requirements(document.get("security"))
    paths = document.get("paths") if isinstance(document.get("paths"), dict) else {}
    for template, raw_item in paths.items():
        item, item_pointer = follow(document, raw_item, child("/paths", template))
        if not isinstance(item, dict):
            continue
        names = tuple(s[1:-1] for s in _segments(template) if s.startswith("{") and s.endswith("}"))
        operations = {}
        for method in HTTP_METHODS:
            node = item.get(method)
            if not isinstance(node, dict):
                continue
            security = security_requirements(node["security"]) if "security" in node else root_security
            operations[method.upper()] = Operation(
                method=method.upper(),
                template=template,
                operation_id=node.get("operationId") if isinstance(node.get("operationId"), str) else None,
                security=security,
                node=node,
                path_item=item,
                path_item_pointer=item_pointer,
                schemas=schemas,
                path_params=names,
            )
        if operations:
            trie.add(template, operations)
    return trie
