"""The operation index: what a contract offers, for search now and for the gateway's routing."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import msgspec

from contracts.kinds import DocumentKind, Family
from contracts.loading import Document
from contracts.references import resolve_pointer

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Search text kept per version: every word past the bound costs index space and ranking time on every
# query that matches it, while Stripe-sized contracts would give 200 KB. What comes first is kept:
# the description (cut at its own bound), operations, channels and messages, schema names, then
# property names.
MAX_SEARCH_TEXT = 16_000
MAX_SEARCH_DESCRIPTION = 2_000
# Schemas visited for their property names: a bound on the walk, not on what the text keeps.
MAX_SCHEMAS_WALKED = 5_000
# Alternatives (OR) of requirements (AND) of (scheme name, scopes).
Security = tuple[tuple[tuple[str, tuple[str, ...]], ...], ...]


class Operation(msgspec.Struct, frozen=True):
    method: str  # HTTP method upper-case; AsyncAPI: SEND/RECEIVE (3.x) or PUBLISH/SUBSCRIBE (2.6)
    path: str  # OpenAPI path template, or AsyncAPI channel address
    operation_id: str | None
    summary: str | None
    description: str | None
    tags: tuple[str, ...]
    deprecated: bool
    security: Security | None  # None: not declared; (): explicitly open (`security: []`)


class ContractIndex(msgspec.Struct, frozen=True):
    title: str
    description: str | None
    version: str | None
    operations: tuple[Operation, ...]
    # Channel addresses, message names and titles: found by search, not routed on.
    keywords: tuple[str, ...] = ()
    # Names of the named schemas, then the property names found in them: found by search too.
    schema_names: tuple[str, ...] = ()
    property_names: tuple[str, ...] = ()

    def search_text(self) -> str:
        """What search finds the contract by, at most MAX_SEARCH_TEXT characters (whole words)."""
        words: list[str] = []
        if self.description:
            words.append(_cut(self.description, MAX_SEARCH_DESCRIPTION))
        for op in self.operations:
            words.extend(w for w in (op.operation_id, op.summary, op.path, *op.tags) if w)
        words.extend(self.keywords)
        words.extend(self.schema_names)
        words.extend(self.property_names)
        return _cut("\n".join(dict.fromkeys(words)), MAX_SEARCH_TEXT)


def _cut(text: str, limit: int) -> str:
    """`text` up to `limit` characters, ending on a whole word."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    end = max(head.rfind(" "), head.rfind("\n"))
    return head[:end].rstrip() if end > 0 else head[:limit]


def build_index(doc: Document, kind: DocumentKind) -> ContractIndex:
    if kind.family is Family.JSON_SCHEMA:
        return _model_index(doc)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    if kind.family is Family.OPENAPI:
        operations, keywords = _openapi_operations(doc), ()
    elif kind.line == "2.6":
        operations, keywords = _asyncapi2_operations(doc)
    else:
        operations, keywords = _asyncapi3_operations(doc)
    schemas = _named_schemas(doc, kind)
    return ContractIndex(
        title=str(info.get("title") or ""),
        description=_text(info.get("description")),
        version=_text(info.get("version")),
        operations=tuple(operations),
        keywords=tuple(keywords),
        schema_names=tuple(schemas),
        property_names=_property_names(doc, [*schemas.values(), *_message_payloads(doc, kind)]),
    )


def _model_index(doc: Document) -> ContractIndex:
    """A canonical model has no operations: search finds it by its title, its definitions and properties."""
    named = doc.get("$defs") if isinstance(doc.get("$defs"), dict) else doc.get("definitions")
    schemas = {str(name): schema for name, schema in named.items()} if isinstance(named, dict) else {}
    return ContractIndex(
        title=_text(doc.get("title")) or "",
        description=_text(doc.get("description")),
        version=None,
        operations=(),
        keywords=(),
        schema_names=tuple(schemas),
        property_names=_property_names(doc, [doc, *schemas.values()]),
    )


def _named_schemas(doc: Document, kind: DocumentKind) -> dict[str, Any]:
    """The document's named schemas: `definitions` (Swagger 2.0) or `components/schemas`."""
    if kind.family is Family.OPENAPI and kind.spec_version.startswith("2."):
        named = doc.get("definitions")
    else:
        components = doc.get("components")
        named = components.get("schemas") if isinstance(components, dict) else None
    return {str(name): schema for name, schema in named.items()} if isinstance(named, dict) else {}


def _message_payloads(doc: Document, kind: DocumentKind) -> list[Any]:
    """AsyncAPI: the payloads of the named messages, where events keep most of their fields."""
    components = doc.get("components")
    messages = components.get("messages") if isinstance(components, dict) else None
    if kind.family is not Family.ASYNCAPI or not isinstance(messages, dict):
        return []
    found = (_deref(doc, message) for message in messages.values())
    return [message.get("payload") for message in found if isinstance(message, dict)]


