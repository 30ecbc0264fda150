"""Canonical business objects (client, project, time entry...) and the contracts that carry them.

A canonical model is a JSON Schema document published like any contract; its owning team is the
object's steward. A schema inside an OpenAPI or AsyncAPI contract says it carries one with
`x-canonical: "client@^1"`: the model's name and a semver range of its versions. The schema may be
a projection of the model (a subset of its properties, optional ones left out), but each property
it declares must exist in the model with a compatible schema, and where the object is produced (a
response, a published event) the model's required properties must stay required.

"Compatible" is what the diff says (contracts/diff/schema.py), with the model as the base and the
projection as the revision: a produced projection may not admit what the model refuses (it is
judged as a response), a consumed one may not refuse what the model admits (judged as a request).

Pure: the caller hands in the published versions of the models; nothing is fetched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import nodesemver

from contracts.diff.catalog import REQUEST_BODY, RESPONSE_BODY, Direction, Level
from contracts.diff.schema import SchemaComparer, schema_changes
from contracts.diff.side import Side
from contracts.kinds import DocumentKind, Family
from contracts.loading import Document
from contracts.references import child, follow
from contracts.references import pointer as spelt

DECLARATION = "x-canonical"
# Object names a firm's process and experience APIs are expected to take from a canonical model,
# whether or not the registry holds one yet; the registry's own canonical names join them.
DEFAULT_CANONICAL_NAMES = frozenset(
    {"client", "customer", "project", "resource", "employee", "cost-center", "time-entry", "invoice"}
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Nodes walked to find where responses lead: bounded like every other walk of a submitted document.
MAX_NODES_WALKED = 200_000
DEFAULT_MAX_COMPARISONS = 50_000


class Declaration(msgspec.Struct, frozen=True):
    """A schema that says it carries a canonical model."""

    pointer: str  # the schema's absolute JSON pointer
    name: str
    range: str
    produced: bool  # reached from a response or an event payload: the API writes it


class Mismatch(msgspec.Struct, frozen=True):
    rule: str  # "canonical-reference" (unknown name or range) or "canonical-projection"
    pointer: str
    message: str


class Declarations(msgspec.Struct, frozen=True):
    """What one contract declares: found once per publish (a walk of the whole document and of where its
    responses lead, about 140 ms on 2,000 paths) and handed to the lint, the models it loads and the
    dependents index."""

    found: tuple[Declaration, ...] = ()
    malformed: tuple[Mismatch, ...] = ()


def canonical_key(name: str) -> str:
    """`TimeEntry`, `time-entry` and `time_entry` name one object."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def parse_declaration(value: Any) -> tuple[str, str] | str:
    """(name, range) of `"client@^1"`, or what is wrong with it."""
    if not isinstance(value, str) or "@" not in value:
        return f"`{DECLARATION}` must be a string `NAME@RANGE` (`client@^1`), not {str(value)[:80]!r}"
    name, _, wanted = value.partition("@")
    name, wanted = name.strip(), wanted.strip()
    if not _NAME.match(name):
        return f"`{DECLARATION}`: {name[:100]!r} is not an API name"
    try:
        valid = nodesemver.valid_range(wanted, False) is not None
    except ValueError:  # node-semver raises on some malformed comparators instead of answering None
        valid = False
    if not wanted or not valid:
        return f"`{DECLARATION}`: {wanted[:100]!r} is not a semver range (`^1`, `~1.2`, `>=1.1 <3`)"
    return name, wanted


def find_declarations(doc: Document, kind: DocumentKind) -> Declarations:
    """Every schema that declares `x-canonical`, in document order, and the malformed declarations."""
    declaring = list(_declaring(doc))
    if not declaring:
        return Declarations()
    # Only then is it worth knowing where responses lead.
    produced = _produced(doc, kind) if kind.family is Family.OPENAPI else None
    found, malformed = [], []
    for pointer, value in declaring:
        parsed = parse_declaration(value)
        if isinstance(parsed, str):
            malformed.append(Mismatch("canonical-reference", pointer, parsed))
        else:
            is_produced = produced is None or pointer in produced
            found.append(Declaration(pointer, parsed[0], parsed[1], is_produced))
    return Declarations(tuple(found), tuple(malformed))


def resolve(models: Mapping[str, Mapping[str, Document]], name: str, wanted: str) -> str | None:
    """The highest published version of model `name` in the range, None when no version is."""
    versions = list(models.get(name, {}))
    return nodesemver.max_satisfying(versions, wanted, False) if versions else None


def check_declarations(
    doc: Document,
    kind: DocumentKind,
    models: Mapping[str, Mapping[str, Document]],
    *,
    declarations: Declarations | None = None,
    max_comparisons: int = DEFAULT_MAX_COMPARISONS,
) -> list[Mismatch]:
    """Each declaration against the highest published version of its model in its range.

    `models` maps a canonical model's name to its published versions' documents; `declarations` are
    the document's, when the caller found them already.
    """
    declarations = declarations if declarations is not None else find_declarations(doc, kind)
    mismatches = list(declarations.malformed)
    for item in declarations.found:
        mismatches.extend(_check_one(doc, item, models, max_comparisons))
    return mismatches