def _property_names(doc: Document, roots: list[Any]) -> tuple[str, ...]:
    """Property names of the schemas and of the schemas nested in them, first seen first."""
    found: dict[str, None] = {}
    pending, seen, walked = list(reversed(roots)), set(), 0
    while pending and walked < MAX_SCHEMAS_WALKED:
        schema = _deref(doc, pending.pop())
        if not isinstance(schema, dict) or id(schema) in seen:
            continue
        seen.add(id(schema))
        walked += 1
        nested: list[Any] = []
        properties = schema.get("properties")
        if isinstance(properties, dict):
            found.update(dict.fromkeys(str(name) for name in properties))
            nested.extend(properties.values())
        for key in ("items", "additionalProperties", "not"):
            nested.append(schema.get(key))
        for key in ("allOf", "anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                nested.extend(schema[key])
        pending.extend(reversed(nested))
    return tuple(found)


def _openapi_operations(doc: Document) -> list[Operation]:
    root_security = security_requirements(doc.get("security"))
    out = []
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    for path, item in paths.items():
        item = _deref(doc, item)
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            security = security_requirements(op["security"]) if "security" in op else root_security
            out.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    operation_id=_text(op.get("operationId")),
                    summary=_text(op.get("summary")),
                    description=_text(op.get("description")),
                    tags=tuple(str(t) for t in op.get("tags") or () if isinstance(t, str)),
                    deprecated=op.get("deprecated") is True,
                    security=security,
                )
            )
    return out


def _asyncapi2_operations(doc: Document) -> tuple[list[Operation], list[str]]:
    out, keywords = [], []
    channels = doc.get("channels") if isinstance(doc.get("channels"), dict) else {}
    for address, channel in channels.items():
        channel = _deref(doc, channel)
        if not isinstance(channel, dict):
            continue
        keywords.append(address)
        for action in ("publish", "subscribe"):
            op = channel.get(action)
            if not isinstance(op, dict):
                continue
            keywords.extend(_message_words(doc, op.get("message")))
            out.append(_async_operation(action.upper(), address, op))
    return out, keywords


def _asyncapi3_operations(doc: Document) -> tuple[list[Operation], list[str]]:
    out, keywords = [], []
    channels = doc.get("channels") if isinstance(doc.get("channels"), dict) else {}
    for name, channel in channels.items():
        channel = _deref(doc, channel)
        if isinstance(channel, dict):
            keywords.extend(w for w in (name, _text(channel.get("address"))) if w)
            for message in (channel.get("messages") or {}).values():
                keywords.extend(_message_words(doc, message))
    operations = doc.get("operations") if isinstance(doc.get("operations"), dict) else {}
    for op_id, op in operations.items():
        op = _deref(doc, op)
        if not isinstance(op, dict):
            continue
        channel = _deref(doc, op.get("channel"))
        address = _text(channel.get("address")) if isinstance(channel, dict) else None
        out.append(_async_operation(str(op.get("action", "")).upper(), address or "", op, default_id=op_id))
    return out, keywords


def _async_operation(
    method: str, address: str, op: dict[str, Any], default_id: str | None = None
) -> Operation:
    return Operation(
        method=method,
        path=address,
        operation_id=_text(op.get("operationId")) or default_id,
        summary=_text(op.get("summary")),
        description=_text(op.get("description")),
        tags=tuple(str(t.get("name")) for t in op.get("tags") or () if isinstance(t, dict) and t.get("name")),
        deprecated=op.get("deprecated") is True,
        security=None,
    )


def _message_words(doc: Document, message: Any) -> list[str]:
    message = _deref(doc, message)
    if not isinstance(message, dict):
        return []
    if isinstance(message.get("oneOf"), list):
        return [w for m in message["oneOf"] for w in _message_words(doc, m)]
    return [w for w in (_text(message.get(k)) for k in ("name", "title", "summary")) if w]


def security_requirements(value: Any) -> Security | None:
    """A `security` array as alternatives (OR) of requirements (AND); None when it is absent."""
    if not isinstance(value, list):
        return None
    alternatives = []
    for requirement in value:
        if isinstance(requirement, dict):
            alternatives.append(
                tuple(
                    (str(scheme), tuple(str(s) for s in scopes) if isinstance(scopes, list) else ())
                    for scheme, scopes in requirement.items()
                )
            )
    return tuple(alternatives)


def declared_scopes(doc: Document) -> frozenset[str]:
    """Every scope a contract names: in its security requirements (root and per operation, which the
    gateway checks) and in its OAuth 2 flows (OpenAPI and AsyncAPI 2.6 `scopes`, AsyncAPI 3
    `availableScopes`)."""
    found: set[str] = set()
    requirement_lists = [doc.get("security")]
    paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
    for item in paths.values():
        item = _deref(doc, item)
        if isinstance(item, dict):
            requirement_lists.extend(
                op.get("security") for m in HTTP_METHODS if isinstance(op := item.get(m), dict)
            )
    for requirements in requirement_lists:
        for alternative in security_requirements(requirements) or ():
            found.update(scope for _, scopes in alternative for scope in scopes)
    components = doc.get("components") if isinstance(doc.get("components"), dict) else {}
    schemes = components.get("securitySchemes")
    for scheme in schemes.values() if isinstance(schemes, dict) else ():
        scheme = _deref(doc, scheme)
        flows = scheme.get("flows") if isinstance(scheme, dict) else None
        for flow in flows.values() if isinstance(flows, dict) else ():
            if isinstance(flow, dict):
                for key in ("scopes", "availableScopes"):
                    if isinstance(flow.get(key), dict):
                        found.update(str(scope) for scope in flow[key])
    return frozenset(found)


def _deref(doc: Document, node: Any, depth: int = 0) -> Any:
    """Follow internal `$ref`s (a few hops at most: a chain of references is a cycle in practice)."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and depth < 8:
        ref = node["$ref"]
        if not ref.startswith("#"):
            return None
        try:
            node = resolve_pointer(doc, unquote(ref[1:]))
        except KeyError:
            return None
        depth += 1
    return node


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None