def _check_one(
    doc: Document, item: Declaration, models: Mapping[str, Mapping[str, Document]], max_comparisons: int
) -> Iterator[Mismatch]:
    label = f"{item.name}@{item.range}"
    if item.name not in models:
        yield Mismatch("canonical-reference", item.pointer, f"{label}: no canonical model {item.name!r}")
        return
    version = resolve(models, item.name, item.range)
    if version is None:
        known = ", ".join(sorted(models[item.name], key=_semver_key)) or "none"
        message = f"{label}: no published version of {item.name} is in range {item.range} (has {known})"
        yield Mismatch("canonical-reference", item.pointer, message)
        return
    model = models[item.name][version]
    node, pointer = follow(doc, _at(doc, item.pointer), item.pointer)
    comparer = SchemaComparer(Side(model), Side(doc), max_comparisons=max_comparisons, detect_renames=False)
    direction = Direction.RESPONSE if item.produced else Direction.REQUEST
    context = RESPONSE_BODY if item.produced else REQUEST_BODY
    where = "produced" if item.produced else "consumed"
    findings = comparer.compare(model, "", node, pointer, direction)
    for change in schema_changes(findings, context, f"{item.name}@{version}", None):
        if change.id.endswith(("-added-optional", "-added-required")):
            message = f"{change.message.split(':', 1)[0]}: not a property of the canonical model"
        elif change.level is Level.ERROR:
            message = f"{change.message} ({where} here; the canonical model is the base)"
        else:
            continue
        yield Mismatch("canonical-projection", item.pointer, message)


def named_schemas(doc: Document, kind: DocumentKind) -> dict[str, str]:
    """A contract's named schemas, name to pointer: `definitions` (Swagger 2.0) or `components/schemas`."""
    if kind.family is Family.OPENAPI and kind.spec_version.startswith("2."):
        named, base = doc.get("definitions"), "/definitions"
    else:
        components = doc.get("components")
        named = components.get("schemas") if isinstance(components, dict) else None
        base = "/components/schemas"
    if not isinstance(named, dict):
        return {}
    return {str(name): child(base, str(name)) for name in named}


def undeclared_canonical_schemas(
    doc: Document, kind: DocumentKind, canonical_names: frozenset[str]
) -> list[tuple[str, str]]:
    """(pointer, name) of each named schema called like a canonical model without declaring one."""
    keys = {canonical_key(name) for name in canonical_names}
    out = []
    for name, pointer in named_schemas(doc, kind).items():
        node = _at(doc, pointer)
        if canonical_key(name) in keys and not (isinstance(node, dict) and DECLARATION in node):
            out.append((pointer, name))
    return out


def _semver_key(version: str) -> tuple:
    parsed = nodesemver.make_semver(version, False)
    return (parsed.major, parsed.minor, parsed.patch, version)


def _at(doc: Any, pointer: str) -> Any:
    node = doc
    for token in pointer.split("/")[1:] if pointer else ():
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(token)
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return None
    return node


def _declaring(doc: Any) -> Iterator[tuple[str, Any]]:
    """(pointer, value) of each object holding `x-canonical`, in document order, depth first. The
    path is kept as tokens and spelt as a pointer only for those: most of a contract declares nothing."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), doc)]
    walked = 0
    while stack and walked < MAX_NODES_WALKED:
        path, node = stack.pop()
        walked += 1
        if isinstance(node, dict):
            if DECLARATION in node:
                yield spelt(path), node[DECLARATION]
            stack.extend(
                ((*path, str(k)), v) for k, v in reversed(node.items()) if isinstance(v, dict | list)
            )
        elif isinstance(node, list):
            stack.extend(
                ((*path, i), v) for i, v in reversed(list(enumerate(node))) if isinstance(v, dict | list)
            )


def _produced(doc: Document, kind: DocumentKind) -> frozenset[str]:
    """Pointers of every object a response schema leads to (references followed). (An AsyncAPI
    contract's payloads are judged as the diff judges them, from the consumer's side: all produced.)"""
    roots = list(_response_schemas(doc))
    reached: set[str] = set()
    walked = 0
    while roots and walked < MAX_NODES_WALKED:
        node, pointer = follow(doc, *roots.pop())
        walked += 1
        if pointer in reached:
            continue
        if isinstance(node, dict):
            reached.add(pointer)
            roots.extend((v, child(pointer, str(k))) for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            reached.add(pointer)
            roots.extend((v, child(pointer, i)) for i, v in enumerate(node) if isinstance(v, dict | list))
    return frozenset(reached)


def _response_schemas(doc: Document) -> Iterator[tuple[Any, str]]:
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return
    for template, raw_item in paths.items():
        item, item_pointer = follow(doc, raw_item, child("/paths", str(template)))
        if not isinstance(item, dict):
            continue
        for method in _HTTP_METHODS:
            operation = item.get(method)
            responses = operation.get("responses") if isinstance(operation, dict) else None
            if not isinstance(responses, dict):
                continue
            for status, raw in responses.items():
                response, at = follow(doc, raw, child(item_pointer, method, "responses", str(status)))
                if not isinstance(response, dict):
                    continue
                if "schema" in response:  # Swagger 2.0
                    yield response["schema"], child(at, "schema")
                content = response.get("content")
                for media, body in content.items() if isinstance(content, dict) else ():
                    if isinstance(body, dict) and "schema" in body:
                        yield body["schema"], child(at, "content", str(media), "schema")
